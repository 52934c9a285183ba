"""The pages' static files: fingerprinted names, caching headers, the import map, the policy."""

import re
from pathlib import Path

import httpx
import pytest
from browsing import Site
from playwright.sync_api import Page

from trends_gql.web.assets import IMMUTABLE, STATIC_DIR, Assets, fingerprinted, script_hash

PAGES = ["/", "/console", "/graphql"]
HTML = {"accept": "text/html"}


def static_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', page)


def test_a_fingerprint_changes_with_the_content_and_keeps_the_suffix() -> None:
    first = fingerprinted("js/app.js", b"a")
    assert re.fullmatch(r"js/app\.[0-9a-f]{10}\.js", first)
    assert fingerprinted("js/app.js", b"b") != first
    assert fingerprinted("vendor/x/y.min.css", b"a").endswith(".css")


@pytest.mark.parametrize("path", PAGES)
def test_every_file_a_page_names_is_served_fingerprinted_and_cached_for_a_year(
    client: httpx.Client, path: str
) -> None:
    page = client.get(path, headers=HTML)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-cache"
    urls = static_urls(page.text)
    assert urls
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == IMMUTABLE
        plain = Assets().originals[url.removeprefix("/static/")]
        assert response.content == (STATIC_DIR / plain).read_bytes()


def test_a_file_by_its_plain_name_is_served_and_revalidated(client: httpx.Client) -> None:
    response = client.get("/static/js/graphql.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert "javascript" in response.headers["content-type"]


@pytest.mark.parametrize(
    "path", ["/static/nothing.js", "/static/../pages.py", "/static/%2e%2e/pages.py"]
)
def test_files_outside_the_static_folder_or_unknown_are_not_found(
    client: httpx.Client, path: str
) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", PAGES)
def test_a_page_allows_only_its_own_origin_and_its_own_import_map(
    client: httpx.Client, path: str
) -> None:
    response = client.get(path, headers=HTML)
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    import_map = re.search(r'<script type="importmap">(.*?)</script>', response.text)
    assert import_map is not None
    assert f"script-src 'self' {script_hash(import_map.group(1))}" in policy
    inline = re.findall(
        r"<script(?![^>]*\b(?:src|type=\"(?:importmap|application/json)\"))", response.text
    )
    assert inline == [], "an inline script the policy would block"


def test_a_template_naming_a_missing_file_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.html").write_text(
        '<html><head><script src="/static/gone.js"></script></head></html>'
    )
    with pytest.raises(LookupError, match=r"gone\.js"):
        Assets(tmp_path / "static", tmp_path / "templates").render("t.html")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-assets")
def test_the_pages_load_only_from_their_own_origin(page: Page, site: Site) -> None:
    for path in PAGES:
        page.goto(path)
        page.wait_for_load_state("networkidle")
    assert site.requests
    assert site.foreign_requests() == []
