// The console's Export section: the trends of the table's current filter to a CSV or JSON
// file, its progress, then the download; the recent exports with their downloads.
import { request } from "../graphql.js";
import { isFinal, pollUntil } from "./live.js";
import { count, countCell, emptyRow, statusCell, statusWord } from "./runs.js";
import { el, explain, say, timeElement } from "./ui.js";

const EXPORT_RUN_FIELDS = `
  id format status rowCount message triggeredBy createdAt finishedAt downloadUrl`;
const EXPORT_TRENDS = `mutation ExportTrends($format: ExportFormat, $filter: TrendFilter) {
  exportTrends(format: $format, filter: $filter) { ${EXPORT_RUN_FIELDS} }
}`;
const EXPORT_RUN = `query ExportRun($id: ID!) { exportRun(id: $id) { ${EXPORT_RUN_FIELDS} } }`;
const EXPORT_RUNS = `query ExportRuns($first: Int) {
  exportRuns(first: $first) { nodes { ${EXPORT_RUN_FIELDS} } }
}`;
const PAGE_SIZE = 10;
// How each condition of a TrendFilter reads in "the table's current filter: ...".
const CONDITIONS = {
  search: "containing",
  megatrend: "megatrend",
  macrotrend: "macrotrend",
  technologyReadinessLevel: "readiness",
  impactStrength: "impact",
  steepl: "STEEPL",
  megatrendIn: "megatrend",
  technologyReadinessLevelIn: "readiness",
  impactStrengthIn: "impact",
  steeplIn: "STEEPL",
  publicationsMin: "publications at least",
  publicationsMax: "publications at most",
  patentsMin: "patents at least",
  patentsMax: "patents at most",
  updatedSince: "updated since",
};

/** A TrendFilter in words: "megatrend AI · containing “edge”", or "all trends". */
export function describeFilter(filter) {
  const parts = Object.entries(filter ?? {})
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([name, value]) => {
      const shown = Array.isArray(value) ? value.join(" or ") || "(none)" : String(value);
      return `${CONDITIONS[name] ?? name} ${name === "search" ? `“${shown}”` : shown}`;
    });
  return parts.length ? parts.join(" · ") : "all trends";
}

/** Fill the Export section (`root`) and start it; `ctx` is the console's (see console.js). */
export function mountExports(root, ctx) {
  const part = (selector) => root.querySelector(selector);
  const form = part("#export-form");
  const button = part("#export-start");
  const filterText = part("#export-filter");
  const error = part("#export-error");
  const result = part("#export-result");
  const runsBody = part("#export-runs tbody");
  const runsError = part("#export-runs-error");

  function currentFilter() {
    const filter = ctx.filter() ?? null;
    filterText.textContent = describeFilter(filter);
    return filter;
  }

  let shown = null; // the status on show: a poll with no change announces nothing

  function downloadLink(run, className, ...content) {
    return el("a", { href: run.downloadUrl, download: "", class: className }, ...content);
  }

  function showRun(run) {
    if (run.status === shown) return;
    shown = run.status;
    if (run.status === "QUEUED" || run.status === "RUNNING") {
      const doing = run.status === "QUEUED" ? "Queued: waiting for a worker…" : "Writing the file…";
      result.replaceChildren(el("p", { class: "transfer-phase", text: `${run.format} export: ${doing}` }),
        el("progress", { "aria-label": "Export progress" }));
    } else if (run.status === "SUCCEEDED") {
      const rows = `${count(run.rowCount)} trend${run.rowCount === 1 ? "" : "s"}`;
      result.replaceChildren(
        el("p", { class: "notice", text: `Export ready: ${rows}.` }),
        downloadLink(run, "button", `Download the export (${run.format}, ${rows})`));
    } else {
      result.replaceChildren(el("p", { class: "error",
        text: `The export ${statusWord(run.status)}: ${run.message ?? "no reason was given"}.` }));
    }
  }

  async function start() {
    say(error, "");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    shown = null;
    result.replaceChildren(el("p", { class: "transfer-phase", text: "Starting the export…" }));
    try {
      const format = new FormData(form).get("format");
      const { exportTrends: queued } = await request(EXPORT_TRENDS,
        { format, filter: currentFilter() });
      showRun(queued);
      loadRuns();
      const load = async () => (await request(EXPORT_RUN, { id: queued.id })).exportRun ?? queued;
      await pollUntil(load, isFinal, showRun);
    } catch (failure) {
      result.replaceChildren();
      say(error, explain(failure));
    } finally {
      button.disabled = false;
      form.setAttribute("aria-busy", "false");
      loadRuns();
    }
  }

  function fileCell(run) {
    if (!run.downloadUrl) return el("td", { class: "muted", text: run.message ?? "—" });
    const when = new Date(run.createdAt).toLocaleString();
    return el("td", {}, downloadLink(run, null, "Download",
      el("span", { class: "visually-hidden", text: ` the ${run.format} export of ${when}` })));
  }

  function runRow(run) {
    return el("tr", { "data-run": run.id },
      el("td", {}, timeElement(run.createdAt)),
      el("td", { text: run.format }),
      statusCell(run.status),
      countCell(run.rowCount),
      el("td", { text: run.triggeredBy }),
      fileCell(run));
  }

  async function loadRuns() {
    try {
      const { exportRuns } = await request(EXPORT_RUNS, { first: PAGE_SIZE });
      const rows = exportRuns.nodes.map(runRow);
      runsBody.replaceChildren(...(rows.length ? rows : [emptyRow(6, "No exports yet.")]));
      say(runsError, "");
    } catch (failure) {
      say(runsError, `The exports could not be loaded: ${explain(failure)}`);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  // The filter is the trends table's: its description follows it when staff come here.
  root.addEventListener("focusin", currentFilter);
  root.addEventListener("pointerenter", currentFilter);
  window.addEventListener("hashchange", currentFilter);
  part("#export-runs-refresh").addEventListener("click", loadRuns);
  currentFilter();
  loadRuns();
}
