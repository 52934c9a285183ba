// Small DOM helpers of the dashboard: elements built from data, never from HTML strings.

/**
 * A new element: `attrs` sets properties (className, textContent, hidden...) or, for names
 * with a dash and for aria/role, attributes; `children` are nodes or strings.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.includes("-") || name === "role" || name === "scope" || name === "title") {
      element.setAttribute(name, value === true ? "" : String(value));
    } else {
      element[name] = value;
    }
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

const integers = new Intl.NumberFormat("en-GB");
const decimals = new Intl.NumberFormat("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** A count for people: 144,453; an em dash for a missing one. */
export function count(value) {
  return value === null || value === undefined ? "—" : integers.format(value);
}

/** A mean score with two decimals: 4.33. */
export function score(value) {
  return decimals.format(value);
}
