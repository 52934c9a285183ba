"""Browser fixtures: real Chromium (Debian's package) driven by Playwright, against the real app,
PostgreSQL and Redis, and a real RQ worker process where pages queue jobs. conftest.py imports
them.

`playwright install` cannot download browsers here, so Chromium comes from the system
(`CHROMIUM`, or `chromium` on the PATH). Without it the browser tests are skipped, saying why,
except in CI, where they fail. A failing test leaves a screenshot under var/test-screenshots/.
"""

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright

from trends_gql.core.db import Database
from trends_gql.core.settings import Settings

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "test-screenshots"
TIMEOUT_MS = 15_000  # the machine is shared: generous, and only ever waited out on a failure
expect.set_options(timeout=TIMEOUT_MS)  # expect()'s own default (5 s), as the pages' actions
# Each test's reports by phase, for the page fixture to know whether the test failed.
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for a test module.

    Not for the session: while Playwright's sync API runs, its event loop counts as running in
    this thread, and the tests after it that start one of their own (anyio.run) would fail.
    """
    if CHROMIUM is None:
        message = "Chromium is not installed (apt-get install chromium): browser tests skipped"
        if os.environ.get("CI"):
            pytest.fail(f"{message}, which CI does not allow")
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@dataclass
class Site:
    """The served app, its settings and database, and the requests a page made."""

    url: str
    settings: Settings
    db: Database
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        """Requests of the pages to any origin but the app's own."""
        own = urlsplit(self.url)
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob")
            and (urlsplit(url).hostname, urlsplit(url).port) != (own.hostname, own.port)
        ]


@pytest.fixture
def site(jobs_settings: Settings, db: Database) -> Iterator[Site]:
    """The real app served by uvicorn with the test's settings (pages that queue jobs ask for
    `worker` too)."""
    from conftest import serve

    from trends_gql.web.app import create_app

    with serve(create_app(jobs_settings)) as url:
        yield Site(url, jobs_settings, db)


@pytest.fixture
def worker(site: Site) -> Iterator[None]:
    """A real `trends worker` process on the site's queue. Only for the tests of pages that queue
    imports or exports: a process costs seconds of the machine's time."""
    from conftest import TRENDS, settings_env

    process = subprocess.Popen(
        [TRENDS, "worker"],
        env=settings_env(site.settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def page(browser: Browser, site: Site, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context's page on `site`; every request and script error is recorded.

    A test fails when a page of ours throws an uncaught error or logs one to the console.
    """
    context = browser.new_context(base_url=site.url, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()

    def record(req: Request) -> None:
        site.requests.append(req.url)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            site.errors.append(f"console: {message.text}")

    tab.on("request", record)
    tab.on("console", console)
    tab.on("pageerror", lambda exc: site.errors.append(f"uncaught: {exc}"))
    yield tab
    reports = request.node.stash.get(REPORTS, {})
    if "call" in reports and reports["call"].failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        path = SCREENSHOTS / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failing page: {path}")
    context.close()
    if site.errors and not ("call" in reports and reports["call"].failed):
        pytest.fail("the page reported errors:\n" + "\n".join(site.errors))


def sign_in(page: Page, email: str, password: str | None = None) -> None:
    """Sign in through the console's form, as a person does, and wait until it has worked."""
    from conftest import PASSWORD

    page.goto("/console")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password or PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
