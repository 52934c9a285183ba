// The readiness radar (ECharts) and the same numbers as a table, for screen readers and copying.
//
// The chart is an ordinary ECharts instance on #radar: other code (and the tests) reach it with
// `echarts.getInstanceByDom(document.getElementById("radar"))`, importing the same vendored
// module, whose registry of instances is shared.

import * as echarts from "../../vendor/echarts/echarts.esm.min.js";
import { count, h, score } from "./dom.js";

const SCALE_MAX = 9; // TRL 1-9; the scores are Pilot 2, Development 5, Deploy 8
const ACCENT = "#1f5fbf";
const CENTER = [0.5, 0.52]; // of the chart's width and height
const START_ANGLE = 90; // the first axis points up; the others follow counterclockwise

let chart = null;
let pointer = null; // where the mouse is on the chart: the tooltip is for the nearest axis

function chartOf(element) {
  if (chart === null) {
    chart = echarts.init(element, null, { renderer: "canvas" });
    new ResizeObserver(() => chart.resize()).observe(element);
    chart.getZr().on("mousemove", (event) => {
      pointer = [event.offsetX, event.offsetY];
    });
    chart.getZr().on("globalout", () => {
      pointer = null;
    });
  }
  return chart;
}

/** The index of the axis nearest the mouse (by angle around the centre), or null. */
function nearestAxis(axes) {
  if (pointer === null || axes === 0) return null;
  const x = pointer[0] - chart.getWidth() * CENTER[0];
  const y = chart.getHeight() * CENTER[1] - pointer[1];
  const degrees = (Math.atan2(y, x) * 180) / Math.PI - START_ANGLE;
  const index = Math.round(degrees / (360 / axes));
  return ((index % axes) + axes) % axes;
}

/** A long axis name on two lines, at the space nearest its middle. */
function wrap(name) {
  if (name.length <= 18) return name;
  const middle = name.length / 2;
  let best = -1;
  for (let i = name.indexOf(" "); i !== -1; i = name.indexOf(" ", i + 1)) {
    if (best === -1 || Math.abs(i - middle) < Math.abs(best - middle)) best = i;
  }
  return best === -1 ? name : `${name.slice(0, best)}\n${name.slice(best + 1)}`;
}

function rated(row) {
  return `${row.ratedCount} of ${row.trendCount} rated`;
}

function tipRow(row) {
  const encode = echarts.format.encodeHTML;
  const mean = row.averageTrlScore === null ? "not rated" : score(row.averageTrlScore);
  return `<tr><td>${encode(row.macrotrend)}</td><td class="tip-number">${mean}</td>`
    + `<td class="tip-muted">${rated(row)}</td></tr>`;
}

/** The tooltip: the macrotrend of the axis nearest the mouse, or all of them. */
function tooltip(megatrend, rows) {
  const axis = nearestAxis(rows.length);
  const shown = axis === null ? rows : [rows[axis]];
  const title = echarts.format.encodeHTML(megatrend);
  return `<strong>${title}</strong><table class="tip">${shown.map(tipRow).join("")}</table>`;
}

function option(megatrend, rows) {
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  return {
    animation: !reduced,
    tooltip: {
      trigger: "item",
      confine: true,
      textStyle: { color: "#1c2430" },
      formatter: () => tooltip(megatrend, rows),
    },
    radar: {
      indicator: rows.map((row) => ({ name: row.macrotrend, min: 0, max: SCALE_MAX })),
      radius: "74%",
      center: CENTER.map((share) => `${Math.round(share * 100)}%`),
      startAngle: START_ANGLE,
      clockwise: false,
      nameGap: 10,
      splitNumber: 3,
      axisName: { color: "#1c2430", fontSize: 12, lineHeight: 15, formatter: wrap },
      splitLine: { lineStyle: { color: "#d5dae1" } },
      splitArea: { areaStyle: { color: ["#f8fafc", "#eef2f7"] } },
      axisLine: { lineStyle: { color: "#c3cad4" } },
    },
    series: [
      {
        type: "radar",
        name: megatrend,
        symbol: "circle",
        symbolSize: 7,
        lineStyle: { width: 2, color: ACCENT },
        itemStyle: { color: ACCENT },
        areaStyle: { color: ACCENT, opacity: 0.18 },
        // A macrotrend without a rated trend has no mean: it sits at 0, "not rated" in the tip.
        data: [{ name: megatrend, value: rows.map((row) => row.averageTrlScore ?? 0) }],
      },
    ],
  };
}

/** Draw the radar of `rows` (macrotrendReadiness) and fill the table of its data. */
export function showReadiness(element, table, empty, megatrend, rows) {
  empty.hidden = rows.length > 0;
  element.hidden = rows.length === 0;
  if (rows.length > 0) {
    const instance = chartOf(element);
    instance.setOption(option(megatrend, rows), { notMerge: true });
    instance.resize(); // the element may have been hidden when the chart was last drawn
  }
  table.tBodies[0].replaceChildren(
    ...rows.map((row) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, row.macrotrend),
        h(
          "td",
          { className: "number" },
          row.averageTrlScore === null ? h("span", { className: "muted" }, "not rated")
            : score(row.averageTrlScore),
        ),
        h("td", { className: "number" }, count(row.ratedCount)),
        h("td", { className: "number" }, count(row.trendCount)),
      ),
    ),
  );
}
