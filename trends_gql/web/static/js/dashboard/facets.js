// The distributions of a megatrend's trends (trendFacets) as tables with bars drawn in CSS:
// every number is text, and each value is a toggle button that filters the trends table.

import { h, count } from "./dom.js";
import { FACET_FILTERS } from "./state.js";

const FACETS = [
  {
    name: "technologyReadinessLevel",
    title: "Technology readiness level",
    labels: { PILOT: "Pilot", DEVELOPMENT: "Development", DEPLOY: "Deploy", NONE: "Not rated" },
  },
  {
    name: "impactStrength",
    title: "Impact",
    labels: { HIGH: "High", MEDIUM: "Medium", LOW: "Low" },
  },
  {
    name: "steepl",
    title: "STEEPL",
    labels: {
      S: "Social",
      T: "Technological",
      E: "Economic or environmental",
      P: "Political",
      L: "Legal",
    },
  },
];

/** The label of a facet value for people (Pilot, High, Social...). */
export function valueLabel(facet, value) {
  return FACETS.find((f) => f.name === facet)?.labels[value] ?? value;
}

/** The title of a facet (Impact...). */
export function facetTitle(facet) {
  return FACETS.find((f) => f.name === facet)?.title ?? facet;
}

function facetTable(facet, counts, total, selected, onToggle) {
  const byValue = new Map(counts.map((c) => [c.value, c.count]));
  // Every value in the scale's order, with its zero; "Not rated" only when some are.
  const values = Object.keys(facet.labels).filter((v) => v !== "NONE" || byValue.has(v));
  const filterable = FACET_FILTERS[facet.name].values;
  const headingId = `facet-${facet.name}`;
  const rows = values.map((value) => {
    const n = byValue.get(value) ?? 0;
    const label = facet.labels[value];
    const name = filterable.includes(value)
      ? h("button", {
        type: "button",
        className: "facet-value",
        "aria-pressed": String(selected === value),
        "data-focus-key": `facet:${facet.name}:${value}`,
        onclick: () => onToggle(facet.name, selected === value ? null : value),
      }, label)
      : h("span", { className: "facet-value" }, label);
    const bar = h("span", { className: "bar", "aria-hidden": "true" });
    bar.style.width = `${total ? Math.round((n / total) * 100) : 0}%`;
    return h(
      "tr",
      { className: selected === value ? "selected" : "" },
      h("th", { scope: "row" }, name),
      h("td", { className: "bar-cell" }, h("span", { className: "track" }, bar)),
      h("td", { className: "number" }, count(n)),
    );
  });
  return h(
    "section",
    { className: "facet", "aria-labelledby": headingId },
    h("h3", { id: headingId }, facet.title),
    h(
      "table",
      { className: "bars", "aria-labelledby": headingId },
      h("thead", { className: "visually-hidden" },
        h("tr", {}, h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "Share"),
          h("th", { scope: "col" }, "Trends"))),
      h("tbody", {}, rows),
    ),
  );
}

/** Fill `element` with the facets of `data` (trendFacets); `selected` maps facet to value. */
export function showFacets(element, data, selected, onToggle) {
  element.replaceChildren(
    ...FACETS.map((facet) =>
      facetTable(facet, data[facet.name], data.total, selected[facet.name], onToggle)),
  );
}
