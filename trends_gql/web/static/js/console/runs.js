// How runs (imports and exports) look in the console: statuses, counts, empty tables.
import { el } from "./ui.js";

const STATUS_NAMES = { QUEUED: "Queued", RUNNING: "Running", SUCCEEDED: "Succeeded", FAILED: "Failed" };
const numbers = new Intl.NumberFormat();
const percents = new Intl.NumberFormat(undefined, { style: "percent" });

/** A count in the reader's locale ("4,000"); a dash for none. */
export function count(value) {
  return value === null || value === undefined ? "—" : numbers.format(value);
}

/** A share as a whole percentage ("25%"), never 100% before the end. */
export function percent(done, total) {
  const share = total > 0 ? Math.min(done / total, 1) : 0;
  return percents.format(done < total ? Math.min(share, 0.99) : share);
}

/** A run status in words, lower case for sentences ("succeeded"). */
export function statusWord(status) {
  return (STATUS_NAMES[status] ?? status).toLowerCase();
}

/** A table cell showing a run's status. */
export function statusCell(status) {
  return el("td", {}, el("span", { class: `status-${status}`, text: STATUS_NAMES[status] ?? status }));
}

/** A right-aligned table cell with a count. */
export function countCell(value) {
  return el("td", { class: "number", text: count(value) });
}

/** The one row of a table with nothing to list. */
export function emptyRow(columns, text) {
  return el("tr", {}, el("td", { colspan: columns, class: "muted", text }));
}
