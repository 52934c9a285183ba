"""Automatic persisted queries (APQ) over HTTP: by hash, with the text, across processes."""

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SAMPLE, code, delete_keys, load, web_client, with_settings

from trends_gql.core.db import Database
from trends_gql.core.settings import Settings
from trends_gql.schema.caching import CACHE_HEADER

COUNT = "query Count { trends { totalCount } }"
COUNTED = {"data": {"trends": {"totalCount": 44}}}
BY_MEGATREND = "query Facets($m: String!) { trendFacets(filter: {megatrend: $m}) { total } }"
NOT_FOUND = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}
PREFLIGHT = {"GraphQL-Require-Preflight": "1"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(key: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": key}}


def send(
    client: httpx.Client,
    method: str,
    key: str,
    query: str | None = None,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A request naming its document by hash (and sending its text when `query` is given)."""
    if method == "POST":
        body: dict[str, Any] = {"extensions": persisted(key), "variables": variables or {}}
        if query is not None:
            body["query"] = query
        return client.post("/graphql", json=body, headers=headers)
    params = {"extensions": json.dumps(persisted(key))}
    if variables:
        params["variables"] = json.dumps(variables)
    if query is not None:
        params["query"] = query
    return client.get("/graphql", params=params, headers={**PREFLIGHT, **(headers or {})})


@pytest.fixture
def settings(backend: Settings, db: Database, rate_namespace: str) -> Iterator[Settings]:
    """Documents under a namespace of the test's own (deleted after), and the sample's rows."""
    namespace = f"trends-test-apq:{uuid.uuid4().hex}"
    yield with_settings(
        backend,
        rate_limit_namespace=rate_namespace,
        persisted_queries_namespace=namespace,
        cache_timeout=1.0,
    )
    delete_keys(namespace)


@pytest.fixture
def web(settings: Settings, db: Database, tmp_path: Path) -> Iterator[httpx.Client]:
    load(db, tmp_path, SAMPLE)
    with web_client(settings) as client:
        yield client


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_hash_is_not_found_until_sent_with_its_text_then_runs_alone(
    web: httpx.Client, method: str
) -> None:
    unknown = send(web, method, sha256(COUNT))
    assert (unknown.status_code, unknown.json()) == (200, NOT_FOUND)
    assert unknown.headers["cache-control"] == "private, no-cache, must-revalidate"
    registered = send(web, method, sha256(COUNT), COUNT)
    assert (registered.status_code, registered.json()) == (200, COUNTED)
    by_hash = send(web, method, sha256(COUNT))
    assert (by_hash.status_code, by_hash.json()) == (200, COUNTED)
    with_variables = send(web, method, sha256(BY_MEGATREND), BY_MEGATREND, {"m": "AI"})
    again = send(web, method, sha256(BY_MEGATREND), variables={"m": "AI"})
    assert again.json() == with_variables.json()
    assert again.json()["data"]["trendFacets"]["total"] > 0


def test_not_found_is_200_in_the_graphql_over_http_media_type_too(web: httpx.Client) -> None:
    # A 400 would make Apollo Client turn persisted queries off instead of sending the text.
    accept = {"accept": "application/graphql-response+json"}
    for method in ("POST", "GET"):
        response = send(web, method, sha256(COUNT), headers=accept)
        assert (response.status_code, response.json()) == (200, NOT_FOUND)
        assert response.headers["content-type"] == "application/graphql-response+json"


def test_another_server_process_runs_a_document_sent_to_one(
    settings: Settings, web: httpx.Client
) -> None:
    assert send(web, "POST", sha256(COUNT), COUNT).json() == COUNTED
    with web_client(settings) as other:
        assert send(other, "GET", sha256(COUNT)).json() == COUNTED


def test_a_document_by_hash_is_answered_from_the_response_cache(web: httpx.Client) -> None:
    send(web, "POST", sha256(COUNT), COUNT)
    assert send(web, "POST", sha256(COUNT)).headers[CACHE_HEADER] == "hit"


def test_a_hash_that_is_not_the_texts_is_refused_and_nothing_is_kept(web: httpx.Client) -> None:
    other = "{ megatrends { name } }"
    for method in ("POST", "GET"):
        response = send(web, method, sha256(other), COUNT)
        assert response.status_code == 400
        assert response.json()["errors"][0] == {
            "message": "provided sha does not match query",
            "extensions": {"code": "PERSISTED_QUERY_HASH_MISMATCH"},
        }
    assert send(web, "POST", sha256(other)).json() == NOT_FOUND


@pytest.mark.parametrize("version", [2, None, "1"])
def test_an_unsupported_version_is_refused(web: httpx.Client, version: Any) -> None:
    body = {"query": COUNT, "extensions": persisted(sha256(COUNT), version)}
    response = web.post("/graphql", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Unsupported persisted query version"


def test_a_mutation_by_hash_over_get_is_refused(web: httpx.Client) -> None:
    logout = "mutation Out { logout }"
    assert send(web, "POST", sha256(logout), logout).status_code == 200  # kept, and run
    for query in (None, logout):
        response = send(web, "GET", sha256(logout), query)
        assert response.status_code == 405
        assert code(response.json()) == "METHOD_NOT_ALLOWED"
        assert response.headers["allow"] == "POST"


def test_the_document_limits_apply_to_a_persisted_document(settings: Settings) -> None:
    deep = "{ trends { nodes { id } pageInfo { hasNextPage } } }"
    with web_client(settings) as lenient:
        assert "errors" not in send(lenient, "POST", sha256(deep), deep).json()
    with web_client(with_settings(settings, max_query_depth=1)) as strict:
        for method in ("POST", "GET"):
            assert code(send(strict, method, sha256(deep)).json()) == "QUERY_TOO_DEEP"


def test_a_document_over_the_token_limit_is_not_kept(settings: Settings) -> None:
    long = "{ " + " ".join(["__typename"] * 20) + " }"
    with web_client(with_settings(settings, max_query_tokens=10)) as strict:
        assert code(send(strict, "POST", sha256(long), long).json()) == "TOO_MANY_TOKENS"
        assert send(strict, "POST", sha256(long)).json() == NOT_FOUND


def test_with_redis_unreachable_a_hash_is_not_found_and_its_text_runs(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    broken = with_settings(settings, redis_url="redis://127.0.0.1:1/0", cache_timeout=0.05)
    with web_client(broken) as client:
        for method in ("POST", "GET"):
            count = COUNT.replace("Count {", f"Count{method} {{")  # one each: this process keeps it
            assert send(client, method, sha256(count)).json() == NOT_FOUND
            assert send(client, method, sha256(count), count).json() == COUNTED


def test_a_batch_answers_not_found_in_place_of_an_unknown_hash(web: httpx.Client) -> None:
    batch = [
        {"extensions": persisted(sha256(COUNT))},
        {"query": "{ megatrends { name } }"},
        {"query": COUNT, "extensions": persisted(sha256(COUNT))},
        {"extensions": persisted(sha256(COUNT))},
    ]
    first, second, third, fourth = web.post("/graphql", json=batch).json()
    assert first == {"data": None, **NOT_FOUND}
    assert {"name": "AI"} in second["data"]["megatrends"]
    assert third == fourth == COUNTED
