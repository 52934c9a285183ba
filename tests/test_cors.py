"""CORS over HTTP: the real app's answers; ours answers Starlette's CORSMiddleware's headers to
requests with an Origin, and adds Origin to one Vary header for those without."""

from collections.abc import Iterator

import httpx
import pytest
from conftest import http_client, serve
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from trends_gql.web.cors import CORS

ALLOWED = "http://localhost:8080"
TYPENAME = {"query": "{ __typename }"}


def test_an_answer_without_origin_varies_on_origin(client: httpx.Client) -> None:
    response = client.post("/graphql", json=TYPENAME)
    assert response.json() == {"data": {"__typename": "Query"}}
    assert response.headers.get_list("vary") == ["Origin"]
    assert "access-control-allow-origin" not in response.headers


def test_an_answer_that_varies_already_gets_origin_in_the_same_header(
    client: httpx.Client,
) -> None:
    params = {"query": "{ __typename }"}
    response = client.get("/graphql", params=params, headers={"graphql-require-preflight": "1"})
    [vary] = response.headers.get_list("vary")
    assert [v.strip() for v in vary.split(",")][-1] == "Origin"
    assert {"Accept", "Cookie"} <= {v.strip() for v in vary.split(",")}


def test_an_allowed_origin_reads_the_answer_with_credentials(client: httpx.Client) -> None:
    response = client.post("/graphql", json=TYPENAME, headers={"origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in response.headers["vary"]


def test_another_origin_is_not_allowed_to_read_it(client: httpx.Client) -> None:
    response = client.post("/graphql", json=TYPENAME, headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers


async def _answer(request: Request) -> Response:
    vary = request.query_params.getlist("vary")
    headers = [(b"vary", v.encode()) for v in vary] + [(b"x-other", b"1")]
    response = Response(b"{}", media_type="application/json")
    response.raw_headers += headers
    return response


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients of the same app behind ours and behind Starlette's middleware."""
    options = {"allow_origins": [ALLOWED], "allow_credentials": True, "allow_methods": ["GET"]}
    apps = [
        Starlette(routes=[Route("/", _answer)], middleware=[Middleware(cors, **options)])
        for cors in (CORS, CORSMiddleware)
    ]
    with (
        serve(apps[0]) as ours,
        serve(apps[1]) as theirs,
        http_client(base_url=ours) as a,
        http_client(base_url=theirs) as b,
    ):
        yield a, b


def _headers(response: httpx.Response, without: str = "") -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.multi_items() if k not in ("date", without))


@pytest.mark.parametrize("origin", [ALLOWED, "http://evil.example"])
@pytest.mark.parametrize("vary", [[], ["Accept"], ["Accept", "Cookie"]])
def test_with_an_origin_ours_answers_the_headers_starlettes_does(
    pair: tuple[httpx.Client, httpx.Client], origin: str, vary: list[str]
) -> None:
    ours, theirs = (c.get("/", params={"vary": vary}, headers={"origin": origin}) for c in pair)
    assert _headers(ours) == _headers(theirs)


@pytest.mark.parametrize("vary", [[], ["Accept"], ["Accept", "Cookie"]])
def test_without_origin_ours_adds_origin_to_one_vary_header(
    pair: tuple[httpx.Client, httpx.Client], vary: list[str]
) -> None:
    # Starlette 1.x adds it too; 0.47, the lowest we allow, left such a request alone. Ours adds
    # it with either: the answer to a request with an Origin differs.
    ours, theirs = (c.get("/", params={"vary": vary}) for c in pair)
    assert ours.headers.get_list("vary") == [", ".join([*vary, "Origin"])]
    assert _headers(ours, without="vary") == _headers(theirs, without="vary")
