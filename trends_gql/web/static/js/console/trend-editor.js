// The trend editor: a dialog to create, edit and delete one trend, with the API's errors by field.
import { request } from "../graphql.js";
import { FIELDS, TREND_SELECTION, choiceOptions } from "./trend-fields.js";
import { clearFieldError, el, explain, isSignedOut, say, showFieldError } from "./ui.js";

const TREND = `query Trend($id: ID!) { trend(id: $id) { ${TREND_SELECTION} } }`;
const CREATE = `mutation CreateTrend($input: TrendInput!) {
  createTrend(input: $input) { id megatrend macrotrend }
}`;
const UPDATE = `mutation UpdateTrend($id: ID!, $input: TrendPatch!) {
  updateTrend(id: $id, input: $input) { id megatrend macrotrend }
}`;
const DELETE = "mutation DeleteTrend($id: ID!) { deleteTrend(id: $id) }";
const INT_MAX = 2 ** 31 - 1; // GraphQL's Int
const LABELS = new Map(FIELDS.map((field) => [field.name, field.label]));

class FieldProblem extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

function control(field) {
  const id = `trend-${field.name}`;
  const hint = field.hint && el("span", { class: "hint", id: `${id}-hint`, text: field.hint });
  const common = { id, name: field.name, "aria-describedby": hint?.id, required: field.required };
  let input;
  if (field.kind === "long") input = el("textarea", { ...common, rows: 2 });
  else if (field.kind === "count") {
    input = el("input", { ...common, type: "number", min: 0, step: 1, inputmode: "numeric" });
  } else if (field.kind === "choice") {
    input = el("select", common, ...choiceOptions(field.name, field.empty ?? null));
  } else input = el("input", { ...common, type: "text", autocomplete: "off" });
  if (field.name === "megatrend") input.setAttribute("list", "megatrend-options");
  const label = el("label", { for: id }, field.label);
  if (field.required) label.append(el("span", { class: "required", text: " (required)" }));
  const wide = field.kind === "long" || field.name === "relevantIndustries";
  // Classes by kind and name: console.css lays the form out with them.
  const classes = ["field", field.kind, field.name, wide ? "wide" : ""].join(" ").trim();
  return el("div", { class: classes }, label, input, hint,
    el("p", { class: "error", id: `${id}-error` }));
}

/** A field's value for the API: text as typed, null for an empty optional value. */
function value(form, field) {
  const input = form.elements[field.name];
  const text = input.value;
  if (field.kind === "count") {
    if (input.validity.badInput) throw new FieldProblem(field, "is not a whole number");
    if (text.trim() === "") return null;
    const number = Number(text);
    if (!Number.isInteger(number)) throw new FieldProblem(field, "must be a whole number");
    if (number > INT_MAX) throw new FieldProblem(field, `is too large (at most ${INT_MAX})`);
    return number;
  }
  if (field.kind === "choice") return text || null;
  return field.required || text.trim() ? text : null;
}

/**
 * Set up the editor dialogs of the trends section: `onChanged(message)` runs after a save or a
 * delete, `onError(message)` when a trend cannot be opened, `shell.signedOut()` when the
 * session is gone. Returns create(opener), edit(id, opener), restoreFocus() and close().
 */
export function mountEditor(section, { shell, onChanged, onError }) {
  const dialog = section.querySelector("#trend-editor");
  const form = section.querySelector("#trend-form");
  const title = section.querySelector("#trend-editor-title");
  const formError = section.querySelector("#trend-form-error");
  const remove = section.querySelector("#trend-delete");
  const save = section.querySelector("#trend-save");
  const confirm = section.querySelector("#trend-confirm");
  const confirmText = section.querySelector("#trend-confirm-text");
  const confirmError = section.querySelector("#trend-confirm-error");
  const confirmDelete = section.querySelector("#trend-confirm-delete");
  section.querySelector("#trend-fields").replaceChildren(...FIELDS.map(control));
  let current = null; // the trend being edited, null for a new one
  let opener = null; // what had focus before the dialog opened, to return to
  let returnTo = null; // where focus goes after a change: a selector, found after the reload

  function clearErrors() {
    say(formError, "");
    for (const field of FIELDS) clearFieldError(form.elements[field.name]);
  }

  function open(trend, from) {
    current = trend;
    if (!dialog.open) opener = from ?? document.activeElement;
    clearErrors();
    title.textContent = trend ? `Edit trend: ${trend.macrotrend}` : "New trend";
    remove.hidden = !trend;
    for (const field of FIELDS) {
      const input = form.elements[field.name];
      const initial = trend ? trend[field.name] : null;
      const fallback = field.kind === "choice" && !field.empty ? input.options[0].value : "";
      input.value = initial ?? fallback;
    }
    if (!dialog.open) dialog.showModal();
    form.elements[FIELDS[0].name].focus();
  }

  function showProblems(problems) {
    const named = problems.filter((p) => LABELS.has(p.field));
    for (const { field, message } of named) {
      const text = `${LABELS.get(field)} ${message.replace(`${field}: `, "")}`;
      showFieldError(form.elements[field], text);
    }
    const labels = named.map((p) => LABELS.get(p.field));
    const others = problems.filter((p) => !LABELS.has(p.field)).map((p) => p.message);
    const summary = labels.length ? `Please correct: ${labels.join(", ")}.` : "";
    say(formError, [summary, ...others].join(" ").trim());
    if (named.length) form.elements[named[0].field].focus();
  }

  function showDuplicate(existing) {
    const link = el("a", { href: `#trends/${existing}`, text: "Open the existing trend" });
    say(formError, "Another trend already has exactly these ten values, and each trend must " +
      "differ from the others in at least one field. ");
    formError.append(link, " to edit it instead, or change a value here.");
    link.focus();
  }

  function failed(failure, messageElement) {
    if (isSignedOut(failure)) return shell.signedOut();
    const extensions = failure.errors?.[0]?.extensions ?? {};
    if (failure.code === "BAD_USER_INPUT" && extensions.duplicateOf) {
      return showDuplicate(extensions.duplicateOf);
    }
    if (failure.code === "BAD_USER_INPUT" && (extensions.errors || extensions.field)) {
      const { field } = extensions;
      return showProblems(extensions.errors ?? [{ field, message: failure.message }]);
    }
    if (failure.code === "NOT_FOUND") {
      return say(messageElement, "This trend no longer exists: someone may have deleted it.");
    }
    say(messageElement, explain(failure));
  }

  function changes() {
    const values = {};
    for (const field of FIELDS) {
      const now = value(form, field);
      if (!current || now !== (current[field.name] ?? null)) values[field.name] = now;
    }
    return values;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let input;
    try {
      input = changes();
    } catch (problem) {
      if (!(problem instanceof FieldProblem)) throw problem;
      return showProblems([{ field: problem.field.name, message: problem.message }]);
    }
    if (current && !Object.keys(input).length) {
      dialog.close();
      return onChanged("Nothing changed.");
    }
    save.disabled = true;
    try {
      const data = current
        ? (await request(UPDATE, { id: current.id, input })).updateTrend
        : (await request(CREATE, { input })).createTrend;
      returnTo = current ? `a[href="#trends/${data.id}"]` : "#trend-new";
      dialog.close();
      onChanged(`${current ? "Saved" : "Created"} “${data.macrotrend}” (${data.megatrend}).`);
    } catch (failure) {
      failed(failure, formError);
    } finally {
      save.disabled = false;
    }
  });

  section.querySelector("#trend-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    if (location.hash.startsWith("#trends/")) history.replaceState(null, "", "#trends");
    if (confirm.open) confirm.close();
    const target = returnTo ? null : opener;
    if (target?.isConnected) target.focus();
  });

  remove.addEventListener("click", () => {
    confirmText.textContent = `“${current.macrotrend}” (${current.megatrend}) will be deleted ` +
      "for good: this cannot be undone.";
    say(confirmError, "");
    confirm.showModal();
    section.querySelector("#trend-confirm-cancel").focus();
  });
  section.querySelector("#trend-confirm-cancel").addEventListener("click", () => confirm.close());
  confirmDelete.addEventListener("click", async () => {
    confirmDelete.disabled = true;
    try {
      await request(DELETE, { id: current.id });
      returnTo = "#trends-title";
      confirm.close();
      dialog.close();
      onChanged(`Deleted “${current.macrotrend}” (${current.megatrend}).`);
    } catch (failure) {
      failed(failure, confirmError);
    } finally {
      confirmDelete.disabled = false;
    }
  });

  return {
    create(from) {
      open(null, from);
    },
    async edit(id, from) {
      try {
        const { trend } = await request(TREND, { id });
        if (trend) return open(trend, from);
        onError("There is no trend with this id: it may have been deleted.");
      } catch (failure) {
        if (isSignedOut(failure)) shell.signedOut();
        else onError(explain(failure));
      }
    },
    /** After the table has reloaded: focus where the last change points, once. */
    restoreFocus() {
      const target = returnTo && section.querySelector(returnTo);
      returnTo = null;
      target?.focus();
    },
    close() {
      if (dialog.open) dialog.close();
    },
  };
}
