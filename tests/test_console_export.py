"""The console's Export section in real Chromium, against the real app and a real worker: the
trends of the table's filter exported, the file downloaded, its rows counted."""

import csv
import json
import re
from pathlib import Path

import pytest
from browsing import TIMEOUT_MS, Site, sign_in
from conftest import csv_text, http_client, load, make_user, post, trend_row
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.usefixtures("worker")  # the pages queue jobs

STAFF = "exporter@example.org"
SEARCH = "edge"
COUNT = "query Count($filter: TrendFilter) { trends(filter: $filter) { totalCount } }"


def seed(site: Site, tmp_path: Path) -> int:
    """Trends of which some match SEARCH; how many do, asked over HTTP as any client would."""
    rows = [trend_row(macrotrend=f"Edge AI {i}") for i in range(4)]
    rows += [trend_row(macrotrend=f"Quantum sensing {i}") for i in range(5)]
    report = load(site.db, tmp_path, csv_text(rows))
    assert report.created == len(rows)
    with http_client(base_url=site.url, timeout=10) as client:
        body = post(client, COUNT, filter={"search": SEARCH})
    matching = int(body["data"]["trends"]["totalCount"])
    assert 0 < matching < len(rows)  # a filtered view, not every trend
    return matching


def export_filtered_view(page: Page, site: Site, file_format: str) -> Path:
    """Sign in, filter the trends table, export that view; the downloaded file."""
    make_user(site.db, STAFF, staff=True)
    sign_in(page, STAFF)
    others = page.get_by_role("table", name="Trends").get_by_role("row").filter(has_text="Quantum")
    expect(others).to_have_count(5)
    page.get_by_role("searchbox", name="Search").fill(SEARCH)
    expect(others).to_have_count(0)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Export").click()
    section = page.get_by_role("region", name="Export", exact=True)
    expect(section.get_by_text(f"containing “{SEARCH}”")).to_be_visible()

    section.get_by_role("radio", name=file_format).check()
    section.get_by_role("button", name="Export", exact=True).click()
    link = section.get_by_role("link", name=re.compile(f"Download the export \\({file_format}"))
    expect(link).to_be_visible(timeout=TIMEOUT_MS)  # the worker wrote the file
    with page.expect_download() as download:
        link.click()
    path = Path(download.value.path())
    recent = section.get_by_role("table", name="Recent exports").get_by_role("row")
    expect(recent.filter(has_text=file_format).filter(has_text="Succeeded")).to_have_count(1)
    expect(recent.filter(has_text=file_format)).to_contain_text(STAFF)
    return path


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-console_export")
def test_a_csv_export_of_the_filtered_trends_downloads_with_every_matching_row(
    page: Page, site: Site, tmp_path: Path
) -> None:
    matching = seed(site, tmp_path)
    path = export_filtered_view(page, site, "CSV")

    with path.open(encoding="utf-8", newline="") as f:
        header, *rows = list(csv.reader(f, delimiter=";"))
    assert "Macrotrend" in header
    assert len(rows) == matching
    macrotrends = {row[header.index("Macrotrend")] for row in rows}
    assert all(m.startswith("Edge AI") for m in macrotrends)
    section = page.get_by_role("region", name="Export", exact=True)
    expect(section.get_by_text(f"Export ready: {matching} trends.")).to_be_visible()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-console_export")
def test_a_json_export_of_the_filtered_trends_downloads_with_every_matching_row(
    page: Page, site: Site, tmp_path: Path
) -> None:
    matching = seed(site, tmp_path)
    path = export_filtered_view(page, site, "JSON")

    records = json.loads(path.read_text(encoding="utf-8"))
    assert len(records) == matching
    assert all(r["macrotrend"].startswith("Edge AI") for r in records)
