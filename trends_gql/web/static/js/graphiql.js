// GraphiQL as Strawberry's own page runs it, from the vendored files: React, ReactDOM, GraphiQL,
// its explorer plugin and the graphql-ws client are UMD globals of the page's deferred scripts,
// which run before this module. The server's data block gives the endpoint and the opening query.

const root = document.getElementById("graphiql");
const config = JSON.parse(document.getElementById("graphiql-config").textContent);
const { React, ReactDOM, GraphiQL, GraphiQLPluginExplorer, graphqlWs } = window;

/** The WebSocket URL of the same origin's endpoint: ws(s)://host/graphql. */
function webSocketURL(endpoint) {
  const url = new URL(endpoint, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  return url.href;
}

// The editors' text lives in the URL (q, variables), so that a view can be shared and reloaded.
const parameters = Object.fromEntries(new URLSearchParams(window.location.search));
let pendingURL = null;

function updateURL(changes) {
  Object.assign(parameters, changes);
  // Once typing pauses: browsers throttle history updates made on every keystroke.
  clearTimeout(pendingURL);
  pendingURL = setTimeout(() => {
    const url = new URL(window.location.href);
    url.search = new URLSearchParams(
      Object.entries(parameters).filter(([, value]) => Boolean(value)),
    ).toString();
    window.history.replaceState(window.history.state, "", url);
  }, 300);
}

/** The GraphQL errors a failed subscription shows: the server's, or what became of the socket. */
function errorsOf(error, url) {
  if (Array.isArray(error)) return error; // the server's `error` message
  if (error instanceof CloseEvent) {
    return [{ message: `The WebSocket closed: ${error.code} ${error.reason}`.trim() }];
  }
  if (error instanceof Error) return [{ message: error.message }];
  return [{ message: `The WebSocket to ${url} could not be opened: the server refused it or ` +
    "cannot be reached (subscriptions may need a sign-in)." }];
}

/**
 * A graphql-ws client, opened on the first subscription (lazy). A failure is shown as a result
 * with `errors`: GraphiQL's own error path leaves a promise rejected without a handler.
 */
function subscriptionClient(url) {
  const client = graphqlWs.createClient({ url, lazy: true });
  return {
    subscribe: (payload, sink) =>
      client.subscribe(payload, {
        next: (result) => sink.next(result),
        complete: () => sink.complete(),
        error: (error) => {
          sink.next({ errors: errorsOf(error, url) });
          sink.complete();
        },
      }),
    dispose: () => client.dispose(),
  };
}

function start() {
  const fetcher = GraphiQL.createFetcher({
    url: config.endpoint,
    // The session cookie goes along, as with any same-origin client; JSON bodies pass the CSRF rule.
    fetch: (url, init) => window.fetch(url, { ...init, credentials: "same-origin" }),
    // Subscriptions over graphql-transport-ws, to the same origin.
    wsClient: subscriptionClient(webSocketURL(config.endpoint)),
  });
  // Made once: a new plugin object on each render would remount the explorer.
  const explorer = GraphiQLPluginExplorer.explorerPlugin();

  function GraphiQLWithExplorer() {
    const [query, setQuery] = React.useState(parameters.q || config.query);
    const [variables, setVariables] = React.useState(parameters.variables);
    const [headers, setHeaders] = React.useState(parameters.headers);

    return React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorer],
      query,
      variables,
      headers,
      onEditQuery: (text) => {
        setQuery(text);
        updateURL({ q: text });
      },
      onEditVariables: (text) => {
        setVariables(text);
        updateURL({ variables: text });
      },
      onEditHeaders: setHeaders,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    });
  }

  root.removeAttribute("aria-busy");
  ReactDOM.createRoot(root).render(React.createElement(GraphiQLWithExplorer));
}

try {
  start();
} catch (error) {
  root.removeAttribute("aria-busy");
  const message = document.createElement("p");
  message.className = "graphiql-loading";
  message.setAttribute("role", "alert");
  message.textContent = `GraphiQL could not start (${error.message}). Reload the page; ` +
    `other clients can still POST queries to ${config.endpoint}.`;
  root.replaceChildren(message);
  throw error;
}
