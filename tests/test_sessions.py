"""Server-side sessions over HTTP: ended sessions stay ended, lifetimes, mySessions, pruning."""

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from conftest import (
    LOGIN,
    PASSWORD,
    FakeClock,
    code,
    http_client,
    login,
    make_user,
    post,
    web_client,
    with_settings,
)

from trends_gql.accounts import sessions, users
from trends_gql.accounts.auth import SESSION_COOKIE
from trends_gql.core.db import Database, utcnow
from trends_gql.core.models import User, UserSession
from trends_gql.core.pagination import decode_id
from trends_gql.core.settings import Settings
from trends_gql.jobs.sessions import prune_sessions
from trends_gql.schema.caching import CACHE_HEADER

ME = "{ me { email } }"
CREATE = """mutation {
  createTrend(input: {megatrend: "AI", macrotrend: "Edge AI", challengesAndResearchGaps: "x"}) {
    id
  }
}"""
MY_SESSIONS = "{ mySessions { id createdAt lastSeenAt expiresAt clientAddress userAgent current } }"
ANN = "ann@example.org"
DAY = 24 * 3600


@pytest.fixture
def settings(backend: Settings, rate_namespace: str) -> Settings:
    return with_settings(backend, rate_limit_namespace=rate_namespace)


@pytest.fixture
def web(settings: Settings, db: Database, clock: FakeClock) -> Iterator[httpx.Client]:
    """A client of an app of its own, with a fake clock."""
    with web_client(settings, clock) as client:
        yield client


def copy_of(client: httpx.Client, **headers: str) -> httpx.Client:
    """Another client that sends the same session cookie (a stolen or backed-up copy)."""
    cookie = client.cookies[SESSION_COOKIE]
    return http_client(base_url=client.base_url, cookies={SESSION_COOKIE: cookie}, headers=headers)


def me(client: httpx.Client) -> str | None:
    user = post(client, ME)["data"]["me"]
    return user["email"] if user else None


def stored_sessions(db: Database) -> list[UserSession]:
    return db.call_sync(lambda s: list(s.scalars(sa.select(UserSession).order_by(UserSession.id))))


def test_the_cookie_holds_a_random_id_and_the_database_only_its_hash(
    web: httpx.Client, db: Database, clock: FakeClock
) -> None:
    make_user(db, ANN)
    login(web, ANN)
    token = web.cookies[SESSION_COOKIE]
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    [row] = stored_sessions(db)
    assert row.token_hash == hashlib.sha256(token.encode()).digest()
    assert token.encode() not in repr(row).encode()
    start = datetime.fromtimestamp(clock.now, UTC)
    assert (row.created_at, row.last_seen_at) == (start, start)
    assert row.expires_at == start + timedelta(days=14)
    assert row.client_address == "127.0.0.1"
    assert row.user_agent.startswith("python-httpx/")


def test_a_copy_of_the_cookie_stops_working_at_logout(web: httpx.Client, db: Database) -> None:
    make_user(db, ANN, staff=True)
    login(web, ANN)
    with copy_of(web) as copy:
        assert "id" in post(copy, CREATE)["data"]["createTrend"]
        assert post(web, "mutation { logout }") == {"data": {"logout": True}}
        assert me(copy) is None
        assert code(post(copy, CREATE)) == "UNAUTHENTICATED"
    assert stored_sessions(db) == []


def test_a_copy_of_the_cookie_stops_working_when_the_password_changes(
    web: httpx.Client, db: Database
) -> None:
    make_user(db, ANN, staff=True)
    login(web, ANN)
    with copy_of(web) as copy:
        db.call_sync(lambda s: users.set_password(s, ANN, "another long password"))
        assert me(copy) is None
        assert code(post(copy, CREATE)) == "UNAUTHENTICATED"
    assert me(web) is None


def test_reactivating_an_account_does_not_revive_its_old_sessions(
    web: httpx.Client, db: Database
) -> None:
    make_user(db, ANN, staff=True)
    login(web, ANN)
    with copy_of(web) as copy:
        db.call_sync(lambda s: users.set_active(s, ANN, False))
        assert me(copy) is None
        db.call_sync(lambda s: users.set_active(s, ANN, True))
        assert me(copy) is None
        assert code(post(copy, CREATE)) == "UNAUTHENTICATED"
    assert me(web) is None
    login(web, ANN)
    assert me(web) == ANN


def test_login_issues_a_new_id_and_ends_the_session_it_replaces(
    web: httpx.Client, db: Database
) -> None:
    make_user(db, ANN, staff=True)
    make_user(db, "bob@example.org")
    login(web, ANN)
    with copy_of(web) as before:
        login(web, ANN)
        assert web.cookies[SESSION_COOKIE] != before.cookies[SESSION_COOKIE]
        assert me(before) is None
        assert code(post(before, CREATE)) == "UNAUTHENTICATED"
        login(before, "bob@example.org")
    assert me(web) == ANN
    assert len(stored_sessions(db)) == 2


def test_a_session_id_the_client_chose_is_never_used(web: httpx.Client, db: Database) -> None:
    make_user(db, ANN)
    planted = sessions.new_token()
    response = web.post(
        "/graphql",
        json={"query": LOGIN, "variables": {"email": ANN, "password": PASSWORD}},
        headers={"cookie": f"{SESSION_COOKIE}={planted}"},
    )
    assert response.json()["data"]["login"]["email"] == ANN
    issued = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert issued != planted
    assert [row.token_hash for row in stored_sessions(db)] == [sessions.hash_token(issued)]


def test_an_unknown_or_malformed_cookie_is_anonymous_and_deleted(
    web: httpx.Client, db: Database
) -> None:
    for value in (sessions.new_token(), "not-a-session-id"):
        cookie = {"cookie": f"{SESSION_COOKIE}={value}"}
        response = web.post("/graphql", json={"query": ME}, headers=cookie)
        assert response.json() == {"data": {"me": None}}
        assert response.headers["set-cookie"].startswith(f'{SESSION_COOKIE}=""; ')
        assert "max-age=0" in response.headers["set-cookie"].lower()


def test_an_idle_session_ends_after_the_idle_timeout(
    web: httpx.Client, db: Database, clock: FakeClock
) -> None:
    make_user(db, ANN)
    login(web, ANN)
    for _ in range(3):  # each use restarts the idle timeout
        clock.advance(2 * DAY - 60)
        assert me(web) == ANN
    clock.advance(2 * DAY)
    assert me(web) is None
    assert stored_sessions(db) == []


def test_a_session_in_use_ends_at_its_absolute_lifetime(
    settings: Settings, db: Database, clock: FakeClock
) -> None:
    make_user(db, ANN)
    with web_client(
        with_settings(settings, session_max_age=3600, session_idle_seconds=600), clock
    ) as client:
        login(client, ANN)
        for _ in range(7):
            clock.advance(500)
            assert me(client) == ANN
        clock.advance(99)
        assert me(client) == ANN
        clock.advance(1)
        assert me(client) is None


def test_last_seen_is_written_at_most_once_a_minute(
    web: httpx.Client, db: Database, clock: FakeClock
) -> None:
    make_user(db, ANN)
    login(web, ANN)
    start = stored_sessions(db)[0].last_seen_at
    clock.advance(59)
    assert me(web) == ANN
    assert stored_sessions(db)[0].last_seen_at == start
    clock.advance(1)
    assert me(web) == ANN
    assert stored_sessions(db)[0].last_seen_at == start + timedelta(seconds=60)


def test_my_sessions_lists_the_users_sessions_and_marks_the_current_one(
    web: httpx.Client, db: Database, clock: FakeClock
) -> None:
    make_user(db, ANN)
    login(web, ANN)
    clock.advance(120)
    with http_client(base_url=web.base_url, headers={"user-agent": "Phone browser"}) as phone:
        login(phone, ANN)
        listed = post(web, MY_SESSIONS)["data"]["mySessions"]
        assert [s["userAgent"] for s in listed] == ["Phone browser", listed[1]["userAgent"]]
        assert [s["current"] for s in listed] == [False, True]
        newest = datetime.fromtimestamp(clock.now, UTC)
        assert listed[0]["createdAt"] == listed[0]["lastSeenAt"] == newest.isoformat()
        assert listed[0]["expiresAt"] == (newest + timedelta(days=2)).isoformat()
        assert {s["clientAddress"] for s in listed} == {"127.0.0.1"}
        ids = [decode_id(s["id"], "Session") for s in listed]
        assert ids == sorted(ids, reverse=True)
        for token in (web.cookies[SESSION_COOKIE], phone.cookies[SESSION_COOKIE]):
            assert all(token not in s["id"] for s in listed)

        assert post(phone, "mutation { endOtherSessions }") == {"data": {"endOtherSessions": 1}}
        assert me(web) is None
        assert me(phone) == ANN
        [only] = post(phone, MY_SESSIONS)["data"]["mySessions"]
        assert only["current"] is True


def test_my_sessions_is_never_served_from_the_cache(web: httpx.Client, db: Database) -> None:
    make_user(db, ANN)
    make_user(db, "bob@example.org")
    login(web, ANN)
    query = "{ mySessions { id } }"
    first = web.post("/graphql", json={"query": query})
    with http_client(base_url=web.base_url) as bob:
        login(bob, "bob@example.org")
        second = bob.post("/graphql", json={"query": query})
        assert second.headers[CACHE_HEADER] != "hit"
        [ann_session] = first.json()["data"]["mySessions"]
        [bob_session] = second.json()["data"]["mySessions"]
        assert bob_session != ann_session


@pytest.mark.parametrize("document", [MY_SESSIONS, "mutation { endOtherSessions }"])
def test_session_fields_need_a_signed_in_user(
    web: httpx.Client, db: Database, document: str
) -> None:
    assert code(post(web, document)) == "UNAUTHENTICATED"


def test_a_deleted_user_takes_their_sessions_along(web: httpx.Client, db: Database) -> None:
    make_user(db, ANN)
    login(web, ANN)
    with db.session() as session:
        session.execute(sa.delete(User))
        session.commit()
    assert stored_sessions(db) == []
    assert me(web) is None


def test_with_the_database_down_a_signed_in_request_gets_503(sqlite_settings: Settings) -> None:
    down = with_settings(
        sqlite_settings, database_url="postgresql+psycopg://postgres@127.0.0.1:1/x"
    )
    with web_client(down) as client:
        cookie = {"cookie": f"{SESSION_COOKIE}={sessions.new_token()}"}
        response = client.post("/graphql", json={"query": ME}, headers=cookie)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        assert code(response.json()) == "SERVICE_UNAVAILABLE"
        assert response.headers["retry-after"] == "5"
        # Anonymous requests need no session lookup.
        assert client.post("/graphql", json={"query": "{ __typename }"}).status_code == 200


def test_the_prune_job_deletes_ended_sessions_only(job_env: Settings, db: Database) -> None:
    make_user(db, ANN)
    user_id = db.call_sync(users.require_user, ANN).id
    now = utcnow()

    def opened(at: datetime, last_seen: datetime | None = None) -> str:
        token, row = db.call_sync(
            lambda s: sessions.open_session(
                s, user_id, now=at, max_age=14 * DAY, client_address=None, user_agent=None
            )
        )
        if last_seen is not None:
            db.call_sync(lambda s: sessions.touch_session(s, row.id, last_seen))
        return token

    live = opened(now - timedelta(days=1))
    opened(now - timedelta(days=2, seconds=1))  # idle for longer than two days
    opened(now - timedelta(days=15), now - timedelta(hours=1))  # in use, but too old
    assert prune_sessions() == 2
    assert [row.token_hash for row in stored_sessions(db)] == [sessions.hash_token(live)]
    assert prune_sessions() == 0
