"""Limits on GraphQL documents and batches, mutations over GET, introspection and GraphiQL."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import strawberry
from conftest import code, serve, web_client, with_settings
from graphql import get_introspection_query
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL

from trends_gql.protection import JSONRefusals, protection_middleware
from trends_gql.ratelimit import RateLimiter
from trends_gql.schema import limits
from trends_gql.settings import Settings

TYPENAME = {"query": "{ __typename }"}
OK = {"data": {"__typename": "Query"}}


@pytest.fixture(scope="module")
def client(sqlite_settings: Settings) -> Iterator[httpx.Client]:
    """A client of an app with the default limits."""
    with web_client(sqlite_settings) as c:
        yield c


@pytest.fixture(scope="module")
def shallow(sqlite_settings: Settings) -> Iterator[httpx.Client]:
    """A client of an app that allows a query depth of 2."""
    with web_client(with_settings(sqlite_settings, max_query_depth=2)) as c:
        yield c


def refused(client: httpx.Client, query: str) -> dict[str, Any]:
    """The single error of a document refused before execution."""
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    return error


def test_a_document_over_the_token_limit_is_refused(client: httpx.Client) -> None:
    error = refused(client, "{ " + "__typename " * 1001 + "}")
    assert error["extensions"]["code"] == "TOO_MANY_TOKENS"
    assert "more than 1000 tokens" in error["message"]


def test_comments_count_as_tokens(client: httpx.Client) -> None:
    query = "{ __typename }\n"
    assert client.post("/graphql", json={"query": query + "#\n" * 990}).json() == OK
    error = refused(client, query + "#\n" * 1000)
    assert error["extensions"]["code"] == "TOO_MANY_TOKENS"


def braces(selection: str) -> str:
    return "{ " + selection + " }"


DEEP = "trends { edges { node { id } } }"  # depth 3


@pytest.mark.parametrize(
    "query",
    [
        braces(DEEP),
        "{ ...F } fragment F on Query " + braces(DEEP),
        braces("... on Query " + braces(DEEP)),
        "{ ...A } fragment A on Query { ...B } fragment B on Query " + braces(DEEP),
        "{ trends { ...E } } fragment E on TrendConnection { edges { node { id } } }",
    ],
    ids=["plain", "fragment", "inline-fragment", "nested-fragments", "fragment-inside"],
)
def test_queries_deeper_than_the_limit_are_refused(shallow: httpx.Client, query: str) -> None:
    error = refused(shallow, query)
    assert error["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert error["message"].endswith("exceeds maximum operation depth of 2")


def test_queries_as_deep_as_the_limit_run(shallow: httpx.Client) -> None:
    query = "{ ...F } fragment F on Query { trends { pageInfo { hasNextPage } } }"
    body = shallow.post("/graphql", json={"query": query}).json()
    assert body == {"data": {"trends": {"pageInfo": {"hasNextPage": False}}}}


def test_cached_documents_are_still_checked_against_each_apps_limits(
    client: httpx.Client, shallow: httpx.Client
) -> None:
    query = braces(DEEP)
    hits = limits._parse.cache_info().hits
    for _ in range(2):
        assert refused(shallow, query)["extensions"]["code"] == "QUERY_TOO_DEEP"
        assert client.post("/graphql", json={"query": query}).json() == {
            "data": {"trends": {"edges": []}}
        }
    assert limits._parse.cache_info().hits >= hits + 3
    for _ in range(2):
        assert refused(client, "{ " + "__typename " * 1001 + "}")["extensions"]["code"] == (
            "TOO_MANY_TOKENS"
        )


def aliases(n: int, prefix: str = "a") -> str:
    return " ".join(f"{prefix}{i}: __typename" for i in range(n))


@pytest.mark.parametrize(
    "query",
    [
        braces(aliases(16)),
        braces(aliases(8) + " ...F") + " fragment F on Query " + braces(aliases(8, "b")),
        "{ ...F ...F } fragment F on Query " + braces(aliases(8)),
        braces(aliases(8) + " ... on Query " + braces(aliases(8, "b"))),
        "{ ...F } fragment F on Query "
        + braces("...G " + aliases(8))
        + " fragment G on Query "
        + braces("... on Query " + braces(aliases(8, "b"))),
        braces("trends " + braces(" ".join(f"c{i}: totalCount" for i in range(16)))),
    ],
    ids=["top-level", "fragment", "fragment-twice", "inline", "nested-fragments", "nested-field"],
)
def test_more_aliases_than_the_limit_are_refused_wherever_they_hide(
    client: httpx.Client, query: str
) -> None:
    error = refused(client, query)
    assert error["extensions"]["code"] == "TOO_MANY_ALIASES"
    assert error["message"] == "16 aliases found. Allowed: 15"


def test_aliases_up_to_the_limit_are_fine(client: httpx.Client) -> None:
    query = braces(aliases(8) + " ...F") + " fragment F on Query " + braces(aliases(7, "b"))
    body = client.post("/graphql", json={"query": query}).json()
    assert "errors" not in body
    assert len(body["data"]) == 15


def test_a_batch_of_two_operations_runs_both(client: httpx.Client) -> None:
    response = client.post("/graphql", json=[TYPENAME, {"query": "{ a: __typename }"}])
    assert response.status_code == 200
    assert response.json() == [OK, {"data": {"a": "Query"}}]


def test_a_batch_of_more_operations_than_the_limit_is_refused(client: httpx.Client) -> None:
    assert client.post("/graphql", json=[TYPENAME] * 10).json() == [OK] * 10
    response = client.post("/graphql", json=[TYPENAME] * 11)
    assert response.status_code == 400
    assert code(response.json()) == "TOO_MANY_OPERATIONS"
    assert response.json()["errors"][0]["message"] == (
        "Too many operations in the batch: at most 10"
    )


def test_batching_is_off_when_the_limit_is_zero(sqlite_settings: Settings) -> None:
    with web_client(with_settings(sqlite_settings, max_batch_operations=0)) as client:
        response = client.post("/graphql", json=[TYPENAME, TYPENAME])
        assert response.status_code == 400
        assert code(response.json()) == "BATCHING_DISABLED"
        assert client.post("/graphql", json=TYPENAME).json() == OK


def test_mutations_over_get_are_refused_with_405_and_never_run(sqlite_settings: Settings) -> None:
    runs: list[int] = []

    @strawberry.type
    class Query:
        ok: bool = True

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def bump(self) -> int:
            runs.append(1)
            return len(runs)

    class View(JSONRefusals, GraphQL[None, None]):
        pass

    limiter = RateLimiter(sqlite_settings.redis_url)
    app = Starlette(
        routes=[Route("/graphql", View(strawberry.Schema(Query, Mutation)))],
        middleware=protection_middleware(sqlite_settings, limiter),
    )
    with serve(app) as url, httpx.Client(base_url=url) as client:
        response = client.get(
            "/graphql",
            params={"query": "mutation { bump }"},
            headers={"graphql-require-preflight": "1"},
        )
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert code(response.json()) == "METHOD_NOT_ALLOWED"
        assert response.json()["errors"][0]["message"] == (
            "mutations are not allowed when using GET: send them with POST"
        )
        assert runs == []
        response = client.post("/graphql", json={"query": "mutation { bump }"})
        assert response.json() == {"data": {"bump": 1}}


def test_the_app_refuses_mutations_over_get_too(client: httpx.Client) -> None:
    params = {"query": "mutation { __typename }"}
    response = client.get("/graphql", params=params, headers={"x-requested-with": "fetch"})
    assert response.status_code == 405
    assert code(response.json()) == "METHOD_NOT_ALLOWED"


def test_graphiql_introspection_fits_the_default_limits(client: httpx.Client) -> None:
    query = get_introspection_query(descriptions=True, input_value_deprecation=True)
    body = client.post("/graphql", json={"query": query}).json()
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.parametrize(
    ("overrides", "open_"),
    [
        ({}, True),
        ({"trends_env": "production"}, False),
        ({"trends_env": "production", "graphql_introspection": True, "graphiql": True}, True),
        ({"graphql_introspection": False, "graphiql": False}, False),
    ],
    ids=["development", "production", "production-enabled", "development-disabled"],
)
def test_introspection_and_graphiql_are_off_in_production_unless_enabled(
    sqlite_settings: Settings, overrides: dict[str, Any], open_: bool
) -> None:
    settings = with_settings(sqlite_settings, **overrides)
    with web_client(settings) as client:
        schema = client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
        page = client.get("/graphql", headers={"accept": "text/html"})
        assert client.post("/graphql", json=TYPENAME).json() == OK
    if open_:
        assert schema.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        assert page.status_code == 200
    else:
        assert schema.json()["data"] is None
        for error in schema.json()["errors"]:
            assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert "introspection has been disabled" in error["message"]
        assert page.status_code == 404
        assert code(page.json()) == "NOT_FOUND"
