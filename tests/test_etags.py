"""HTTP caching of GET queries over HTTP: ETag, Cache-Control, Vary and 304 Not Modified."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    SAMPLE,
    csv_text,
    http_client,
    load,
    login,
    make_user,
    post,
    trend_row,
    web_client,
    with_settings,
)

from trends_gql.accounts.auth import SESSION_COOKIE
from trends_gql.accounts.sessions import new_token
from trends_gql.core.db import Database
from trends_gql.core.settings import Settings
from trends_gql.schema.caching import CACHE_HEADER

COUNT = "query Count { trends { totalCount } }"
FACETS = "query Facets($m: String!) { trendFacets(filter: {megatrend: $m}) { total } }"
CREATE = """mutation { createTrend(input: {megatrend: "AI", macrotrend: "Tagged AI",
  challengesAndResearchGaps: "Revalidation"}) { id } }"""
REVALIDATE = "public, max-age=0, must-revalidate"
PREFLIGHT = {"GraphQL-Require-Preflight": "1"}


def get(
    client: httpx.Client,
    query: str = COUNT,
    headers: dict[str, str] | None = None,
    variables: dict[str, Any] | None = None,
) -> httpx.Response:
    params = {"query": query}
    if variables:
        params["variables"] = json.dumps(variables)
    return client.get("/graphql", params=params, headers={**PREFLIGHT, **(headers or {})})


def total(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["trends"]["totalCount"])


@pytest.fixture
def settings(backend: Settings, db: Database, rate_namespace: str) -> Settings:
    # A tag also changes every CACHE_TTL seconds: a day, so that none changes during a test.
    return with_settings(
        backend, rate_limit_namespace=rate_namespace, cache_timeout=1.0, cache_ttl=86400
    )


@pytest.fixture
def web(settings: Settings, db: Database, tmp_path: Path) -> Iterator[httpx.Client]:
    """An anonymous client of an app of these settings; the sample's 44 rows are loaded."""
    load(db, tmp_path, SAMPLE)
    with web_client(settings) as client:
        yield client


def test_an_anonymous_get_query_revalidates_with_an_empty_304(web: httpx.Client) -> None:
    first, second = get(web), get(web)
    etag = first.headers["etag"]
    assert second.headers["etag"] == etag
    assert first.headers["cache-control"] == REVALIDATE
    assert {"Accept", "Cookie", "Origin"} <= {v.strip() for v in first.headers["vary"].split(",")}
    for wanted in (etag, f"W/{etag}", f'"elsewhere", W/{etag}'):
        response = get(web, headers={"if-none-match": wanted})
        assert (response.status_code, response.content) == (304, b"")
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == REVALIDATE
        assert "content-type" not in response.headers
        assert CACHE_HEADER not in response.headers  # answered before anything ran
    assert get(web, headers={"if-none-match": "*"}).status_code == 304
    assert total(get(web, headers={"if-none-match": '"elsewhere"'})) == 44


def test_the_etag_names_the_document_variables_and_media_type(web: httpx.Client) -> None:
    tags = [
        get(web).headers["etag"],
        get(web, "{ megatrends { name } }").headers["etag"],
        get(web, FACETS, variables={"m": "AI"}).headers["etag"],
        get(web, FACETS, variables={"m": "Mobility"}).headers["etag"],
        get(web, headers={"accept": "application/graphql-response+json"}).headers["etag"],
    ]
    assert len(set(tags)) == len(tags)
    graphql_json = {"accept": "application/graphql-response+json", "if-none-match": tags[0]}
    assert get(web, headers=graphql_json).status_code == 200


def test_a_write_changes_the_etag_at_once(
    settings: Settings, web: httpx.Client, db: Database, tmp_path: Path
) -> None:
    etag = get(web).headers["etag"]
    make_user(db, "staff@example.org", staff=True)
    with web_client(settings) as staff:
        login(staff, "staff@example.org")
        assert "errors" not in post(staff, CREATE)
    created = get(web, headers={"if-none-match": etag})
    assert total(created) == 45
    assert created.headers["etag"] != etag
    load(db, tmp_path, csv_text([trend_row(macrotrend="Imported while tagged")]))
    imported = get(web, headers={"if-none-match": created.headers["etag"]})
    assert total(imported) == 46
    assert imported.headers["etag"] not in (etag, created.headers["etag"])


@pytest.mark.parametrize("roles", [{}, {"staff": True}], ids=["user", "staff"])
def test_a_signed_in_answer_is_never_public(
    settings: Settings, web: httpx.Client, db: Database, roles: dict[str, bool]
) -> None:
    anonymous = get(web).headers["etag"]
    make_user(db, "someone@example.org", **roles)
    with web_client(settings) as client:
        login(client, "someone@example.org")
        for headers in ({}, {"if-none-match": anonymous}):
            for query in (COUNT, "{ me { email } }"):
                response = get(client, query, headers=headers)
                assert response.status_code == 200
                assert response.headers["cache-control"] == "private, no-store"
                assert "etag" not in response.headers


def test_an_answer_that_ends_a_stale_session_cookie_is_not_public(web: httpx.Client) -> None:
    with http_client(base_url=web.base_url, cookies={SESSION_COOKIE: new_token()}) as stale:
        response = get(stale)
    assert total(response) == 44
    assert response.headers["cache-control"] == "private, no-store"
    assert "etag" not in response.headers
    assert SESSION_COOKIE in response.headers["set-cookie"]


def test_posts_errors_and_personal_fields_are_not_stored(web: httpx.Client) -> None:
    posted = web.post("/graphql", json={"query": COUNT})
    assert total(posted) == 44
    assert "etag" not in posted.headers
    assert "public" not in posted.headers.get("cache-control", "")
    for query in (
        '{ trend(id: "nope") { id } }',
        "{ me { email } }",
        "{ importRuns { totalCount } }",
    ):
        response = get(web, query)
        assert "etag" not in response.headers
        assert response.headers["cache-control"] == "no-store"


def test_max_age_is_the_setting(settings: Settings, web: httpx.Client) -> None:
    with web_client(with_settings(settings, http_cache_max_age=60)) as client:
        response = get(client)
    assert response.headers["cache-control"] == "public, max-age=60"
    assert "etag" in response.headers


def test_a_tag_lives_no_longer_than_a_cached_answer(settings: Settings, db: Database) -> None:
    # A write whose bump of the generation could not reach Redis is then stale no longer.
    with web_client(with_settings(settings, cache_ttl=1)) as client:
        first = get(client).headers["etag"]
        deadline = time.monotonic() + 5
        while get(client).headers["etag"] == first:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_without_the_cache_answers_are_not_stored(settings: Settings, web: httpx.Client) -> None:
    # CACHE_TTL=0 keeps no generation: nothing would tell a write.
    with web_client(with_settings(settings, cache_ttl=0)) as client:
        response = get(client)
    assert total(response) == 44
    assert "etag" not in response.headers
    assert response.headers["cache-control"] == "no-store"
