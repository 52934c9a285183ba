// The console's Import section: check a CSV file (a dry run), import it with live progress,
// the import runs of every source, and a scan of the media folder on demand.
import { request, upload } from "../graphql.js";
import { IMPORT_RUN_FIELDS, followImportRun } from "./live.js";
import { count, countCell, emptyRow, percent, statusCell, statusWord } from "./runs.js";
import { clearFieldError, el, explain, say, showFieldError, timeElement } from "./ui.js";

const IMPORT_TRENDS = `mutation ImportTrends($file: Upload!, $dryRun: Boolean) {
  importTrends(file: $file, dryRun: $dryRun) { ${IMPORT_RUN_FIELDS} }
}`;
const IMPORT_RUNS = `query ImportRuns($first: Int, $after: String) {
  importRuns(first: $first, after: $after) {
    nodes { ${IMPORT_RUN_FIELDS} }
    pageInfo { hasNextPage endCursor }
  }
}`;
const RUN_MEDIA_IMPORT = `mutation RunMediaImport { runMediaImport { ${IMPORT_RUN_FIELDS} } }`;
const PAGE_SIZE = 10;
const SOURCES = { UPLOAD: "Upload", MEDIA: "Media folder", CLI: "Command line" };

/** Fill the Import section (`root`) and start it; `ctx` is the console's (see console.js). */
export function mountImports(root, ctx) {
  const part = (selector) => root.querySelector(selector);
  const form = part("#import-form");
  const input = part("#import-file");
  const checkButton = part("#import-check");
  const startButton = part("#import-start");
  const progressBlock = part("#import-progress-block");
  const phase = part("#import-phase");
  const progress = part("#import-progress");
  const progressText = part("#import-progress-text");
  const result = part("#import-result");
  const runsBody = part("#import-runs tbody");
  const runsError = part("#import-runs-error");
  const moreButton = part("#import-runs-more");
  const scanButton = part("#media-scan");
  const scanResult = part("#media-scan-result");
  let busy = false;
  let checked = null; // {file, run}: the last finished check
  let imported = null; // the file last imported
  let cursor = null;

  function refreshButtons() {
    const file = input.files[0];
    const refused = Boolean(file) && checked?.file === file && checked.run.status === "FAILED";
    checkButton.disabled = busy;
    startButton.disabled = busy || !file || refused || imported === file;
    input.disabled = busy;
    form.setAttribute("aria-busy", String(busy));
  }

  function fileError(message) {
    if (message) showFieldError(input, message);
    else clearFieldError(input);
  }

  function showProgress(run, expectedTotal) {
    progressBlock.hidden = false;
    const total = run.rowsTotal || expectedTotal;
    const done = run.status === "SUCCEEDED" ? total : run.rowsProcessed;
    if (run.status === "QUEUED") {
      progress.removeAttribute("value"); // indeterminate
      say(progressText, "Waiting for a worker to take it…");
    } else if (total > 0) {
      progress.max = total;
      progress.value = Math.min(done, total);
      say(progressText, `${count(done)} of ${count(total)} rows (${percent(done, total)})`);
    } else {
      progress.removeAttribute("value");
      say(progressText, done ? `${count(done)} rows read…` : "Reading the file…");
    }
  }

  function counts(run) {
    // A file with refused rows would import nothing: what its valid rows would do is moot.
    const items = run.dryRun && run.rowsInvalid
      ? [
          ["Rows read", run.rowsTotal],
          ["Valid", run.rowsTotal - run.rowsInvalid],
          ["Refused", run.rowsInvalid, "refused"],
        ]
      : run.dryRun
      ? [
          ["Rows read", run.rowsTotal],
          ["Would be created", run.rowsCreated, "created"],
          ["Would be skipped (already there)", run.rowsSkipped],
          ["Refused", run.rowsInvalid, "refused"],
        ]
      : [
          ["Rows read", run.rowsTotal],
          ["Created", run.rowsCreated, "created"],
          ["Skipped (already there)", run.rowsSkipped],
          ["Refused", run.rowsInvalid, "refused"],
        ];
    return el("dl", { class: "counts" },
      ...items.map(([term, value, kind]) => el("div", { class: value > 0 ? kind : null },
        el("dt", { text: term }), el("dd", { text: count(value) }))));
  }

  function refusals(run) {
    const shown = run.errors.length;
    const caption = shown < run.rowsInvalid
      ? `Refused rows: the first ${count(shown)} of ${count(run.rowsInvalid)}`
      : "Refused rows";
    return el("div", { class: "refusals" },
      el("table", {},
        el("caption", { text: caption }),
        el("thead", {}, el("tr", {},
          el("th", { scope: "col", class: "number", text: "Line" }),
          el("th", { scope: "col", text: "Column" }),
          el("th", { scope: "col", text: "Message" }))),
        el("tbody", {}, ...run.errors.map((e) => el("tr", {},
          el("td", { class: "number", text: String(e.line) }),
          el("td", { text: e.column ?? "(the whole row)" }),
          el("td", { text: e.message }))))));
  }

  function outcomeTitle(run) {
    const name = run.fileName;
    if (run.dryRun) {
      return run.rowsInvalid
        ? `Check of ${name}: ${count(run.rowsInvalid)} rows refused, nothing written`
        : `Check of ${name}: every row is valid, nothing written`;
    }
    return run.status === "SUCCEEDED" ? `Imported ${name}` : `The import of ${name} failed`;
  }

  function showOutcome(run, file) {
    if (run.status === "FAILED" && run.rowsTotal === 0) {
      // The file itself was refused (not CSV, no header, a lost file...): it belongs by the field.
      progressBlock.hidden = true;
      fileError(`${file.name} was refused: ${run.message ?? "the import failed"}.`);
      return;
    }
    showProgress(run, 0);
    const parts = [el("h3", { text: outcomeTitle(run) }), counts(run)];
    // A check's refused rows are its title; any other message is said as the server put it.
    if (run.message && !(run.dryRun && run.rowsInvalid)) {
      parts.push(el("p", { class: run.status === "FAILED" ? "error" : "muted",
        text: `${run.message.charAt(0).toUpperCase()}${run.message.slice(1)}.` }));
    }
    if (run.dryRun && run.rowsInvalid) {
      parts.push(el("p", { class: "hint", text: "An import takes all the rows or none: correct "
        + "the refused rows, then choose the file again and check it." }));
    } else if (run.dryRun) {
      parts.push(el("p", { class: "notice", text: "Ready: “Import” adds these rows." }));
    }
    if (run.errors.length) parts.push(refusals(run));
    result.replaceChildren(...parts);
  }

  async function start(dryRun) {
    const file = input.files[0];
    if (!file) {
      fileError("Choose a CSV file first.");
      input.focus();
      return;
    }
    fileError(null);
    result.replaceChildren();
    busy = true;
    refreshButtons();
    const expected = !dryRun && checked?.file === file ? checked.run.rowsTotal : 0;
    say(phase, dryRun ? `Checking ${file.name}…` : `Importing ${file.name}…`);
    progressBlock.hidden = false;
    progress.removeAttribute("value");
    say(progressText, "Uploading…");
    try {
      const { importTrends: queued } = await upload(IMPORT_TRENDS, { dryRun }, { file });
      loadRuns();
      const run = await followImportRun(queued.id, (r) => showProgress(r, expected), {
        onMode: (mode) => { progressBlock.dataset.live = mode; },
      });
      say(phase, dryRun ? `Checked ${file.name}` : `${file.name}: import ${statusWord(run.status)}`);
      showOutcome(run, file);
      if (dryRun) checked = { file, run };
      else if (run.status === "SUCCEEDED") {
        imported = file;
        ctx.onTrendsChanged();
      }
    } catch (error) {
      progressBlock.hidden = true;
      fileError(explain(error));
    } finally {
      busy = false;
      refreshButtons();
      loadRuns();
    }
  }

  function errorsCell(run) {
    if (!run.errors.length && !run.message) return el("td", { class: "muted", text: "—" });
    const summary = run.errors.length
      ? `${count(run.rowsInvalid)} refused row${run.rowsInvalid === 1 ? "" : "s"}`
      : "Message";
    return el("td", {}, el("details", {},
      el("summary", { text: summary }),
      run.message ? el("p", { text: run.message }) : null,
      run.errors.length
        ? el("ul", {}, ...run.errors.map((e) => el("li", {
          text: `line ${e.line}${e.column ? `, ${e.column}` : ""}: ${e.message}` })))
        : null));
  }

  function runRow(run) {
    return el("tr", { "data-run": run.id },
      el("td", { class: "file", text: run.fileName }),
      el("td", { text: SOURCES[run.source] ?? run.source }),
      el("td", { text: run.dryRun ? "Check" : "Import" }),
      statusCell(run.status),
      countCell(run.rowsTotal),
      countCell(run.rowsCreated),
      countCell(run.rowsSkipped),
      countCell(run.rowsInvalid),
      el("td", { text: run.triggeredBy }),
      el("td", {}, timeElement(run.createdAt)),
      errorsCell(run));
  }

  async function loadRuns(more = false) {
    try {
      const { importRuns } = await request(IMPORT_RUNS, {
        first: PAGE_SIZE, after: more ? cursor : null });
      const rows = importRuns.nodes.map(runRow);
      if (more) runsBody.append(...rows);
      else runsBody.replaceChildren(...(rows.length ? rows : [emptyRow(11, "No imports yet.")]));
      cursor = importRuns.pageInfo.endCursor;
      moreButton.hidden = !importRuns.pageInfo.hasNextPage;
      say(runsError, "");
    } catch (error) {
      say(runsError, `The import runs could not be loaded: ${explain(error)}`);
    }
  }

  async function scan() {
    scanButton.disabled = true;
    say(scanResult, "Scanning the media folder…");
    try {
      const { runMediaImport: queued } = await request(RUN_MEDIA_IMPORT);
      if (!queued.length) {
        say(scanResult, "No file was waiting in the media folder (a file is taken once it has "
          + "not changed for a while).");
        return;
      }
      const names = queued.map((r) => r.fileName).join(", ");
      const files = queued.length === 1 ? "1 file" : `${queued.length} files`;
      say(scanResult, `Queued ${files} from the media folder: ${names}.`);
      loadRuns();
      const ended = await Promise.all(queued.map((r) => followImportRun(r.id, () => {})));
      say(scanResult, ended.map((r) => `${r.fileName}: ${statusWord(r.status)}`
        + (r.status === "SUCCEEDED" ? `, ${count(r.rowsCreated)} created` : "")).join("; ") + ".");
      if (ended.some((r) => r.status === "SUCCEEDED" && r.rowsCreated > 0)) ctx.onTrendsChanged();
    } catch (error) {
      say(scanResult, `The scan failed: ${explain(error)}`);
    } finally {
      scanButton.disabled = false;
      loadRuns();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    start(true);
  });
  startButton.addEventListener("click", () => start(false));
  input.addEventListener("change", () => {
    fileError(null);
    result.replaceChildren();
    progressBlock.hidden = true;
    refreshButtons();
  });
  part("#import-runs-refresh").addEventListener("click", () => loadRuns());
  moreButton.addEventListener("click", () => loadRuns(true));
  scanButton.addEventListener("click", scan);
  refreshButtons();
  loadRuns();
}
