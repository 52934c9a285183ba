"""The console's Import section in real Chromium, against the real app and a real worker:
a file checked (a dry run: counts and refused rows, nothing written), a file imported with
progress to 100 % (live over the subscription, or polling), the runs list, the media scan."""

import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browsing import TIMEOUT_MS, Site, sign_in
from conftest import csv_text, generate_csv, http_client, make_user, post, trend_row, with_settings
from playwright.sync_api import Locator, Page, WebSocket, expect

from trends_gql.core.settings import Settings

pytestmark = pytest.mark.usefixtures("worker")  # the pages queue jobs

STAFF = "importer@example.org"
BIG_FILE_ROWS = 2000
BATCH_ROWS = 500  # progress is recorded once a batch: four updates
COUNT = "query { trends { totalCount } }"


@pytest.fixture
def jobs_settings(jobs_settings: Settings) -> Settings:
    """The test's job settings, with batches small enough for several progress updates."""
    return with_settings(jobs_settings, import_batch_size=BATCH_ROWS)


def trend_count(site: Site) -> int:
    """How many trends the API lists, asked over HTTP as any client would."""
    with http_client(base_url=site.url, timeout=10) as client:
        return int(post(client, COUNT)["data"]["trends"]["totalCount"])


def import_section(page: Page) -> Locator:
    """The Import section, opened from the console's navigation."""
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Import").click()
    section = page.get_by_role("region", name="Import", exact=True)
    expect(section).to_be_visible()
    return section


def count_of(section: Locator, term: str) -> Locator:
    """The value shown for one of a result's counts ("Refused", "Created"...)."""
    return (
        section.locator(".counts div")
        .filter(has=section.page.get_by_text(term, exact=True))
        .locator("dd")
    )


def check_then_import(page: Page, site: Site, tmp_path: Path, console: str = "/console") -> Locator:
    """The whole story, on the console at `console`: a file that is not the pipeline's refused,
    a file with refused rows checked, then a big file checked and imported."""
    make_user(site.db, STAFF, staff=True)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        csv_text(
            [
                trend_row(macrotrend="Valid one"),
                trend_row(impact_strength="Huge"),
                trend_row(macrotrend="Valid two"),
                trend_row(technology_readiness_level="Someday"),
            ]
        ),
        encoding="utf-8",
        newline="",
    )
    big = generate_csv(BIG_FILE_ROWS, tmp_path / "big.csv")
    notes = tmp_path / "notes.csv"
    notes.write_text("Some notes, not trends\n", encoding="utf-8")
    sign_in(page, STAFF)
    if console != "/console":
        page.goto(console)  # signed in: the workspace opens at once
    section = import_section(page)
    field = section.get_by_label("CSV file")

    field.set_input_files(notes)
    section.get_by_role("button", name="Check", exact=True).click()
    refusal = section.get_by_role("alert").filter(has_text="notes.csv was refused")
    expect(refusal).to_contain_text("header not recognised", timeout=TIMEOUT_MS)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(re.compile("notes.csv was refused"))
    expect(section.get_by_role("button", name="Import", exact=True)).to_be_disabled()

    field.set_input_files(mixed)
    expect(field).not_to_have_attribute("aria-invalid", "true")
    section.get_by_role("button", name="Check", exact=True).click()
    title = section.get_by_role("heading", name=re.compile("Check of mixed.csv"))
    expect(title).to_be_visible(timeout=TIMEOUT_MS)  # the worker took it and ended
    expect(count_of(section, "Rows read")).to_have_text("4")
    expect(count_of(section, "Valid")).to_have_text("2")
    expect(count_of(section, "Refused")).to_have_text("2")
    refused = section.get_by_role("table", name="Refused rows")
    expect(refused.get_by_role("row")).to_have_count(3)  # a header and two rows
    expect(refused.get_by_role("row").nth(1)).to_have_text(
        re.compile(r"3\s*Impact Strength\s*unknown value 'Huge'")
    )
    expect(refused.get_by_role("row").nth(2)).to_have_text(
        re.compile(r"5\s*Technology Readiness Level\s*unknown value 'Someday'")
    )
    # A file with refused rows cannot be imported (all rows or none), and nothing was written.
    expect(section.get_by_role("button", name="Import", exact=True)).to_be_disabled()
    assert trend_count(site) == 0

    field.set_input_files(big)
    section.get_by_role("button", name="Check", exact=True).click()
    expect(count_of(section, "Would be created")).to_have_text(
        f"{BIG_FILE_ROWS:,}", timeout=TIMEOUT_MS
    )
    assert trend_count(site) == 0
    section.get_by_role("button", name="Import", exact=True).click()
    progress = section.get_by_role("progressbar", name="Import progress")
    expect(progress).to_be_visible()
    done = section.get_by_role("heading", name="Imported big.csv")
    expect(done).to_be_visible(timeout=TIMEOUT_MS)
    expect(progress).to_have_attribute("value", str(BIG_FILE_ROWS))
    expect(progress).to_have_attribute("max", str(BIG_FILE_ROWS))
    expect(
        section.get_by_text(f"{BIG_FILE_ROWS:,} of {BIG_FILE_ROWS:,} rows (100%)")
    ).to_be_visible()
    expect(count_of(section, "Created")).to_have_text(f"{BIG_FILE_ROWS:,}")
    assert trend_count(site) == BIG_FILE_ROWS

    runs = section.get_by_role("table", name="Import runs")
    rows = runs.get_by_role("row").filter(has_text="big.csv")
    imported = rows.filter(has=page.get_by_role("cell", name="Import", exact=True))
    expect(imported).to_have_count(1)
    for shown in ("Upload", "Succeeded", f"{BIG_FILE_ROWS:,}", STAFF):
        expect(imported).to_contain_text(shown)
    checked = runs.get_by_role("row").filter(has_text="mixed.csv")
    expect(checked).to_contain_text("Check")
    expect(checked).to_contain_text("Failed")
    checked.get_by_text("2 refused rows").click()  # the errors unfold
    expect(checked.get_by_text("line 3, Impact Strength: unknown value 'Huge'")).to_be_visible()
    return section


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-console_import")
def test_a_file_is_checked_then_imported_with_live_progress_over_the_subscription(
    page: Page, site: Site, tmp_path: Path
) -> None:
    sockets: list[WebSocket] = []
    events: list[str] = []

    def opened(socket: WebSocket) -> None:
        sockets.append(socket)
        socket.on("framereceived", lambda frame: events.append(str(frame)))

    page.on("websocket", opened)
    section = check_then_import(page, site, tmp_path)

    expect(section.locator("#import-progress-block")).to_have_attribute("data-live", "subscribe")
    assert sockets
    assert all(urlsplit(s.url).path == "/graphql" for s in sockets)
    updates = [e for e in events if '"type":"next"' in e.replace(" ", "")]
    assert any('"SUCCEEDED"' in e for e in updates), events
    assert len(updates) >= 2, "the run was followed through its changes, not read once"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-console_import")
def test_a_file_is_checked_then_imported_with_progress_by_polling_when_asked(
    page: Page, site: Site, tmp_path: Path
) -> None:
    sockets: list[WebSocket] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    section = check_then_import(page, site, tmp_path, console="/console?live=poll")

    expect(section.locator("#import-progress-block")).to_have_attribute("data-live", "poll")
    assert sockets == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-console_import")
def test_a_media_folder_scan_queues_a_dropped_file_and_follows_its_run_when_the_socket_fails(
    page: Page, site: Site
) -> None:
    make_user(site.db, STAFF, staff=True)
    # A socket that the network drops as soon as it is used: the page falls back to polling.
    page.route_web_socket(
        re.compile(r"/graphql$"),
        lambda socket: socket.on_message(lambda _: socket.close(code=1011, reason="dropped")),
    )
    dropped = site.settings.media_dir / "dropped.csv"
    dropped.parent.mkdir(parents=True, exist_ok=True)
    dropped.write_text(csv_text([trend_row(macrotrend=f"Dropped {i}") for i in range(3)]))
    settled = time.time() - site.settings.import_settle_seconds - 60
    os.utime(dropped, (settled, settled))  # unchanged for longer than the settle time
    sign_in(page, STAFF)
    section = import_section(page)

    section.get_by_role("button", name="Scan the media folder now").click()
    result = section.get_by_role("status").filter(has_text="dropped.csv")
    expect(result).to_have_text("dropped.csv: succeeded, 3 created.", timeout=TIMEOUT_MS)
    row = (
        section.get_by_role("table", name="Import runs")
        .get_by_role("row")
        .filter(has_text="dropped.csv")
    )
    for shown in ("Media folder", "Import", "Succeeded", STAFF):
        expect(row).to_contain_text(shown)
    assert trend_count(site) == 3

    section.get_by_role("button", name="Scan the media folder now").click()
    expect(section.get_by_role("status").filter(has_text="media folder")).to_have_text(
        re.compile("No file was waiting in the media folder")
    )
