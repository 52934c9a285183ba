"""The Starlette app: health, GraphiQL, CORS, error masking."""

import gc

import httpx
from conftest import web_client, with_settings

from trends_gql.core.settings import Settings


def test_healthz_reports_database_and_redis(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["status"] == "ok"
    assert body["redis"] == "ok"


def test_healthz_says_why_redis_is_unavailable(sqlite_settings: Settings) -> None:
    with web_client(with_settings(sqlite_settings, redis_url="redis://127.0.0.1:1/0")) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "ok"  # the database answers: Redis down only degrades
    assert body["redis"].startswith("unavailable: ")
    assert "refused" in body["redis"]


def test_serving_an_app_leaves_the_collector_of_its_host_alone(sqlite_settings: Settings) -> None:
    frozen = gc.get_freeze_count()
    with web_client(sqlite_settings) as client:  # start-up and shut-down, lifespan included
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == frozen


def test_graphiql_is_served_to_a_browser(client: httpx.Client) -> None:
    response = client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_cors_allows_the_configured_origin_with_credentials(client: httpx.Client) -> None:
    response = client.options(
        "/graphql",
        headers={
            "origin": "http://localhost:8080",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:8080"
    assert response.headers["access-control-allow-credentials"] == "true"


def test_cors_refuses_other_origins(client: httpx.Client) -> None:
    response = client.options(
        "/graphql",
        headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
