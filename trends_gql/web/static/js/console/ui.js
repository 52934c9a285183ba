// Small DOM helpers shared by the console's sections: elements, times, messages, field errors.
import { GraphQLError } from "../graphql.js";

/** An element with attributes (`text` sets its text) and children (nodes or strings). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A <time> element showing an ISO timestamp in the reader's locale, the full value on hover. */
export function timeElement(iso) {
  if (!iso) return el("span", { class: "muted", text: "—" });
  const date = new Date(iso);
  return el("time", { datetime: iso, title: date.toISOString(), text: dateTime.format(date) });
}

/** "14 minutes" or "40 seconds": a wait in words. */
export function duration(seconds) {
  const minutes = Math.ceil(seconds / 60);
  if (seconds < 90) return `${Math.ceil(seconds)} second${Math.ceil(seconds) === 1 ? "" : "s"}`;
  return `${minutes} minutes`;
}

/**
 * Show a message in a status or alert element, unhiding it. Emptied, it stays in the page and
 * takes no room (console.css), so that assistive technology announces what it is given next.
 */
export function say(element, message) {
  element.textContent = message ?? "";
  if (message) element.hidden = false;
}

/** A sentence for an error a request failed with, for people. */
export function explain(error) {
  if (!(error instanceof GraphQLError)) {
    return "The server cannot be reached: check the connection and try again.";
  }
  const wait = error.errors[0]?.extensions?.retryAfter;
  if (error.code === "FORBIDDEN") {
    return "Only staff may do this, and this account is not a staff account.";
  }
  return wait ? `${error.message} (in ${duration(wait)}).` : error.message;
}

/** Mark a control invalid with a message shown next to it and read with it. */
export function showFieldError(control, message) {
  const holder = document.getElementById(`${control.id}-error`);
  say(holder, message);
  control.setAttribute("aria-invalid", "true");
  const described = new Set((control.getAttribute("aria-describedby") || "").split(" "));
  described.add(holder.id);
  control.setAttribute("aria-describedby", [...described].filter(Boolean).join(" "));
}

/** Undo showFieldError. */
export function clearFieldError(control) {
  const holder = document.getElementById(`${control.id}-error`);
  say(holder, "");
  control.removeAttribute("aria-invalid");
  const described = (control.getAttribute("aria-describedby") || "")
    .split(" ")
    .filter((id) => id && id !== holder.id);
  if (described.length) control.setAttribute("aria-describedby", described.join(" "));
  else control.removeAttribute("aria-describedby");
}

/** Whether a request failed because the session is gone (ended elsewhere, expired). */
export function isSignedOut(error) {
  return error?.code === "UNAUTHENTICATED";
}
