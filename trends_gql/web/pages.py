"""The home page (`GET /`), pointing to /graphql, and GraphiQL opened on an example of this API."""

import html
import json
import logging
import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

log = logging.getLogger(__name__)

EXAMPLE_QUERY = """\
# The Trends GraphQL API: AI trend records (megatrend, macrotrend, readiness, ...).
# Run this query with Ctrl-Enter (or the play button); the Docs pane lists every field.
{
  megatrends {
    name
    trendCount
  }
  trends(first: 5) {
    totalCount
    nodes {
      megatrend
      macrotrend
      technologyReadinessLevel
    }
  }
}

# Staff sign in from this page first: the session cookie then goes with every request.
#   mutation {
#     login(email: "you@example.org", password: "...") { email isStaff }
#   }
# then, for instance: mutation { exportTrends(format: CSV) { id status } }
# Accounts are made with `trends create-user EMAIL --staff`; `logout` signs out.
"""

# Strawberry's GraphiQL page opens on the text of this constant (or on the URL's `q`).
_OPENING = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)


def graphiql_page(page: str, query: str = EXAMPLE_QUERY) -> str:
    """Strawberry's GraphiQL `page`, opening on `query` instead of its generic welcome."""
    literal = json.dumps(query).replace("</", "<\\/")  # a JS string that cannot end the script
    opened, found = _OPENING.subn(lambda _: f"const EXAMPLE_QUERY = {literal};", page, count=1)
    if not found:
        log.warning("GraphiQL's page has changed: it opens on its own text, not our example")
    return opened


def home_route(graphql_path: str, graphiql: bool) -> Callable[[Request], Awaitable[Response]]:
    """`GET /`: a small HTML page for browsers, JSON for other clients; both point to the API."""
    pointer = {
        "graphql": graphql_path,
        "message": f"This is a GraphQL API: POST queries to {graphql_path}.",
        "health": "/healthz",
    }
    path = html.escape(graphql_path)
    explore = f'<p>Explore it in <a href="{path}">GraphiQL</a>, opened on an example query.</p>'
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Trends GraphQL API</title></head><body><h1>Trends GraphQL API</h1>"
        f'<p>This server answers GraphQL at <a href="{path}"><code>{path}</code></a>'
        " (POST a JSON body with a <code>query</code>).</p>"
        f"{explore if graphiql else ''}"
        '<p>Health: <a href="/healthz"><code>/healthz</code></a>.</p></body></html>'
    )

    async def home(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(page)
        return JSONResponse(pointer)

    return home
