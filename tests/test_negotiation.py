"""GraphQL over HTTP: the response media type a client asks for, and request errors as 400."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import web_client

from trends_gql.core.settings import Settings
from trends_gql.web.negotiation import GRAPHQL_RESPONSE, JSON, accepted

NEW = {"accept": GRAPHQL_RESPONSE}


@pytest.fixture(scope="module")
def client(sqlite_settings: Settings) -> Iterator[httpx.Client]:
    with web_client(sqlite_settings) as c:
        yield c


def ask(client: httpx.Client, body: Any, **headers: str) -> httpx.Response:
    return client.post("/graphql", json=body, headers=headers)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", JSON),
        (f"application/json, {GRAPHQL_RESPONSE}", JSON),
        ("application/*", JSON),
        ("application/xml", None),
        ("application/json;q=0", None),
        ("text/html;q=oops", None),
    ],
)
def test_the_media_type_follows_the_accept_header(accept: str | None, chosen: str | None) -> None:
    assert accepted(accept) == chosen


def test_a_client_asking_for_graphql_response_json_gets_it(client: httpx.Client) -> None:
    response = ask(client, {"query": "{ __typename }"}, **NEW)
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{ __typename"}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ nothing }"}, "GRAPHQL_VALIDATION_FAILED"),
        (
            {
                "query": "query($n: Int) { trends(first: $n) { totalCount } }",
                "variables": {"n": "x"},
            },
            "BAD_USER_INPUT",
        ),
        ({"query": "{ a: __typename } fragment F on Query { ...F }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query A { __typename } query B { __typename }"}, "GRAPHQL_VALIDATION_FAILED"),
    ],
    ids=["parse", "validation", "variables", "fragment-cycle", "no-operation-name"],
)
def test_request_errors_are_400_without_data_in_the_new_media_type(
    client: httpx.Client, body: dict[str, Any], code: str
) -> None:
    response = ask(client, body, **NEW)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    result = response.json()
    assert "data" not in result
    assert result["errors"][0]["extensions"]["code"] in {code, "GRAPHQL_VALIDATION_FAILED"}
    legacy = ask(client, body)  # application/json: as before, 200 with data null
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == JSON
    assert legacy.json()["data"] is None


def test_field_errors_during_execution_stay_200_with_data(client: httpx.Client) -> None:
    response = ask(client, {"query": '{ trend(id: "nope") { id } __typename }'}, **NEW)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"trend": None, "__typename": "Query"}
    assert body["errors"][0]["path"] == ["trend"]


def test_refusals_of_the_http_layer_carry_the_new_media_type(client: httpx.Client) -> None:
    response = client.post("/graphql", content="{}", headers={"content-type": "text/plain", **NEW})
    assert response.status_code == 400
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_PREVENTED"


def test_a_client_that_accepts_no_json_gets_406(client: httpx.Client) -> None:
    response = ask(client, {"query": "{ __typename }"}, accept="application/xml")
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"
    assert client.get("/graphql", headers={"accept": "text/html"}).status_code == 200


def test_an_empty_operation_name_is_no_operation_name(client: httpx.Client) -> None:
    one = ask(client, {"query": "query A { __typename }", "operationName": ""})
    assert one.json() == {"data": {"__typename": "Query"}}
    two = ask(
        client, {"query": "query A { __typename } query B { b: __typename }", "operationName": ""}
    )
    assert two.json()["errors"][0]["message"] == (
        "Must provide operation name if query contains multiple operations."
    )
    named = ask(
        client, {"query": "query A { __typename } query B { b: __typename }", "operationName": "B"}
    )
    assert named.json() == {"data": {"b": "Query"}}
