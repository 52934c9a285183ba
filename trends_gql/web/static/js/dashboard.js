// The readiness dashboard (`/`): pick a megatrend, see its macrotrends' mean readiness on a
// radar, the distributions of its trends, and the trends themselves, searched, sorted, paged.
// The URL holds the view (dashboard/state.js), so it can be shared, reloaded, and walked with
// back and forward. What the page sends is listed in dashboard/queries.js.

import { GraphQLError, pageConfig, request } from "./graphql.js";
import { count, h } from "./dashboard/dom.js";
import { showFacets } from "./dashboard/facets.js";
import { cursorOf, knownCursor, rememberCursor } from "./dashboard/cursors.js";
import { DASHBOARD, MEGATRENDS, PAGE } from "./dashboard/queries.js";
import { showReadiness } from "./dashboard/radar.js";
import { parseState, stateQuery, trendFilter, trendOrder } from "./dashboard/state.js";
import { showActiveFilters, showFigures } from "./dashboard/summary.js";
import { showHeader, showRows } from "./dashboard/table.js";

const PAGE_SIZE = 10;
const SEARCH_DELAY_MS = 300;

const $ = (id) => document.getElementById(id);
const ui = {
  main: $("main"),
  cards: document.querySelectorAll("main .card"),
  content: $("content"),
  emptyState: $("empty-state"),
  select: $("megatrend"),
  problem: $("problem"),
  problemText: $("problem-text"),
  retry: $("retry"),
  status: $("status"),
  figures: $("figures"),
  radar: $("radar"),
  radarEmpty: $("radar-empty"),
  readinessTable: $("readiness-table"),
  facets: $("facets"),
  search: $("search"),
  searchError: $("search-error"),
  activeFilters: $("active-filters"),
  table: $("trends-table"),
  previous: $("previous"),
  next: $("next"),
  pageOf: $("page-of"),
  summary: $("trends-summary"),
};

let megatrends = null; // [{name, trendCount, macrotrendCount}] once loaded
let view = null; // the megatrend whose chart and facets are on screen
let shown = null; // the state on screen: {state, megatrend, page: TrendConnection}
let wanted = null; // the state being loaded or last asked for (what "Try again" loads)
let sequence = 0; // answers to anything but the latest request are dropped
let typing = false; // a search being typed replaces its own history entry
let searchTimer = 0;
/** The megatrend a state shows: its own (spelt as the list spells it) or the first one. */
function megatrendOf(state) {
  if (state.megatrend === null) return megatrends?.[0]?.name ?? null;
  const wantedName = state.megatrend.toLowerCase();
  return megatrends?.find((m) => m.name.toLowerCase() === wantedName)?.name ?? state.megatrend;
}

function problemText(error) {
  if (!(error instanceof GraphQLError)) {
    return "The trends API cannot be reached. Check your connection, then try again.";
  }
  if (error.status >= 500 || error.code === "SERVICE_UNAVAILABLE") {
    return `The trends API is unavailable right now (${error.message}). Try again in a moment.`;
  }
  if (error.code === "TOO_MANY_REQUESTS") return error.message;
  return `The trends API refused the request: ${error.message}`;
}

function showProblem(text, retry) {
  ui.problemText.textContent = text;
  ui.retry.hidden = !retry;
  ui.problem.hidden = false;
}

function busy(on) {
  // On the cards, not on <main>: a busy ancestor would silence the status region in it.
  for (const card of ui.cards) card.setAttribute("aria-busy", String(on));
  ui.main.classList.toggle("loading", on);
}

/** Load and show a state; `how` says what happens to the URL ("push", "replace", "none"). */
async function load(state, how = "none") {
  const id = ++sequence;
  wanted = state;
  if (how === "push") history.pushState(null, "", location.pathname + stateQuery(state));
  if (how === "replace") history.replaceState(null, "", location.pathname + stateQuery(state));
  busy(true);
  ui.status.textContent = "Loading…";
  try {
    const withMegatrends = megatrends === null;
    if (withMegatrends && state.megatrend === null) {
      megatrends = (await request(MEGATRENDS)).megatrends;
      if (id !== sequence) return;
    }
    const megatrend = megatrendOf(state);
    if (megatrend === null) {
      showNothingYet();
      return;
    }
    const withView = view === null || view.megatrend !== megatrend;
    const listOnce = withMegatrends && megatrends === null;
    let data;
    try {
      [state, data] = await fetchView(state, megatrend, withView, listOnce);
    } catch (error) {
      // A cursor the API refuses (mangled, or of another ordering): find the page again.
      if (!(error instanceof GraphQLError && error.field === "after" && state.after)) throw error;
      [state, data] = await fetchView({ ...state, after: null }, megatrend, withView, listOnce);
    }
    if (id !== sequence) return;
    if (data.megatrends) megatrends = data.megatrends;
    if (document.activeElement === ui.retry) ui.select.focus(); // the button is going
    ui.problem.hidden = true;
    wanted = state;
    render(state, megatrendOf(state), data);
  } catch (error) {
    if (id !== sequence) return;
    if (error instanceof GraphQLError && error.field === "search") {
      ui.search.setAttribute("aria-invalid", "true");
      ui.searchError.textContent = error.message;
      ui.searchError.hidden = false;
      ui.status.textContent = "";
      return;
    }
    showProblem(problemText(error), true);
    ui.status.textContent = "";
  } finally {
    if (id === sequence) busy(false);
    if (id === sequence && shown) showPager();
  }
}

/** The state with its page's cursor found, and the answer to its query. */
async function fetchView(state, megatrend, withView, withMegatrends) {
  const after = await cursorOf(state, megatrend, PAGE_SIZE);
  const variables = {
    filter: trendFilter({ ...state, megatrend }),
    orderBy: trendOrder(state),
    first: PAGE_SIZE,
    after,
  };
  const data = withView
    ? await request(DASHBOARD, { ...variables, megatrend, withMegatrends })
    : await request(PAGE, variables);
  return [{ ...state, after }, data];
}

function showNothingYet() {
  ui.select.replaceChildren(h("option", { value: "" }, "No megatrends yet"));
  ui.select.disabled = true;
  ui.content.hidden = true;
  ui.emptyState.hidden = false;
  ui.status.textContent = "No trends yet.";
}

function showMegatrends(selected) {
  const known = megatrends.some((m) => m.name === selected);
  ui.select.replaceChildren(
    ...(known ? [] : [h("option", { value: "", selected: true }, "Choose a megatrend")]),
    ...megatrends.map((m) =>
      h("option", { value: m.name, selected: m.name === selected },
        `${m.name} (${count(m.trendCount)} ${m.trendCount === 1 ? "trend" : "trends"})`)),
  );
  ui.select.disabled = false;
  if (!known) {
    showProblem(`There is no megatrend named “${selected}”: choose one from the list.`, false);
  }
}

function pageCount() {
  return Math.max(1, Math.ceil(shown.page.totalCount / PAGE_SIZE));
}

function showPager() {
  const { state, page } = shown;
  const focused = document.activeElement;
  ui.previous.disabled = state.page <= 1;
  ui.next.disabled = !page.pageInfo.hasNextPage;
  ui.pageOf.textContent = `Page ${count(state.page)} of ${count(pageCount())}`;
  // At the first or last page, the key pressed stays in the pager rather than on a disabled one.
  if (focused === ui.next && ui.next.disabled && !ui.previous.disabled) ui.previous.focus();
  if (focused === ui.previous && ui.previous.disabled && !ui.next.disabled) ui.next.focus();
}

function render(state, megatrend, data) {
  // Controls drawn again keep the keyboard focus (their `data-focus-key` names them).
  const focusKey = document.activeElement?.dataset?.focusKey;
  const page = data.trends;
  shown = { state, megatrend, page };
  ui.content.hidden = false;
  ui.emptyState.hidden = true;
  if (data.macrotrendReadiness) {
    view = { megatrend, readiness: data.macrotrendReadiness, facets: data.trendFacets };
    showReadiness(ui.radar, ui.readinessTable, ui.radarEmpty, megatrend, view.readiness);
  }
  showMegatrends(megatrend);
  showFigures(ui.figures, megatrends.find((m) => m.name === megatrend), view.readiness);
  showFacets(ui.facets, view.facets, state.facets, setFacet);
  if (document.activeElement !== ui.search) ui.search.value = state.search;
  ui.search.removeAttribute("aria-invalid");
  ui.searchError.hidden = true;
  showActiveFilters(ui.activeFilters, state.facets, setFacet);
  showHeader(ui.table.tHead.rows[0], state.sort, setSort);
  const filtered = state.search.trim() || Object.values(state.facets).some(Boolean);
  let empty = "No trends.";
  if (filtered) empty = "No trends match the search and filters.";
  if (state.page > 1) empty = "No trends on this page: the list has changed. Go back to page 1.";
  showRows(ui.table.tBodies[0], page.nodes, empty);
  rememberCursor(state, state.page, state.after);
  if (page.pageInfo.hasNextPage) rememberCursor(state, state.page + 1, page.pageInfo.endCursor);
  const from = page.nodes.length ? (state.page - 1) * PAGE_SIZE + 1 : 0;
  const to = (state.page - 1) * PAGE_SIZE + page.nodes.length;
  const shownRange = from === to ? count(from) : `${count(from)}–${count(to)}`;
  const range = page.nodes.length ? `Showing ${shownRange} of ` : "";
  ui.summary.textContent = `${range}${count(page.totalCount)} `
    + `${page.totalCount === 1 ? "trend" : "trends"}`;
  showPager();
  if (focusKey && !document.activeElement?.dataset?.focusKey) {
    document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
  }
  ui.status.textContent = `${megatrend}: ${ui.summary.textContent.toLowerCase()}, `
    + `${ui.pageOf.textContent.toLowerCase()}.`;
  // The URL now names the exact page (its cursor, when it was re-walked).
  const url = location.pathname + stateQuery(state);
  if (url !== location.pathname + location.search) history.replaceState(null, "", url);
}

/** The state the next change starts from: what is being loaded, else what is shown. */
function base() {
  return { ...(wanted ?? shown.state) };
}

function navigate(changes, how = "push") {
  typing = false;
  clearTimeout(searchTimer);
  load({ ...base(), page: 1, after: null, ...changes }, how);
}

function setFacet(facet, value) {
  const current = base();
  navigate({ facets: { ...current.facets, [facet]: value } });
}

function setSort(field, direction) {
  navigate({ sort: { field, direction } });
}

ui.select.addEventListener("change", () => {
  if (ui.select.value) navigate({ megatrend: ui.select.value });
});

function applySearch() {
  clearTimeout(searchTimer);
  const value = ui.search.value;
  if (value.trim() === base().search.trim()) return;
  // Each search typed is one history entry, not one per pause while typing it.
  const how = typing ? "replace" : "push";
  load({ ...base(), search: value, page: 1, after: null }, how);
  typing = true;
}

ui.search.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(applySearch, SEARCH_DELAY_MS);
});
ui.search.addEventListener("keydown", (event) => {
  if (event.key === "Enter") applySearch();
});
ui.search.addEventListener("blur", () => {
  applySearch();
  typing = false;
});

ui.next.addEventListener("click", () => {
  const { state, page } = shown;
  typing = false;
  load({ ...state, page: state.page + 1, after: page.pageInfo.endCursor }, "push");
});

ui.previous.addEventListener("click", () => {
  const { state } = shown;
  typing = false;
  const page = state.page - 1;
  load({ ...state, page, after: knownCursor(state, page) }, "push");
});

ui.retry.addEventListener("click", () => load({ ...wanted }));

window.addEventListener("popstate", () => {
  typing = false;
  clearTimeout(searchTimer);
  const state = parseState(location.search);
  ui.search.value = state.search;
  load(state);
});

document.querySelector("[data-graphiql]").hidden = !pageConfig.graphiql;
load(parseState(location.search));
