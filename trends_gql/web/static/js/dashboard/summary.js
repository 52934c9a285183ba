// The megatrend's key figures, and the facet filters in force (each a button that removes it).

import { count, h, score } from "./dom.js";
import { facetTitle, valueLabel } from "./facets.js";

/** Trends, macrotrends, rated trends and the mean readiness of the rated ones. */
export function showFigures(element, summary, readiness) {
  const rated = readiness.reduce((sum, r) => sum + r.ratedCount, 0);
  const total = readiness.reduce((sum, r) => sum + r.trendCount, 0);
  const weighted = readiness.reduce((sum, r) => sum + (r.averageTrlScore ?? 0) * r.ratedCount, 0);
  const figures = [
    [count(summary?.trendCount ?? total), "trends"],
    [count(readiness.length), "macrotrends"],
    [`${count(rated)} of ${count(total)}`, "rated"],
    [rated ? score(weighted / rated) : "—", "mean readiness (0–9)"],
  ];
  element.replaceChildren(
    ...figures.map(([value, label]) =>
      h("li", { className: "figure" }, h("strong", {}, value), h("span", {}, label))),
  );
}

/** The facet values filtering the table; `onRemove(facet, null)` when one is removed. */
export function showActiveFilters(element, facets, onRemove) {
  const active = Object.entries(facets).filter(([, value]) => value);
  element.hidden = active.length === 0;
  element.replaceChildren(
    ...(active.length ? [h("span", { className: "muted" }, "Only:")] : []),
    ...active.map(([facet, value]) => {
      const text = `${facetTitle(facet)}: ${valueLabel(facet, value)}`;
      return h("button", {
        type: "button",
        className: "chip",
        "aria-label": `Remove the filter ${text}`,
        // Once removed, the focus goes to the facet's value that set it.
        "data-focus-key": `facet:${facet}:${value}`,
        onclick: () => onRemove(facet, null),
      }, text, h("span", { "aria-hidden": "true" }, " ×"));
    }),
  );
}
