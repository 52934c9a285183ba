"""W5 of `make bench`: the dashboard's page loads, the GraphQL requests dashboard.js sends.

The documents are read from the page's own queries.js, and its page size and first ordering from
dashboard.js and state.js, each time the benchmark runs, so that they cannot drift from the
page's; the benchmark checks that the server answers each request without errors.
"""

import re
from pathlib import Path
from typing import Any

JS = Path(__file__).resolve().parent.parent / "trends_gql" / "web" / "static" / "js"
DASHBOARD_JS = JS / "dashboard.js"
QUERIES_JS = JS / "dashboard" / "queries.js"
STATE_JS = JS / "dashboard" / "state.js"
# What the pages' GraphQL client (static/js/graphql.js) sends with each POST.
HEADERS = {
    "content-type": "application/json",
    "accept": "application/graphql-response+json, application/json;q=0.9",
}


class PageChanged(Exception):
    """The dashboard's files no longer hold what W5 reads from them."""


def documents() -> dict[str, str]:
    """The constants of queries.js, with their `${...}` filled in as the browser does."""
    text = QUERIES_JS.read_text()
    found: dict[str, str] = {}
    for name, body in re.findall(r"^(?:export )?const (\w+) = `(.*?)`;", text, re.M | re.S):
        found[name] = re.sub(r"\$\{(\w+)\}", lambda m: found[m.group(1)], body)
    if not {"MEGATRENDS", "DASHBOARD"} <= found.keys():
        raise PageChanged(f"no MEGATRENDS or DASHBOARD in {QUERIES_JS}: update {__file__}")
    return found


def first_view() -> tuple[int, dict[str, str]]:
    """The page size (dashboard.js) and the first ordering (DEFAULT_SORT of state.js)."""
    size = re.search(r"^const PAGE_SIZE = (\d+);", DASHBOARD_JS.read_text(), re.M)
    sort = re.search(
        r'DEFAULT_SORT = \{ field: "(\w+)", direction: "(\w+)" \}', STATE_JS.read_text()
    )
    if size is None or sort is None:
        raise PageChanged(
            f"no PAGE_SIZE in dashboard.js or DEFAULT_SORT in state.js: update {__file__}"
        )
    return int(size.group(1)), {"field": sort.group(1), "direction": sort.group(2)}


def page_loads(first_megatrend: str) -> dict[str, tuple[dict[str, Any], ...]]:
    """The request payloads of opening `/` and `/?megatrend=AI`, in the order they are sent.

    On `/` the page asks for the megatrends, then for the first one's view (without the list
    again); with a megatrend in the URL, for its view and the list in one request.
    """
    queries = documents()
    page_size, order = first_view()

    def view(megatrend: str, with_megatrends: bool) -> dict[str, Any]:
        # The keys in the order of dashboard.js's `{ ...variables, megatrend, withMegatrends }`.
        variables = {
            "filter": {"megatrend": megatrend},
            "orderBy": [order],
            "first": page_size,
            "after": None,
            "megatrend": megatrend,
            "withMegatrends": with_megatrends,
        }
        return {"query": queries["DASHBOARD"], "variables": variables}

    megatrends = {"query": queries["MEGATRENDS"], "variables": {}}
    return {
        "/": (megatrends, view(first_megatrend, False)),
        "/?megatrend=AI": (view("AI", True),),
    }
