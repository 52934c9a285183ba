// The console's sessions: where the account is signed in (`mySessions`), and ending the others.
import { request } from "../graphql.js";
import { el, explain, isSignedOut, say, timeElement } from "./ui.js";

const SESSIONS = `query MySessions {
  mySessions { id createdAt lastSeenAt expiresAt clientAddress userAgent current }
}`;
const END_OTHERS = "mutation EndOtherSessions { endOtherSessions }";

// Most specific first: Edge's agent also names Chrome, and Chrome's names Safari.
const BROWSERS = [
  ["Edge", /Edg\/(\d+)/], ["Opera", /OPR\/(\d+)/], ["Firefox", /Firefox\/(\d+)/],
  ["Chrome", /Chrome\/(\d+)/], ["Safari", /Version\/(\d+).*Safari/],
];
const SYSTEMS = [
  ["Android", "Android"], ["iPhone", "iOS"], ["iPad", "iPadOS"], ["Windows", "Windows"],
  ["Mac OS X", "macOS"], ["CrOS", "ChromeOS"], ["Linux", "Linux"],
];

/** "Firefox 128 on Linux": the browser and system a user agent names, or the agent itself. */
export function browserName(agent) {
  if (!agent) return "Unknown browser";
  const browser = BROWSERS.map(([name, pattern]) => [name, agent.match(pattern)]).find(
    ([, match]) => match,
  );
  if (!browser) return agent.slice(0, 60);
  const system = SYSTEMS.find(([word]) => agent.includes(word));
  const name = `${browser[0]} ${browser[1][1]}`;
  return system ? `${name} on ${system[1]}` : name;
}

function row(session) {
  const browser = el("td", {}, el("span", { title: session.userAgent ?? "", text:
    browserName(session.userAgent) }));
  if (session.current) browser.append(" ", el("span", { class: "badge", text: "this session" }));
  return el(
    "tr",
    { class: session.current ? "current" : null },
    browser,
    el("td", { text: session.clientAddress ?? "—" }),
    el("td", {}, timeElement(session.createdAt)),
    el("td", {}, timeElement(session.lastSeenAt)),
    el("td", {}, timeElement(session.expiresAt)),
  );
}

/** Set up the sessions section; `shell.signedOut()` when the session is gone. Returns `show()`. */
export function mountSessions(section, shell) {
  const body = section.querySelector("#sessions-table tbody");
  const notice = section.querySelector("#sessions-notice");
  const error = section.querySelector("#sessions-error");
  const endOthers = section.querySelector("#sessions-end-others");

  function failed(failure) {
    if (isSignedOut(failure)) shell.signedOut();
    else say(error, explain(failure));
  }

  async function load() {
    section.setAttribute("aria-busy", "true");
    try {
      const { mySessions } = await request(SESSIONS);
      say(error, "");
      body.replaceChildren(...mySessions.map(row));
      endOthers.disabled = mySessions.every((session) => session.current);
    } catch (failure) {
      failed(failure);
    } finally {
      section.setAttribute("aria-busy", "false");
    }
  }

  endOthers.addEventListener("click", async () => {
    endOthers.disabled = true;
    say(notice, "");
    try {
      const { endOtherSessions: ended } = await request(END_OTHERS);
      say(notice, ended === 1 ? "Ended 1 other session." : `Ended ${ended} other sessions.`);
      await load();
    } catch (failure) {
      endOthers.disabled = false;
      failed(failure);
    }
  });

  return {
    show() {
      say(notice, "");
      return load();
    },
  };
}
