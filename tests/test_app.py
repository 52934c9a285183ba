"""The Starlette app: health, GraphiQL, CORS, error masking."""

import gc
import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import join_stopped_servers, web_client, with_settings

from trends_gql.cli import migrate
from trends_gql.core.revisions import shipped_revisions
from trends_gql.core.settings import Settings
from trends_gql.web.pages import EXAMPLE_QUERY


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
    join_stopped_servers()
    # Not one object more (frozen objects that are freed leave the count; a freeze would add
    # every object alive).
    assert gc.get_freeze_count() <= frozen


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


def test_healthz_reports_the_migration_state(client: httpx.Client) -> None:
    body = client.get("/healthz").json()
    assert body["migrations"] == f"{shipped_revisions().head} (head)"


@pytest.mark.parametrize(
    ("revision", "migrations"),
    [
        (None, f"not migrated, head {shipped_revisions().head}"),
        ("0003", f"behind: 0003, head {shipped_revisions().head}"),
    ],
    ids=["not-migrated", "behind"],
)
def test_healthz_answers_503_when_the_database_is_not_migrated_to_the_head(
    sqlite_settings: Settings, tmp_path: Path, revision: str | None, migrations: str
) -> None:
    settings = with_settings(sqlite_settings, database_url=f"sqlite:///{tmp_path / 'old.db'}")
    if revision:
        migrate(settings, revision)
    with web_client(settings) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["migrations"]) == (
        "unavailable",
        "ok",
        migrations,
    )


def test_the_home_page_is_the_dashboard_for_browsers(client: httpx.Client) -> None:
    response = client.get("/", headers={"accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>AI trends: readiness dashboard</title>" in response.text
    assert '<a href="/graphql"' in response.text


def test_the_home_page_points_other_clients_to_graphql_in_json(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.json()["graphql"] == "/graphql"


def test_graphiql_opens_on_an_example_query_that_runs(client: httpx.Client) -> None:
    page = client.get("/graphql", headers={"accept": "text/html"}).text
    assert "Welcome to GraphiQL" not in page
    assert json.dumps(EXAMPLE_QUERY) in page
    assert "trends(first: 5)" in EXAMPLE_QUERY
    assert "login(email:" in EXAMPLE_QUERY
    body = client.post("/graphql", json={"query": EXAMPLE_QUERY}).json()
    assert "errors" not in body, body
    assert body["data"]["trends"]["totalCount"] == 0


def test_healthz_serves_a_database_migrated_by_a_newer_release(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    settings = with_settings(sqlite_settings, database_url=f"sqlite:///{tmp_path / 'new.db'}")
    migrate(settings)
    engine = sa.create_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with web_client(settings) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["migrations"] == f"ahead: 0099, head {shipped_revisions().head}"
