// The dashboard's state and its URL: what is in the address bar is what is shown.
//
// A page of the trends table is kept in the URL as its number and its `after` cursor (the
// cursor of the row before it). The API's cursors are keyset cursors and it pages forward only,
// so the cursor restores exactly the rows that were shared, with no request to find them, and
// the number says where they are ("page 3 of 5"). A URL without a cursor (typed by hand) or
// with one the API refuses is re-walked from the first row (cursors.js).

/** The table's sortable columns: their `TrendOrderField` and first direction. */
export const SORTABLE = {
  MACROTREND: "ASC",
  PUBLICATIONS: "DESC",
  PATENTS: "DESC",
};
export const DEFAULT_SORT = { field: "MACROTREND", direction: "ASC" };

/** The single-value filters a facet value sets, with the values the API accepts. */
export const FACET_FILTERS = {
  technologyReadinessLevel: { param: "trl", values: ["PILOT", "DEVELOPMENT", "DEPLOY"] },
  impactStrength: { param: "impact", values: ["LOW", "MEDIUM", "HIGH"] },
  steepl: { param: "steepl", values: ["S", "T", "E", "P", "L"] },
};

const MAX_SEARCH = 200;
const MAX_CURSOR = 4096;

/** A state with every part at its default: the first megatrend, page 1. */
export function initialState() {
  return {
    megatrend: null, // null: the first megatrend of the list
    search: "",
    sort: { ...DEFAULT_SORT },
    facets: { technologyReadinessLevel: null, impactStrength: null, steepl: null },
    page: 1,
    after: null,
  };
}

function parseSort(text) {
  if (!text) return { ...DEFAULT_SORT };
  const direction = text.startsWith("-") ? "DESC" : "ASC";
  const field = text.replace(/^-/, "").toUpperCase();
  return field in SORTABLE ? { field, direction } : { ...DEFAULT_SORT };
}

/** The state a query string describes; anything malformed in it is left at its default. */
export function parseState(search) {
  const params = new URLSearchParams(search);
  const state = initialState();
  const megatrend = params.get("megatrend")?.trim();
  if (megatrend) state.megatrend = megatrend;
  state.search = (params.get("q") ?? "").slice(0, MAX_SEARCH);
  state.sort = parseSort(params.get("sort"));
  for (const [name, { param, values }] of Object.entries(FACET_FILTERS)) {
    const value = params.get(param)?.toUpperCase();
    if (values.includes(value)) state.facets[name] = value;
  }
  const page = Number.parseInt(params.get("page") ?? "1", 10);
  if (Number.isSafeInteger(page) && page > 1) {
    state.page = page;
    const after = params.get("after");
    if (after && after.length <= MAX_CURSOR) state.after = after;
  }
  return state;
}

/** The query string of a state (defaults left out, so that plain views have plain URLs). */
export function stateQuery(state) {
  const params = new URLSearchParams();
  if (state.megatrend) params.set("megatrend", state.megatrend);
  if (state.search) params.set("q", state.search);
  const { field, direction } = state.sort;
  if (field !== DEFAULT_SORT.field || direction !== DEFAULT_SORT.direction) {
    params.set("sort", `${direction === "DESC" ? "-" : ""}${field.toLowerCase()}`);
  }
  for (const [name, { param }] of Object.entries(FACET_FILTERS)) {
    if (state.facets[name]) params.set(param, state.facets[name].toLowerCase());
  }
  if (state.page > 1) {
    params.set("page", String(state.page));
    if (state.after) params.set("after", state.after);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** The rows a state lists, whatever page: two states with the same key page the same list. */
export function listKey(state) {
  return JSON.stringify([state.megatrend, state.search, state.sort, state.facets]);
}

/** The `TrendFilter` of the table under a state. */
export function trendFilter(state) {
  const filter = { megatrend: state.megatrend };
  const search = state.search.trim();
  if (search) filter.search = search;
  for (const [name, value] of Object.entries(state.facets)) {
    if (value) filter[name] = value;
  }
  return filter;
}

/** The `orderBy` of the table under a state. */
export function trendOrder(state) {
  return [{ field: state.sort.field, direction: state.sort.direction }];
}
