"""The Starlette app: health, GraphiQL, CORS, error masking."""

import httpx


def test_healthz_reports_database_and_redis(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["status"] == "ok"
    assert "redis" in body


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
