"""The pages for people: the dashboard (`/`), the staff console (`/console`) and GraphiQL.

Each page is a template of `templates/` rendered once at start (web/assets.py) and talks to
/graphql only, as any client of the API does. Pages are sent with a Content-Security-Policy
that allows nothing from another host.
"""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from trends_gql.web.assets import Assets, Page

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
# The staff console (/console) does the same in forms: sign in, correct, import, export.
"""

PAGE_HEADERS = {
    "cache-control": "no-cache",  # the page names its files by content: it must be fresh
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


def page_response(page: Page) -> Response:
    """A rendered page with its security headers."""
    return HTMLResponse(page.text, headers={**PAGE_HEADERS, "content-security-policy": page.policy})


def page_route(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """`GET` of a page."""

    async def serve(request: Request) -> Response:
        return page_response(page)

    return serve


def home_route(page: Page, graphql_path: str) -> Callable[[Request], Awaitable[Response]]:
    """`GET /`: the dashboard for browsers, a JSON pointer to the API for other clients."""
    pointer = {
        "graphql": graphql_path,
        "message": f"This is a GraphQL API: POST queries to {graphql_path}.",
        "health": "/healthz",
    }

    async def home(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return page_response(page)
        return JSONResponse(pointer)

    return home


class Pages:
    """Every page, rendered once against the static files."""

    def __init__(self, assets: Assets, graphql_path: str, graphiql: bool) -> None:
        nav = {"graphql": graphql_path, "graphiql": graphiql}
        self.dashboard = assets.render("dashboard.html", config=nav)
        self.console = assets.render("console.html", config=nav)
        self.graphiql = assets.render(
            "graphiql.html", graphiql_config={"endpoint": graphql_path, "query": EXAMPLE_QUERY}
        )
