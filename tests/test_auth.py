"""Session login over HTTP: cookies, me/logout, the brute-force limits, ended sessions."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import (
    LOGIN,
    PASSWORD,
    FakeClock,
    code,
    login,
    make_user,
    post,
    web_client,
    with_settings,
)
from pydantic import ValidationError

from trends_gql.accounts import users
from trends_gql.accounts.auth import SESSION_COOKIE
from trends_gql.core.db import Database
from trends_gql.core.pagination import decode_id
from trends_gql.core.settings import Settings

ME = "{ me { email isStaff } }"


@pytest.fixture
def web(
    backend: Settings, db: Database, clock: FakeClock, rate_namespace: str
) -> Iterator[httpx.Client]:
    """A client of an app of its own, with a fake clock."""
    settings = with_settings(backend, rate_limit_namespace=rate_namespace)
    with web_client(settings, clock) as client:
        yield client


def test_login_opens_a_session_that_me_reports(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org", staff=True)
    assert post(web, ME) == {"data": {"me": None}}
    body = login(web, "Ann@Example.org")
    user = body["data"]["login"]
    assert user["email"] == "ann@example.org"
    assert (user["isStaff"], user["isSuperuser"]) == (True, False)
    assert user["lastLogin"] is not None
    assert decode_id(user["id"], "User") > 0
    assert post(web, ME) == {"data": {"me": {"email": "ann@example.org", "isStaff": True}}}


def test_logout_ends_the_session(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org")
    login(web, "ann@example.org")
    assert post(web, "mutation { logout }") == {"data": {"logout": True}}
    assert post(web, ME) == {"data": {"me": None}}


def test_session_cookie_flags_in_development(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org")
    response = web.post(
        "/graphql",
        json={"query": LOGIN, "variables": {"email": "ann@example.org", "password": PASSWORD}},
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["max-age"].strip() == f"Max-Age={14 * 24 * 3600}"
    assert "secure" not in attributes


@pytest.mark.parametrize(
    "update", [{"trends_env": "production"}, {"session_cookie_secure": True}], ids=["prod", "flag"]
)
def test_session_cookie_is_secure_in_production_or_when_asked(
    backend: Settings, db: Database, clock: FakeClock, rate_namespace: str, update: dict[str, Any]
) -> None:
    make_user(db, "ann@example.org")
    settings = with_settings(
        backend, rate_limit_namespace=rate_namespace, session_max_age=3600, **update
    )
    with web_client(settings, clock) as client:
        response = client.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"email": "ann@example.org", "password": PASSWORD}},
        )
        cookie = response.headers["set-cookie"].lower()
        assert "; secure" in cookie
        assert "max-age=3600" in cookie


@pytest.mark.parametrize(
    ("update", "samesite"),
    [
        ({"session_cookie_samesite": "strict"}, "strict"),
        ({"session_cookie_samesite": "None", "session_cookie_secure": True}, "none"),
    ],
    ids=["strict", "none"],
)
def test_session_cookie_samesite_follows_the_setting(
    backend: Settings,
    db: Database,
    clock: FakeClock,
    rate_namespace: str,
    update: dict[str, Any],
    samesite: str,
) -> None:
    make_user(db, "ann@example.org")
    settings = with_settings(backend, rate_limit_namespace=rate_namespace, **update)
    with web_client(settings, clock) as client:
        response = client.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"email": "ann@example.org", "password": PASSWORD}},
        )
        cookie = response.headers["set-cookie"].lower()
        assert f"; samesite={samesite}" in cookie
        assert "; httponly" in cookie


@pytest.mark.parametrize(
    "secure",
    [{"session_cookie_secure": True}, {"trends_env": "production", "secret_key": "k"}],
    ids=["flag", "prod"],
)
def test_samesite_none_is_refused_unless_cookies_are_secure(secure: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="SESSION_COOKIE_SAMESITE=none needs secure cookies"):
        Settings(session_cookie_samesite="none")
    assert Settings(session_cookie_samesite="NONE", **secure).session_cookie_samesite == "none"
    with pytest.raises(ValidationError, match="session_cookie_samesite"):
        Settings(session_cookie_samesite="sometimes")


def test_wrong_password_and_unknown_email_give_the_same_error(
    web: httpx.Client, db: Database
) -> None:
    make_user(db, "ann@example.org")
    wrong = login(web, "ann@example.org", "not the password")
    unknown = login(web, "nobody@example.org")
    for body in (wrong, unknown):
        assert body["data"] is None
        assert code(body) == "UNAUTHENTICATED"
        assert body["errors"][0]["message"] == "invalid email or password"
    assert "set-cookie" not in web.post("/graphql", json={"query": ME}).headers


def test_login_replaces_the_previous_session(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org", staff=True)
    make_user(db, "bob@example.org")
    login(web, "ann@example.org")
    login(web, "bob@example.org")
    assert post(web, ME)["data"]["me"] == {"email": "bob@example.org", "isStaff": False}


def test_a_failed_login_keeps_no_earlier_session_open(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org")
    login(web, "ann@example.org")
    assert code(login(web, "ann@example.org", "wrong password")) == "UNAUTHENTICATED"
    assert post(web, ME)["data"]["me"] == {"email": "ann@example.org", "isStaff": False}


def test_five_failures_lock_the_email_until_the_window_passes(
    web: httpx.Client, db: Database, clock: FakeClock
) -> None:
    make_user(db, "ann@example.org")
    for _ in range(5):
        assert code(login(web, "ann@example.org", "wrong password")) == "UNAUTHENTICATED"
        clock.advance(60)
    # The first failure, 5 minutes ago, leaves the 15-minute window first.
    locked = login(web, "ann@example.org")
    assert code(locked) == "TOO_MANY_REQUESTS"
    assert locked["errors"][0]["extensions"]["retryAfter"] == 10 * 60
    clock.advance(10 * 60 - 1)
    assert code(login(web, "ANN@example.org")) == "TOO_MANY_REQUESTS"
    clock.advance(2)
    assert login(web, "ann@example.org")["data"]["login"]["email"] == "ann@example.org"


def test_successful_logins_do_not_count_as_failures(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org")
    for _ in range(4):
        login(web, "ann@example.org", "wrong password")
    for _ in range(3):
        assert login(web, "ann@example.org")["data"]["login"]
    assert code(login(web, "ann@example.org", "wrong password")) == "UNAUTHENTICATED"
    assert code(login(web, "ann@example.org")) == "TOO_MANY_REQUESTS"


def test_twenty_failures_from_one_client_lock_every_email(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org")
    for i in range(20):
        assert code(login(web, f"guess{i}@example.org")) == "UNAUTHENTICATED"
    assert code(login(web, "ann@example.org")) == "TOO_MANY_REQUESTS"


def test_aliased_logins_count_each_attempt_that_runs(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org")
    fields = " ".join(
        f'a{i}: login(email: "ann@example.org", password: "wrong{i}") {{ email }}' for i in range(7)
    )
    # Mutation fields run one after the other and a failed login (non-null User!) ends the
    # operation, so one document makes one attempt, and it is counted.
    for _ in range(5):
        body = post(web, f"mutation {{ {fields} }}")
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert code(login(web, "ann@example.org")) == "TOO_MANY_REQUESTS"


def test_batched_logins_each_count(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org")
    attempt = {"query": LOGIN, "variables": {"email": "ann@example.org", "password": "wrong"}}
    response = web.post("/graphql", json=[attempt] * 7)
    assert response.status_code == 200, response.text
    codes = [body["errors"][0]["extensions"]["code"] for body in response.json()]
    assert sorted(codes) == ["TOO_MANY_REQUESTS"] * 2 + ["UNAUTHENTICATED"] * 5
    assert code(login(web, "ann@example.org")) == "TOO_MANY_REQUESTS"


def _staff_session(web: httpx.Client, db: Database) -> None:
    make_user(db, "ann@example.org", staff=True)
    login(web, "ann@example.org")
    assert post(web, ME)["data"]["me"]["isStaff"] is True


def test_changing_the_password_ends_the_session(web: httpx.Client, db: Database) -> None:
    _staff_session(web, db)
    db.call_sync(lambda s: users.set_password(s, "ann@example.org", "another long password"))
    assert post(web, ME) == {"data": {"me": None}}
    body = post(web, 'mutation { deleteTrend(id: "VHJlbmQ6MQ") }')
    assert code(body) == "UNAUTHENTICATED"


def test_deactivating_the_user_ends_the_session(web: httpx.Client, db: Database) -> None:
    _staff_session(web, db)
    db.call_sync(lambda s: users.set_active(s, "ann@example.org", False))
    assert post(web, ME) == {"data": {"me": None}}
    assert code(login(web, "ann@example.org")) == "UNAUTHENTICATED"


def test_a_tampered_cookie_is_anonymous(web: httpx.Client, db: Database) -> None:
    _staff_session(web, db)
    value = web.cookies[SESSION_COOKIE]
    web.cookies.set(SESSION_COOKIE, value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB"))
    assert post(web, ME) == {"data": {"me": None}}


def test_password_is_never_returned_or_logged(
    web: httpx.Client, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    make_user(db, "ann@example.org")
    caplog.set_level("DEBUG")
    login(web, "ann@example.org")
    login(web, "ann@example.org", "wrong password xyz")
    body = post(web, '{ __type(name: "User") { fields { name } } }')
    names = {f["name"] for f in body["data"]["__type"]["fields"]}
    assert names == {"id", "email", "isStaff", "isSuperuser", "lastLogin"}
    assert PASSWORD not in caplog.text
    assert "wrong password xyz" not in caplog.text
    assert "$argon2" not in caplog.text
