// The trends table: sortable column headers (buttons, `aria-sort`), rows and the pager's text.

import { count, h } from "./dom.js";
import { valueLabel } from "./facets.js";
import { SORTABLE } from "./state.js";

const COLUMNS = [
  { title: "Macrotrend", sort: "MACROTREND", cell: (t) => t.macrotrend, className: "name" },
  {
    title: "TRL",
    cell: (t) => valueLabel("technologyReadinessLevel", t.technologyReadinessLevel ?? "NONE"),
  },
  { title: "Impact", cell: (t) => valueLabel("impactStrength", t.impactStrength) },
  { title: "STEEPL", cell: (t) => h("abbr", { title: valueLabel("steepl", t.steepl) }, t.steepl) },
  {
    title: "Publications",
    sort: "PUBLICATIONS",
    number: true,
    cell: (t) => count(t.totalCountOfPublications),
  },
  { title: "Patents", sort: "PATENTS", number: true, cell: (t) => count(t.totalCountOfPatents) },
  {
    title: "Challenges",
    className: "challenges",
    // Two lines at most on screen (CSS); the whole text stays in the page for screen readers.
    cell: (t) => h("span", { className: "clamp", title: t.challengesAndResearchGaps },
      t.challengesAndResearchGaps),
  },
];

const DIRECTION_NAMES = { ASC: "ascending", DESC: "descending" };

/** The header row: a button in each sortable column; `onSort(field, direction)` on a click. */
export function showHeader(row, sort, onSort) {
  row.replaceChildren(
    ...COLUMNS.map((column) => {
      const classes = [column.number ? "number" : "", column.className ?? ""].join(" ").trim();
      if (!column.sort) return h("th", { scope: "col", className: classes }, column.title);
      const active = sort.field === column.sort;
      const next = active ? (sort.direction === "ASC" ? "DESC" : "ASC") : SORTABLE[column.sort];
      const arrow = active ? (sort.direction === "ASC" ? "▲" : "▼") : "↕";
      return h(
        "th",
        {
          scope: "col",
          className: classes,
          "aria-sort": active ? DIRECTION_NAMES[sort.direction] : null,
        },
        h(
          "button",
          {
            type: "button",
            className: "sort",
            "data-focus-key": `sort:${column.sort}`,
            onclick: () => onSort(column.sort, next),
          },
          column.title,
          h("span", { className: "arrow", "aria-hidden": "true" }, ` ${arrow}`),
          h("span", { className: "visually-hidden" }, `, sort ${DIRECTION_NAMES[next]}`),
        ),
      );
    }),
  );
}

/** The rows of a page of trends, or one row saying there are none. */
export function showRows(body, trends, emptyText) {
  if (trends.length === 0) {
    body.replaceChildren(
      h("tr", {}, h("td", { colSpan: COLUMNS.length, className: "empty muted" }, emptyText)),
    );
    return;
  }
  body.replaceChildren(
    ...trends.map((trend) =>
      h(
        "tr",
        {},
        ...COLUMNS.map((column, index) => {
          const classes = [column.number ? "number" : "", column.className ?? ""].join(" ").trim();
          // The macrotrend names the row for screen readers.
          const tag = index === 0 ? "th" : "td";
          return h(tag, { className: classes, scope: index === 0 ? "row" : null },
            column.cell(trend));
        }),
      ),
    ),
  );
}
