// The console's trends: a table with filters, search, sorting and pages; the editor opens a row.
import { request } from "../graphql.js";
import { mountEditor } from "./trend-editor.js";
import { TREND_SELECTION, choiceLabel, choiceOptions } from "./trend-fields.js";
import { el, explain, say, timeElement } from "./ui.js";

const PAGE_SIZE = 25;
const SEARCH_DELAY_MS = 300;
const TRENDS = `query ConsoleTrends($filter: TrendFilter, $orderBy: [TrendOrder!], $first: Int,
    $after: String) {
  trends(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ${TREND_SELECTION} }
  }
}`;
const MEGATRENDS = "query ConsoleMegatrends { megatrends { name trendCount } }";
// Sorting by a column then by these, so that equal values keep a stable, useful order.
const THEN = { MEGATREND: ["MACROTREND"], MACROTREND: ["MEGATREND"] };
// The first click on these sorts the largest or newest first.
const DESCENDING_FIRST = new Set(["PUBLICATIONS", "PATENTS", "UPDATED_AT"]);
const numbers = new Intl.NumberFormat();

function count(value) {
  return value === null ? el("span", { class: "muted", text: "—" }) : numbers.format(value);
}

function row(trend) {
  const title = el("a", { href: `#trends/${trend.id}`, text: trend.macrotrend });
  const summary = el("div", { class: "summary muted", text: trend.challengesAndResearchGaps });
  return el(
    "tr",
    {},
    el("td", { text: trend.megatrend }),
    el("td", {}, title, summary),
    el("td", {}, trend.technologyReadinessLevel
      ? choiceLabel("technologyReadinessLevel", trend.technologyReadinessLevel)
      : el("span", { class: "muted", text: "Not rated" })),
    el("td", { text: choiceLabel("impactStrength", trend.impactStrength) }),
    el("td", { title: choiceLabel("steepl", trend.steepl), text: trend.steepl }),
    el("td", { class: "number" }, count(trend.totalCountOfPublications)),
    el("td", { class: "number" }, count(trend.totalCountOfPatents)),
    el("td", { class: "nowrap" }, timeElement(trend.updatedAt)),
  );
}

/**
 * Set up the trends section; `shell.signedOut()` runs when the session is gone. Returns
 * filter() (the current TrendFilter), reload(), open(id) and close().
 */
export function mountTrends(section, shell) {
  const filters = section.querySelector("#trend-filters");
  const body = section.querySelector("#trends-table tbody");
  const countText = section.querySelector("#trends-count");
  const previous = section.querySelector("#trends-previous");
  const next = section.querySelector("#trends-next");
  const notice = section.querySelector("#trends-notice");
  const megatrendSelect = filters.elements.megatrend;
  const megatrendList = el("datalist", { id: "megatrend-options" });
  section.append(megatrendList);
  for (const select of filters.querySelectorAll("select:not([name=megatrend])")) {
    select.append(...choiceOptions(select.name, "Any"));
  }
  const headers = [...section.querySelectorAll("th[data-sort]")];
  for (const header of headers) {
    header.replaceChildren(el("button", { type: "button", class: "sort" }, header.textContent));
  }
  let order = { field: "MEGATREND", direction: "ASC" };
  let cursors = [null]; // the `after` of each page seen, for going back
  let page = 0;
  let latest = 0; // answers to older requests are dropped
  let searchTimer = null;

  const editor = mountEditor(section, {
    shell,
    onChanged(message) {
      say(notice, message);
      reload().then(() => editor.restoreFocus());
    },
    onError(message) {
      say(notice, message);
    },
  });

  function filter() {
    const values = {};
    for (const [name, value] of new FormData(filters)) {
      if (String(value).trim()) values[name] = String(value).trim();
    }
    return values;
  }

  function orderBy() {
    const then = (THEN[order.field] ?? []).map((field) => ({ field, direction: "ASC" }));
    return [order, ...then];
  }

  function showOrder() {
    for (const header of headers) {
      const sorted = header.dataset.sort === order.field;
      const direction = order.direction === "ASC" ? "ascending" : "descending";
      if (sorted) header.setAttribute("aria-sort", direction);
      else header.removeAttribute("aria-sort");
    }
  }

  async function load() {
    const ticket = ++latest;
    body.setAttribute("aria-busy", "true");
    try {
      const { trends } = await request(TRENDS, {
        filter: filter(), orderBy: orderBy(), first: PAGE_SIZE, after: cursors[page],
      });
      if (ticket !== latest) return;
      body.replaceChildren(...trends.nodes.map(row));
      if (!trends.nodes.length) {
        body.append(el("tr", {}, el("td", { colspan: 8, class: "empty muted",
          text: trends.totalCount ? "No more trends." : "No trends match these filters." })));
      }
      cursors[page + 1] = trends.pageInfo.endCursor;
      const first = page * PAGE_SIZE + 1;
      const last = page * PAGE_SIZE + trends.nodes.length;
      const [from, to, of] = [first, last, trends.totalCount].map((n) => numbers.format(n));
      countText.textContent = trends.totalCount ? `${from}–${to} of ${of} trends` : "0 trends";
      previous.disabled = page === 0;
      next.disabled = !trends.pageInfo.hasNextPage;
    } catch (failure) {
      if (ticket === latest) say(notice, explain(failure));
    } finally {
      if (ticket === latest) body.setAttribute("aria-busy", "false");
    }
  }

  async function loadMegatrends() {
    const { megatrends } = await request(MEGATRENDS);
    const chosen = megatrendSelect.value;
    megatrendSelect.replaceChildren(
      new Option("All", ""),
      ...megatrends.map((m) => new Option(`${m.name} (${numbers.format(m.trendCount)})`, m.name)),
    );
    if (megatrends.some((m) => m.name === chosen)) megatrendSelect.value = chosen;
    megatrendList.replaceChildren(...megatrends.map((m) => new Option(m.name)));
  }

  function restart() {
    cursors = [null];
    page = 0;
    return load();
  }

  async function reload() {
    await Promise.all([load(), loadMegatrends().catch((failure) => say(notice, explain(failure)))]);
  }

  filters.addEventListener("change", (event) => {
    if (event.target.name !== "search") restart();
  });
  filters.addEventListener("input", (event) => {
    if (event.target.name !== "search") return;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(restart, SEARCH_DELAY_MS);
  });
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    restart();
  });
  // The form is reset after its reset event: read it once that is done.
  filters.addEventListener("reset", () => setTimeout(restart));
  for (const header of headers) {
    header.querySelector("button").addEventListener("click", () => {
      const field = header.dataset.sort;
      const flip = { ASC: "DESC", DESC: "ASC" };
      const direction = DESCENDING_FIRST.has(field) ? "DESC" : "ASC";
      order = { field, direction: order.field === field ? flip[order.direction] : direction };
      showOrder();
      restart();
    });
  }
  previous.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    load();
  });
  next.addEventListener("click", () => {
    page += 1;
    load();
  });
  const newTrend = section.querySelector("#trend-new");
  newTrend.addEventListener("click", () => editor.create(newTrend));

  showOrder();
  reload();
  return {
    filter,
    reload,
    open(id) {
      say(notice, "");
      editor.edit(id);
    },
    close() {
      editor.close();
    },
  };
}
