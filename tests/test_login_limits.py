"""The login limits over HTTP: concurrent attempts, and a Redis that stalls, stops or restarts."""

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from conftest import PASSWORD, code, http_client, login, make_user, web_client, with_settings
from private_redis import PrivateRedis, private_redis

from trends_gql.core.db import Database
from trends_gql.core.settings import Settings

WRONG = "not the password"
OK = "OK"


@pytest.fixture
def email(sqlite_settings: Settings) -> str:
    """A new account (password conftest.PASSWORD) in the SQLite database of the apps below."""
    address = f"ann-{uuid.uuid4().hex[:8]}@example.org"
    db = Database(sqlite_settings.database_url)
    make_user(db, address)
    db.dispose()
    return address


@pytest.fixture
def settings(sqlite_settings: Settings, rate_namespace: str) -> Settings:
    return with_settings(sqlite_settings, rate_limit_namespace=rate_namespace)


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    with private_redis() as redis_server:
        yield redis_server


def outcome(body: dict[str, Any]) -> str:
    """OK for a login that opened a session, else the error's code."""
    return OK if (body.get("data") or {}).get("login") else code(body)


def at_once(client: httpx.Client, email: str, passwords: list[str]) -> list[str]:
    """The outcomes of logins with these passwords, sent at one moment by clients of their own."""
    start = threading.Barrier(len(passwords))

    def attempt(password: str) -> str:
        with http_client(base_url=client.base_url, timeout=60) as own:
            start.wait()
            return outcome(login(own, email, password))

    with ThreadPoolExecutor(len(passwords)) as pool:
        return list(pool.map(attempt, passwords))


def one_by_one(client: httpx.Client, n: int, email: str, password: str = WRONG) -> list[str]:
    return [outcome(login(client, email, password)) for _ in range(n)]


def test_concurrent_correct_logins_for_one_account_all_succeed(
    settings: Settings, email: str
) -> None:
    with web_client(settings) as client:
        assert at_once(client, email, [PASSWORD] * 16) == [OK] * 16
        # Their checks were not failures: the account still has all five.
        assert one_by_one(client, 6, email) == ["UNAUTHENTICATED"] * 5 + ["TOO_MANY_REQUESTS"]


def test_concurrent_wrong_logins_check_at_most_the_limit_of_passwords(
    settings: Settings, email: str
) -> None:
    with web_client(settings) as client:
        outcomes = at_once(client, email, [WRONG] * 30)
        assert sorted(outcomes) == ["TOO_MANY_REQUESTS"] * 25 + ["UNAUTHENTICATED"] * 5
        locked = login(client, email)
        assert code(locked) == "TOO_MANY_REQUESTS"
        assert locked["errors"][0]["extensions"]["retryAfter"] > 800


def test_concurrent_right_and_wrong_logins_check_at_most_the_limit_of_wrong_passwords(
    settings: Settings, email: str
) -> None:
    with web_client(settings) as client:
        outcomes = at_once(client, email, [PASSWORD, WRONG] * 12)
    right, wrong = outcomes[::2], outcomes[1::2]
    assert wrong.count("UNAUTHENTICATED") == 5
    assert set(wrong) == {"UNAUTHENTICATED", "TOO_MANY_REQUESTS"}
    # A right password is refused only once five wrong ones have failed.
    assert set(right) <= {OK, "TOO_MANY_REQUESTS"}


def test_while_redis_stalls_logins_are_refused_and_no_password_is_checked(
    settings: Settings, email: str, server: PrivateRedis
) -> None:
    stalls = with_settings(settings, redis_url=server.url, rate_limit_timeout=0.25)
    with web_client(stalls) as client:
        assert one_by_one(client, 3, email) == ["UNAUTHENTICATED"] * 3
        with server.stalled():
            stalled = at_once(client, email, [WRONG] * 10)
            right = login(client, email)
        assert stalled == ["SERVICE_UNAVAILABLE"] * 10
        assert code(right) == "SERVICE_UNAVAILABLE"
        assert 1 <= right["errors"][0]["extensions"]["retryAfter"] <= 10
        assert "try again" in right["errors"][0]["message"]
        # Redis answers again: the two failures left, then the lock.
        assert one_by_one(client, 3, email) == ["UNAUTHENTICATED"] * 2 + ["TOO_MANY_REQUESTS"]


def test_a_redis_restarted_empty_does_not_give_the_process_its_checks_back(
    settings: Settings, email: str, server: PrivateRedis
) -> None:
    with web_client(with_settings(settings, redis_url=server.url)) as client:
        assert one_by_one(client, 3, email) == ["UNAUTHENTICATED"] * 3
        server.stop()
        assert one_by_one(client, 3, email) == ["SERVICE_UNAVAILABLE"] * 3
        server.start()  # without the hits it held
        assert one_by_one(client, 3, email) == ["UNAUTHENTICATED"] * 2 + ["TOO_MANY_REQUESTS"]


def test_without_redis_logins_are_refused_as_unavailable(settings: Settings, email: str) -> None:
    with web_client(with_settings(settings, redis_url="redis://127.0.0.1:1/0")) as client:
        body = login(client, email)
        assert code(body) == "SERVICE_UNAVAILABLE"
        assert body["data"] is None
        assert one_by_one(client, 6, email) == ["SERVICE_UNAVAILABLE"] * 6
