"""The staff console in real Chromium: sign-in, trends, sessions, and the API that backs them."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from browsing import TIMEOUT_MS, Site, sign_in
from conftest import PASSWORD, SAMPLE, http_client, make_user, post, trend_row, with_settings
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from trends_gql.core.pagination import encode_id
from trends_gql.core.settings import Settings
from trends_gql.imports.ingest import import_trends
from trends_gql.trends.curation import create_trend

pytestmark = [
    pytest.mark.parametrize("backend", ["postgresql"], indirect=True),
    pytest.mark.xdist_group("browser-console"),
]

STAFF = "staff@example.org"
FAILURES_BEFORE_LOCK = 2
TRENDS = """query($search: String) {
  trends(filter: {search: $search}) {
    nodes { id macrotrend totalCountOfPublications technologyReadinessLevel }
  }
}"""
CREATE = "mutation($input: TrendInput!) { createTrend(input: $input) { id } }"
COUNT = "query($filter: TrendFilter) { trends(filter: $filter) { totalCount } }"
MOST_PUBLISHED = """{
  trends(orderBy: {field: PUBLICATIONS, direction: DESC}, first: 1) {
    nodes { macrotrend totalCountOfPublications }
  }
}"""


@pytest.fixture
def jobs_settings(jobs_settings: Settings) -> Settings:
    """The site's settings, locking an account after two wrong passwords: a short test."""
    return with_settings(jobs_settings, login_max_failures_per_email=FAILURES_BEFORE_LOCK)


@pytest.fixture
def staff(site: Site) -> str:
    make_user(site.db, STAFF, staff=True)
    return STAFF


def api(site: Site, query: str, cookies: dict[str, str] | None = None, **variables: Any) -> Any:
    """The body of a GraphQL request to the site, as any client sends it."""
    with http_client(base_url=site.url, cookies=cookies, timeout=10) as client:
        return post(client, query, **variables)


def trends_named(site: Site, search: str) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = api(site, TRENDS, search=search)["data"]["trends"]["nodes"]
    return nodes


def shown(first: int, last: int, total: int) -> str:
    """The trends table's description of the rows it shows."""
    return f"{first}\N{EN DASH}{last} of {total} trends"


@contextmanager
def another_page(browser: Browser, site: Site) -> Iterator[Page]:
    """A page in a browser context of its own (another browser), its errors recorded."""
    context = browser.new_context(base_url=site.url, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            site.errors.append(f"console (second browser): {message.text}")

    tab.on("console", console)
    tab.on("pageerror", lambda exc: site.errors.append(f"uncaught (second browser): {exc}"))
    try:
        yield tab
    finally:
        context.close()


def test_signing_in_shows_the_email_and_a_wrong_password_or_a_lock_out_says_why(
    page: Page, staff: str
) -> None:
    page.goto("/console")
    page.get_by_label("Email").fill(staff)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    error = page.get_by_role("alert").filter(has_text="Wrong email or password")
    expect(error).to_be_visible()
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Password")).to_have_accessible_description(
        re.compile("Wrong email or password")
    )
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

    sign_in(page, staff)
    expect(page.get_by_role("heading", name="Trends")).to_be_focused()
    page.reload()  # the session outlives the page: `me` answers
    expect(page.get_by_text(f"Signed in as {staff}")).to_be_visible()
    expect(page.get_by_role("heading", name="Trends")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_role("heading", name="Trends")).to_be_hidden()

    # One more wrong password reaches the limit; then even the right one waits out the lock.
    for password in ("still not the password", None):
        page.get_by_label("Email").fill(staff)
        page.get_by_label("Password").fill(password or PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        if password:
            expect(error).to_be_visible()
    locked = page.get_by_role("alert").filter(has_text="Too many failed sign-ins")
    expect(locked).to_contain_text(re.compile(r"locked for 1[45] minutes \(until \d\d:\d\d\)"))
    expect(page.get_by_text("Signed in as")).to_be_hidden()


def test_staff_create_edit_and_delete_a_trend_with_each_error_next_to_its_field(
    page: Page, site: Site, staff: str
) -> None:
    sign_in(page, staff)
    new = page.get_by_role("button", name="New trend")
    new.click()
    dialog = page.get_by_role("dialog", name="New trend")
    expect(dialog.get_by_label("Megatrend")).to_be_focused()
    dialog.get_by_label("Megatrend").fill("Quantum")
    dialog.get_by_label("Macrotrend").fill("Quantum sensing")
    dialog.get_by_label("Challenges and research gaps").fill("Cryogenic cooling")
    dialog.get_by_label("Publications").fill("120")
    dialog.get_by_label("Readiness (TRL)").select_option(label="Development")
    dialog.get_by_label("Impact strength").select_option(label="High")
    dialog.get_by_label("STEEPL category").select_option("T")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Created “Quantum sensing” (Quantum).")).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(new).to_be_focused()
    [created] = trends_named(site, "Quantum sensing")
    assert created["totalCountOfPublications"] == 120
    assert created["technologyReadinessLevel"] == "DEVELOPMENT"

    link = page.get_by_role("link", name="Quantum sensing")
    expect(page.get_by_role("row").filter(has=link)).to_contain_text("Development")
    link.click()
    editor = page.get_by_role("dialog", name="Edit trend: Quantum sensing")
    expect(editor.get_by_label("Publications")).to_have_value("120")
    editor.get_by_label("Publications").fill("150")
    editor.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved “Quantum sensing” (Quantum).")).to_be_visible()
    assert trends_named(site, "Quantum sensing")[0]["totalCountOfPublications"] == 150

    link.click()
    editor.get_by_label("Macrotrend").fill("")
    editor.get_by_label("Publications").fill("-5")
    editor.get_by_role("button", name="Save").click()
    macrotrend, publications = (
        editor.get_by_label("Macrotrend"),
        editor.get_by_label("Publications"),
    )
    expect(macrotrend).to_have_attribute("aria-invalid", "true")
    expect(macrotrend).to_have_accessible_description("Macrotrend is required")
    expect(macrotrend).to_be_focused()
    expect(publications).to_have_attribute("aria-invalid", "true")
    expect(publications).to_have_accessible_description(re.compile("must not be negative"))
    expect(editor.get_by_role("alert")).to_have_text("Please correct: Macrotrend, Publications.")
    expect(editor.get_by_label("Patents")).not_to_have_attribute("aria-invalid", "true")
    assert trends_named(site, "Quantum sensing")[0]["totalCountOfPublications"] == 150
    editor.get_by_label("Macrotrend").fill("Quantum sensors")
    editor.get_by_label("Publications").fill("160")
    editor.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved “Quantum sensors” (Quantum).")).to_be_visible()
    assert trends_named(site, "Quantum sensing") == []
    assert trends_named(site, "Quantum sensors")[0]["totalCountOfPublications"] == 160

    page.get_by_role("link", name="Quantum sensors").click()
    page.get_by_role("dialog", name="Edit trend: Quantum sensors").get_by_role(
        "button", name="Delete"
    ).click()
    confirm = page.get_by_role("alertdialog", name="Delete this trend?")
    expect(confirm).to_contain_text("“Quantum sensors” (Quantum) will be deleted")
    expect(confirm.get_by_role("button", name="Keep it")).to_be_focused()
    confirm.get_by_role("button", name="Keep it").click()
    assert len(trends_named(site, "Quantum sensors")) == 1  # kept
    page.get_by_role("dialog", name="Edit trend: Quantum sensors").get_by_role(
        "button", name="Delete"
    ).click()
    confirm.get_by_role("button", name="Delete trend").click()
    expect(page.get_by_text("Deleted “Quantum sensors” (Quantum).")).to_be_visible()
    expect(page.get_by_role("link", name="Quantum sensors")).to_have_count(0)
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert trends_named(site, "Quantum sensors") == []


def test_staff_find_trends_by_page_filter_sort_and_search_and_a_duplicate_links_the_original(
    page: Page, site: Site, staff: str
) -> None:
    with site.db.session() as session:
        assert import_trends(session, SAMPLE).created == 44
    existing = encode_id(site.db.call_sync(lambda s: create_trend(s, trend_row(), "test")))
    sign_in(page, staff)
    table = page.get_by_role("table", name="Trends")
    rows = table.locator("tbody tr")
    expect(table).to_have_accessible_description(shown(1, 25, 45))
    page.get_by_role("button", name="Next page").click()
    expect(table).to_have_accessible_description(shown(26, 45, 45))
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(table).to_have_accessible_description(shown(1, 25, 45))

    filters = page.get_by_role("search", name="Filter trends")
    filters.get_by_label("Megatrend").select_option("Quantum Technologies")
    expect(table).to_have_accessible_description(shown(1, 5, 5))
    expect(rows.filter(has_text="Quantum Technologies")).to_have_count(5)
    filters.get_by_label("Impact").select_option("HIGH")
    high = api(site, COUNT, filter={"megatrend": "Quantum Technologies", "impactStrength": "HIGH"})
    expect(rows).to_have_count(high["data"]["trends"]["totalCount"])
    filters.get_by_role("button", name="Clear filters").click()
    expect(table).to_have_accessible_description(shown(1, 25, 45))

    most = api(site, MOST_PUBLISHED)["data"]["trends"]["nodes"][0]
    table.get_by_role("button", name="Publications").click()
    expect(table.get_by_role("columnheader", name="Publications")).to_have_attribute(
        "aria-sort", "descending"
    )
    expect(rows.first).to_contain_text(most["macrotrend"])
    expect(rows.first).to_contain_text(f"{most['totalCountOfPublications']:,}")
    filters.get_by_label("Search").fill("edge ai")
    expect(rows.filter(has=page.get_by_role("link", name="Edge AI"))).to_have_count(2)
    expect(table).to_have_accessible_description(shown(1, 2, 2))

    page.get_by_role("button", name="New trend").click()
    dialog = page.get_by_role("dialog", name="New trend")
    for label, value in [
        ("Megatrend", "AI"),
        ("Macrotrend", "Edge AI"),
        ("Challenges and research gaps", "High energy consumption"),
        ("Publications", "10"),
        ("Patents", "2"),
        ("Relevant industries", "Automotive"),
        ("Real-world applications and use cases", "Route optimisation"),
    ]:
        dialog.get_by_label(label).fill(value)
    dialog.get_by_label("Readiness (TRL)").select_option("PILOT")
    dialog.get_by_label("Impact strength").select_option("HIGH")
    dialog.get_by_label("STEEPL category").select_option("T")
    dialog.get_by_role("button", name="Save").click()
    explanation = dialog.get_by_role("alert")
    expect(explanation).to_contain_text("Another trend already has exactly these ten values")
    link = explanation.get_by_role("link", name="Open the existing trend")
    expect(link).to_have_attribute("href", f"#trends/{existing}")
    expect(link).to_be_focused()
    assert len(trends_named(site, "Edge AI")) == 2  # the sample's and the one above

    link.click()
    editor = page.get_by_role("dialog", name="Edit trend: Edge AI")
    expect(editor).to_be_visible()
    expect(editor.get_by_label("Publications")).to_have_value("10")
    expect(editor.get_by_role("button", name="Delete")).to_be_visible()
    expect(page).to_have_url(re.compile(f"#trends/{re.escape(existing)}$"))  # waits: it follows
    editor.get_by_role("button", name="Cancel").click()
    expect(editor).to_be_hidden()
    expect(page).to_have_url(re.compile("#trends$"))


def test_a_user_who_is_not_staff_sees_no_staff_actions_and_the_api_refuses_them(
    page: Page, site: Site
) -> None:
    make_user(site.db, "reader@example.org")
    sign_in(page, "reader@example.org")
    expect(page.get_by_role("heading", name="This console is for staff")).to_be_visible()
    page.goto("/console#sessions")
    page.reload()
    expect(page.get_by_role("heading", name="This console is for staff")).to_be_visible()
    for name in ("New trend", "Check", "Scan the media folder now", "End my other sessions"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("navigation", name="Console")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # The browser's own session, used as any client would: refused, though signed in.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    me = api(site, "{ me { email isStaff } }", cookies)
    assert me["data"]["me"] == {"email": "reader@example.org", "isStaff": False}
    new = {"megatrend": "AI", "macrotrend": "X", "challengesAndResearchGaps": "Y"}
    body = api(site, CREATE, cookies, input=new)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert trends_named(site, "X") == []


def test_ending_my_other_sessions_signs_the_other_browser_out(
    page: Page, site: Site, browser: Browser, staff: str
) -> None:
    sign_in(page, staff)
    with another_page(browser, site) as other:
        sign_in(other, staff)
        expect(other.get_by_role("heading", name="Trends")).to_be_visible()

        sessions = page.get_by_role("link", name="Sessions")
        sessions.press("Enter")  # by keyboard
        expect(sessions).to_have_attribute("aria-current", "page")
        expect(page.get_by_role("heading", name="My sessions")).to_be_focused()
        expect(page).to_have_url(re.compile("#sessions$"))
        rows = page.get_by_role("table", name="My sessions").locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.filter(has_text="this session")).to_have_count(1)
        expect(rows.first).to_contain_text("Chrome")
        expect(rows.first).to_contain_text("127.0.0.1")
        expect(page.get_by_role("heading", name="Trends")).to_be_hidden()

        page.get_by_role("button", name="End my other sessions").click()
        expect(page.get_by_text("Ended 1 other session.")).to_be_visible()
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("this session")
        expect(page.get_by_role("button", name="End my other sessions")).to_be_disabled()

        other.get_by_role("link", name="Sessions").click()
        expect(other.get_by_text("Your session has ended")).to_be_visible()
        expect(other.get_by_label("Email")).to_be_focused()
        expect(other.get_by_text("Signed in as")).to_be_hidden()
        other.get_by_label("Email").fill(staff)  # and back, where it was
        other.get_by_label("Password").fill(PASSWORD)
        other.get_by_role("button", name="Sign in").click()
        expect(other.get_by_role("table", name="My sessions").locator("tbody tr")).to_have_count(2)
