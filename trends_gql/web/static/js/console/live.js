// Following a run until it ends. An import run: the `importRunUpdated` subscription over
// graphql-transport-ws, falling back to polling `importRun` when WebSockets are unavailable,
// fail, or end early, or when the page's URL says `?live=poll`. Other runs: polling.

import { GraphQLError, pageConfig, request } from "../graphql.js";

/** The statuses after which a run changes no more. */
const FINAL_STATUSES = Object.freeze(["SUCCEEDED", "FAILED"]);
const POLL_MS = 700;
const VENDORED_CLIENT = "../../vendor/graphql-ws/graphql-ws.min.js"; // a UMD build: a global

/** Every field of an import run that the console shows. */
export const IMPORT_RUN_FIELDS = `
  id fileName source dryRun status rowsTotal rowsProcessed rowsCreated rowsSkipped rowsInvalid
  message triggeredBy createdAt startedAt finishedAt errors { line column message }`;

const IMPORT_RUN = `query ImportRun($id: ID!) { importRun(id: $id) { ${IMPORT_RUN_FIELDS} } }`;
const IMPORT_RUN_UPDATED = `subscription ImportRunUpdated($id: ID!) {
  importRunUpdated(id: $id) { ${IMPORT_RUN_FIELDS} }
}`;

/** True when a run (or null) has ended. */
export function isFinal(run) {
  return FINAL_STATUSES.includes(run?.status);
}

/** How this page follows runs: "poll" when asked (`?live=poll`) or without WebSockets. */
export function liveMode(search = window.location.search) {
  if (new URLSearchParams(search).get("live") === "poll") return "poll";
  return typeof WebSocket === "function" ? "subscribe" : "poll";
}

function sleep(ms) {
  return new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
}

/**
 * Call `load()` until `done(value)`, waiting `interval` ms between calls; each value goes to
 * `onUpdate`. Resolves to the last value; rejects when a load fails.
 */
export async function pollUntil(load, done, onUpdate, interval = POLL_MS) {
  for (;;) {
    const value = await load();
    onUpdate(value);
    if (done(value)) return value;
    await sleep(interval);
  }
}

/** The import run `id`, read over HTTP; rejects when there is none. */
async function loadImportRun(id) {
  const { importRun } = await request(IMPORT_RUN, { id });
  if (!importRun) {
    throw new GraphQLError([{ message: "This import run no longer exists.",
      extensions: { code: "NOT_FOUND" } }]);
  }
  return importRun;
}

/** The WebSocket URL of the GraphQL endpoint: same host, ws: or wss: as the page is secure. */
function socketUrl() {
  const url = new URL(pageConfig.graphql, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

async function graphqlWs() {
  try {
    await import(VENDORED_CLIENT);
  } catch (error) {
    throw new SubscriptionLost(error);
  }
  if (!globalThis.graphqlWs?.createClient) throw new SubscriptionLost("no graphql-ws client");
  return globalThis.graphqlWs;
}

/** Why a subscription gave up: the caller polls instead. */
class SubscriptionLost extends Error {
  constructor(reason) {
    const detail = reason?.message ?? (reason?.code ? `socket closed (${reason.code})` : reason);
    super(`live updates unavailable: ${detail}`);
    this.name = "SubscriptionLost";
  }
}

async function subscribeToRun(id, onUpdate) {
  const { createClient } = await graphqlWs();
  return new Promise((resolve, reject) => {
    let over = false;
    let unsubscribe = () => {};
    // Lazy (the default): the socket opens with the subscription and closes with it.
    const client = createClient({ url: socketUrl(), retryAttempts: 0 });
    const stop = (settle, value) => {
      if (over) return;
      over = true;
      unsubscribe();
      client.dispose();
      settle(value);
    };
    // The server sends the run at once, then after each change, and completes once it ended.
    unsubscribe = client.subscribe(
      { query: IMPORT_RUN_UPDATED, variables: { id } },
      {
        next: (result) => {
          const run = result.data?.importRunUpdated;
          if (result.errors?.length || !run) {
            stop(reject, new SubscriptionLost(new GraphQLError(result.errors ?? [])));
            return;
          }
          if (over) return;
          onUpdate(run);
          if (isFinal(run)) stop(resolve, run);
        },
        error: (error) => stop(reject, new SubscriptionLost(error)),
        complete: () => stop(reject, new SubscriptionLost("the server ended it before the run")),
      },
    );
  });
}

/**
 * Follow import run `id` until it ends: `onUpdate(run)` on each change; resolves to the final
 * run. `mode` ("subscribe" or "poll") defaults to the page's `liveMode()`; `onMode(mode)`
 * says which one is in use (it changes to "poll" when the subscription fails).
 */
export async function followImportRun(id, onUpdate, { mode = liveMode(), onMode } = {}) {
  if (mode === "subscribe") {
    onMode?.("subscribe");
    try {
      return await subscribeToRun(id, onUpdate);
    } catch (error) {
      if (!(error instanceof SubscriptionLost)) throw error;
    }
  }
  onMode?.("poll");
  return pollUntil(() => loadImportRun(id), isFinal, onUpdate);
}
