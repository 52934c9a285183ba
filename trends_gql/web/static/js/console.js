// The staff console's shell: who is signed in, which section shows, and the sections' modules.
import { pageConfig, request } from "./graphql.js";
import { mountExports } from "./console/exports.js";
import { mountImports } from "./console/imports.js";
import { mountSessions } from "./console/sessions.js";
import { mountSignIn } from "./console/signin.js";
import { mountTrends } from "./console/trends.js";
import { el, explain, say } from "./console/ui.js";

const SECTIONS = ["trends", "import", "export", "sessions"];
const ME = "query Me { me { id email isStaff } }";
const LOGOUT = "mutation SignOut { logout }";
const NOTICE = "console:notice"; // sessionStorage: a message for the page loaded next
const SESSION_ENDED =
  "Your session has ended (signed out elsewhere, or unused for too long): sign in again.";

const $ = (id) => document.getElementById(id);
const account = $("account");
const workspace = $("workspace");
const notStaff = $("not-staff");
const problem = $("console-error");

let mounted = null; // the workspace's sections, mounted once per page load for one user
let showing = null; // the name of the section shown

const shell = { signedOut };
const signIn = mountSignIn($("signin"), { onSignedIn: (user) => enter(user, true) });

function showAccount(user) {
  const signOut = el("button", { type: "button", class: "secondary" }, "Sign out");
  signOut.addEventListener("click", async () => {
    signOut.disabled = true;
    try {
      await request(LOGOUT);
    } catch (failure) {
      signOut.disabled = false;
      say(problem, explain(failure));
      return;
    }
    // A fresh page: nothing of the signed-out user's work stays in memory.
    sessionStorage.setItem(NOTICE, "You have signed out.");
    location.reload();
  });
  account.replaceChildren(el("span", { text: `Signed in as ${user.email}` }), signOut);
  account.hidden = false;
}

/**
 * After a login (`moveFocus`: to the heading of what it shows), or on load with a live session:
 * the workspace for staff, a notice for others.
 */
function enter(user, moveFocus = false) {
  if (mounted && mounted.user.email !== user.email) {
    location.reload(); // another user: start afresh
    return;
  }
  signIn.hide();
  say(problem, "");
  showAccount(user);
  if (!user.isStaff) {
    $("not-staff-email").textContent = user.email;
    notStaff.hidden = false;
    if (moveFocus) focusHeading("not-staff");
    return;
  }
  if (!mounted) mount(user);
  workspace.hidden = false;
  showing = null;
  route(moveFocus);
}

function mount(user) {
  const trends = mountTrends($("trends"), shell);
  const sessions = mountSessions($("sessions"), shell);
  const ctx = { user, filter: () => trends.filter(), onTrendsChanged: () => trends.reload() };
  mountImports($("import"), ctx);
  mountExports($("export"), ctx);
  mounted = { user, trends, sessions };
}

/** The session is gone (ended elsewhere or expired): ask to sign in again, keeping the page. */
function signedOut() {
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  workspace.hidden = true;
  notStaff.hidden = true;
  account.hidden = true;
  signIn.show(SESSION_ENDED);
}

function focusHeading(name) {
  const heading = $(`${name}-title`);
  if (!heading) return;
  if (!heading.hasAttribute("tabindex")) heading.tabIndex = -1;
  heading.focus();
}

/** Show the section the URL's hash names (#sessions, or #trends/<id> to open a trend). */
function route(moveFocus) {
  if (!mounted || workspace.hidden) return;
  const [name, ...rest] = location.hash.slice(1).split("/");
  if (!SECTIONS.includes(name) && showing) return; // another anchor, such as the skip link's
  const section = SECTIONS.includes(name) ? name : "trends";
  for (const other of SECTIONS) $(other).hidden = other !== section;
  for (const link of $("console-nav").querySelectorAll("a")) {
    if (link.hash === `#${section}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const changed = section !== showing;
  showing = section;
  if (section !== "trends") mounted.trends.close();
  if (section === "sessions") mounted.sessions.show();
  let id = null;
  try {
    id = rest.length ? decodeURIComponent(rest.join("/")) : null;
  } catch {
    id = null; // a malformed hash: the section alone
  }
  if (section === "trends" && id) mounted.trends.open(id);
  else if (moveFocus && changed) focusHeading(section);
}

async function start() {
  document.querySelector("[data-graphiql]").hidden = !pageConfig.graphiql;
  const notice = sessionStorage.getItem(NOTICE);
  sessionStorage.removeItem(NOTICE);
  try {
    const { me } = await request(ME);
    if (me) enter(me);
    else signIn.show(notice ?? "");
  } catch (failure) {
    say(problem, `${explain(failure)} Reload the page to try again.`);
  }
}

window.addEventListener("hashchange", () => route(true));
start();
