"""GraphiQL from the vendored files, in real Chromium: it opens on our example and runs it."""

import json
from pathlib import Path

import httpx
import pytest
from browsing import Site
from conftest import csv_text, load, trend_row
from playwright.sync_api import Page, expect

from trends_gql.web.pages import EXAMPLE_QUERY


def test_graphiql_is_given_the_example_query_in_a_data_block(client: httpx.Client) -> None:
    page = client.get("/graphql", headers={"accept": "text/html"}).text
    start = page.index('<script type="application/json" id="graphiql-config">')
    block = page[page.index(">", start) + 1 : page.index("</script>", start)]
    assert json.loads(block) == {"endpoint": "/graphql", "query": EXAMPLE_QUERY}
    assert "login(email:" in EXAMPLE_QUERY


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-pages")
def test_graphiql_runs_the_example_query_with_every_request_to_its_own_origin(
    page: Page, site: Site, tmp_path: Path
) -> None:
    load(site.db, tmp_path, csv_text([trend_row(megatrend="Quantum", macrotrend="Sensing")]))
    page.goto("/graphql")
    expect(page.get_by_role("button", name="Execute query (Ctrl-Enter)")).to_be_visible()
    page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    result = page.locator(".result-window")
    expect(result).to_contain_text('"name": "Quantum"')
    expect(result).to_contain_text('"totalCount": 1')
    assert site.foreign_requests() == []
