"""HTTP protections of the real app, over HTTP: CSRF prevention, body size, request rates."""

import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from conftest import (
    FakeClock,
    code,
    delete_keys,
    http_client,
    login,
    make_user,
    new_rate_namespace,
    web_client,
    with_settings,
)

from trends_gql.accounts import sessions, users
from trends_gql.accounts.auth import SESSION_COOKIE, clock_time
from trends_gql.core.db import Database
from trends_gql.core.settings import Settings

TYPENAME = {"query": "{ __typename }"}
OK = {"data": {"__typename": "Query"}}
ORIGIN = "http://localhost:8080"


@pytest.fixture(scope="module")
def client(sqlite_settings: Settings) -> Iterator[httpx.Client]:
    """A client of an app with a small body limit and no request rate limit."""
    with web_client(with_settings(sqlite_settings, max_body_bytes=2048)) as c:
        yield c


@pytest.fixture(scope="module")
def sqlite_db(sqlite_settings: Settings) -> Iterator[Database]:
    database = Database(sqlite_settings.database_url)
    yield database
    database.dispose()


def new_user(db: Database, **roles: bool) -> str:
    """The email of a new user of the shared database (password PASSWORD)."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.org"
    make_user(db, email, **roles)
    return email


def refusal(response: httpx.Response, status: int, expected_code: str) -> str:
    """The message of a refusal, after checking its status and JSON shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert code(response.json()) == expected_code
    [error] = response.json()["errors"]
    return error["message"]


# CSRF


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", json.dumps(TYPENAME)),
        ("Text/Plain; charset=utf-8", json.dumps(TYPENAME)),
        ("application/x-www-form-urlencoded", "query=%7B__typename%7D"),
        ("multipart/form-data; boundary=xyz", "--xyz--\r\n"),
        (None, json.dumps(TYPENAME)),
    ],
    ids=["text", "text-params-case", "form", "multipart", "none"],
)
def test_csrf_refuses_posts_a_browser_sends_without_preflight(
    client: httpx.Client, content_type: str | None, body: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/graphql", content=body, headers=headers)
    assert "GraphQL-Require-Preflight" in refusal(response, 400, "CSRF_PREVENTED")


def test_csrf_refuses_a_get_operation_without_a_preflight_header(client: httpx.Client) -> None:
    refusal(client.get("/graphql", params=TYPENAME), 400, "CSRF_PREVENTED")


def test_csrf_refuses_a_get_by_persisted_query_hash_without_a_preflight_header(
    client: httpx.Client,
) -> None:
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    params = {"extensions": json.dumps(persisted)}
    refusal(client.get("/graphql", params=params), 400, "CSRF_PREVENTED")
    preflighted = client.get("/graphql", params=params, headers={"Apollo-Require-Preflight": "1"})
    assert code(preflighted.json()) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize("header", ["GraphQL-Require-Preflight", "X-Requested-With"])
def test_csrf_refuses_an_empty_preflight_header(client: httpx.Client, header: str) -> None:
    response = client.get("/graphql", params=TYPENAME, headers={header: ""})
    refusal(response, 400, "CSRF_PREVENTED")


@pytest.mark.parametrize("header", ["GraphQL-Require-Preflight", "X-Requested-With"])
def test_csrf_accepts_a_get_operation_with_a_preflight_header(
    client: httpx.Client, header: str
) -> None:
    response = client.get("/graphql", params=TYPENAME, headers={header: "1"})
    assert response.status_code == 200
    assert response.json() == OK


def test_csrf_lets_a_simple_post_with_a_preflight_header_through(client: httpx.Client) -> None:
    headers = {"content-type": "text/plain", "x-requested-with": "XMLHttpRequest"}
    response = client.post("/graphql", content=json.dumps(TYPENAME), headers=headers)
    # Past the CSRF check, Strawberry itself reads JSON bodies only.
    assert refusal(response, 400, "BAD_REQUEST") == "Unsupported content type"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_csrf_lets_json_posts_through(client: httpx.Client, content_type: str) -> None:
    headers = {"content-type": content_type}
    response = client.post("/graphql", content=json.dumps(TYPENAME), headers=headers)
    assert response.json() == OK


def test_csrf_lets_graphql_response_json_through(client: httpx.Client) -> None:
    headers = {"content-type": "application/graphql-response+json"}
    response = client.post("/graphql", content=json.dumps(TYPENAME), headers=headers)
    # A browser preflights this type, so no CSRF risk; Strawberry does not read it as a request.
    assert refusal(response, 400, "BAD_REQUEST") == "Unsupported content type"


def test_graphiql_page_is_served_to_a_plain_browser_get(client: httpx.Client) -> None:
    response = client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


# Request body size


def padded(size: int) -> bytes:
    """A JSON GraphQL request of exactly `size` bytes."""
    body = json.dumps({**TYPENAME, "variables": {"pad": ""}}).encode()
    return body.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(body)) + b'"')


def chunked(body: bytes, size: int = 500) -> Iterator[bytes]:
    """The body in pieces: httpx sends it chunked, without Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


JSON = {"content-type": "application/json"}


def test_a_body_at_the_limit_is_accepted(client: httpx.Client) -> None:
    assert client.post("/graphql", content=padded(2048), headers=JSON).json() == OK


def test_a_body_declared_over_the_limit_is_refused_with_413(client: httpx.Client) -> None:
    response = client.post("/graphql", content=padded(2049), headers=JSON)
    assert "2048 bytes" in refusal(response, 413, "PAYLOAD_TOO_LARGE")


def test_a_streamed_body_over_the_limit_is_refused_with_413(client: httpx.Client) -> None:
    request = client.build_request("POST", "/graphql", content=chunked(padded(3000)), headers=JSON)
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    refusal(client.send(request), 413, "PAYLOAD_TOO_LARGE")


def test_a_streamed_body_under_the_limit_is_read_whole(client: httpx.Client) -> None:
    assert client.post("/graphql", content=chunked(padded(2000)), headers=JSON).json() == OK


PREFLIGHT = {"x-requested-with": "XMLHttpRequest"}
BOUNDARY = "trends-protection-test"
MULTIPART = {**PREFLIGHT, "content-type": f"multipart/form-data; boundary={BOUNDARY}"}
UPLOAD_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
    '{"query": "{ __typename }"}\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{{}}\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="big.csv"\r\n\r\n'
).encode()
UPLOAD_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart(size: int) -> bytes:
    """A GraphQL multipart request (`{ __typename }`) with a file of `size` bytes."""
    return UPLOAD_HEAD + b"x" * size + UPLOAD_TAIL


def test_a_staff_upload_may_be_larger_than_the_body_limit(
    client: httpx.Client, sqlite_db: Database
) -> None:
    with http_client(base_url=client.base_url) as staff:
        login(staff, new_user(sqlite_db, staff=True))
        response = staff.post("/graphql", content=multipart(5000), headers=MULTIPART)
        assert response.json() == OK
        streamed = staff.post("/graphql", content=chunked(multipart(5000)), headers=MULTIPART)
        assert streamed.json() == OK


def test_an_anonymous_upload_is_refused_before_its_body_is_read(client: httpx.Client) -> None:
    total = 50 << 20
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield UPLOAD_HEAD
        while sent < total:
            sent += 1 << 16
            yield b"x" * (1 << 16)
        yield UPLOAD_TAIL

    started = time.monotonic()
    response = client.post("/graphql", content=body(), headers=MULTIPART)
    assert "sign in as staff" in refusal(response, 401, "UNAUTHENTICATED").lower()
    # The server closed the connection instead of reading the rest (socket buffers hold some).
    assert sent < total // 5, sent
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
def test_a_signed_in_non_staff_upload_is_refused_with_403(
    client: httpx.Client, sqlite_db: Database, streamed: bool
) -> None:
    with http_client(base_url=client.base_url) as reader:
        login(reader, new_user(sqlite_db))
        content = multipart(100_000)
        response = reader.post(
            "/graphql", content=chunked(content) if streamed else content, headers=MULTIPART
        )
        assert "only staff" in refusal(response, 403, "FORBIDDEN").lower()


def test_a_staff_json_body_has_the_body_limit(client: httpx.Client, sqlite_db: Database) -> None:
    with http_client(base_url=client.base_url) as staff:
        login(staff, new_user(sqlite_db, staff=True))
        refusal(
            staff.post("/graphql", content=padded(2049), headers=JSON), 413, "PAYLOAD_TOO_LARGE"
        )


# Request rates: one app with a fake clock; each test starts an hour after the previous one.


@pytest.fixture(scope="module")
def limited_app(sqlite_settings: Settings) -> Iterator[tuple[Settings, FakeClock, str]]:
    namespace = new_rate_namespace()
    settings = with_settings(
        sqlite_settings, rate_limit_anon=3, rate_limit_user=5, rate_limit_namespace=namespace
    )
    clock = FakeClock()
    with web_client(settings, clock) as c:
        yield settings, clock, str(c.base_url)
    delete_keys(namespace)


@pytest.fixture
def limited(limited_app: tuple[Settings, FakeClock, str]) -> Iterator[httpx.Client]:
    """An anonymous client of the rate-limited app (3 a minute; 5 for a signed-in user)."""
    limited_app[1].advance(3600)
    with http_client(base_url=limited_app[2]) as c:
        yield c


@pytest.fixture
def limited_clock(limited_app: tuple[Settings, FakeClock, str]) -> FakeClock:
    return limited_app[1]


def signed_in(db: Database, base_url: str, clock: Callable[[], float]) -> httpx.Client:
    """A client with a session of a new user, opened at the app's time."""
    email = new_user(db)
    token, _ = db.call_sync(
        lambda s: sessions.open_session(
            s,
            users.require_user(s, email).id,
            now=clock_time(clock),
            max_age=3600,
            client_address=None,
            user_agent=None,
        )
    )
    return http_client(base_url=base_url, cookies={SESSION_COOKIE: token})


def statuses(client: httpx.Client, n: int) -> list[int]:
    return [client.post("/graphql", json=TYPENAME).status_code for _ in range(n)]


def test_an_anonymous_client_over_the_limit_gets_429_with_retry_after(
    limited: httpx.Client,
) -> None:
    assert statuses(limited, 3) == [200, 200, 200]
    response = limited.post("/graphql", json=TYPENAME)
    assert response.json() == {
        "errors": [
            {
                "message": "Too many requests: at most 3 a minute. Try again later.",
                "extensions": {"code": "TOO_MANY_REQUESTS"},
            }
        ]
    }
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"


def test_retry_after_counts_down_to_when_the_oldest_request_leaves_the_window(
    limited: httpx.Client, limited_clock: FakeClock
) -> None:
    clock = limited_clock
    for _ in range(3):
        assert statuses(limited, 1) == [200]
        clock.advance(10)
    clock.advance(0.4)  # 30.4 s after the first request
    assert limited.post("/graphql", json=TYPENAME).headers["retry-after"] == "30"
    clock.advance(29.1)
    assert limited.post("/graphql", json=TYPENAME).headers["retry-after"] == "1"
    clock.advance(0.5)
    assert statuses(limited, 2) == [200, 429]


def test_a_signed_in_user_is_limited_per_user_not_per_address(
    limited: httpx.Client, limited_app: tuple[Settings, FakeClock, str], sqlite_db: Database
) -> None:
    _, clock, url = limited_app
    with signed_in(sqlite_db, url, clock) as ann, signed_in(sqlite_db, url, clock) as bob:
        assert statuses(ann, 6) == [200] * 5 + [429]
        assert statuses(bob, 5) == [200] * 5
    assert statuses(limited, 4) == [200, 200, 200, 429]


def test_health_checks_and_cors_preflights_are_not_limited(limited: httpx.Client) -> None:
    assert statuses(limited, 4)[-1] == 429
    assert [limited.get("/healthz").status_code for _ in range(5)] == [200] * 5
    preflight = {"origin": ORIGIN, "access-control-request-method": "POST"}
    assert limited.options("/graphql", headers=preflight).status_code == 200


def test_a_429_is_readable_by_an_allowed_origin(limited: httpx.Client) -> None:
    responses = [
        limited.post("/graphql", json=TYPENAME, headers={"origin": ORIGIN}) for _ in "1234"
    ]
    assert responses[-1].status_code == 429
    assert responses[-1].headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize(("anon", "user"), [(0, 1), (1, 0)])
def test_zero_switches_a_limit_off(
    sqlite_settings: Settings, sqlite_db: Database, rate_namespace: str, anon: int, user: int
) -> None:
    settings = with_settings(
        sqlite_settings,
        rate_limit_anon=anon,
        rate_limit_user=user,
        rate_limit_namespace=rate_namespace,
    )
    unlimited, limited_to_one = ([200] * 8, [200] + [429] * 7)
    clock = FakeClock()
    with (
        web_client(settings, clock) as anonymous,
        signed_in(sqlite_db, str(anonymous.base_url), clock) as user_client,
    ):
        assert statuses(anonymous, 8) == (unlimited if anon == 0 else limited_to_one)
        assert statuses(user_client, 8) == (unlimited if user == 0 else limited_to_one)


def test_without_redis_requests_are_still_limited_and_the_outage_logged_once(
    sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = with_settings(sqlite_settings, redis_url="redis://127.0.0.1:1/0", rate_limit_anon=2)
    with caplog.at_level(logging.WARNING), web_client(settings, FakeClock()) as anonymous:
        assert statuses(anonymous, 4) == [200, 200, 429, 429]
    degraded = [r for r in caplog.records if "rate limiting degraded" in r.getMessage()]
    assert len(degraded) == 1


# Cross-site frontends: Apollo Client's headers, and headers operators allow


def preflight(client: httpx.Client, headers: str) -> httpx.Response:
    """A browser's CORS preflight for a POST from ORIGIN that will carry these headers."""
    request = {"access-control-request-method": "POST", "access-control-request-headers": headers}
    return client.options("/graphql", headers={"origin": ORIGIN, **request})


@pytest.mark.parametrize(
    "header",
    ["apollographql-client-name", "apollographql-client-version", "apollo-require-preflight"],
)
def test_a_preflight_for_an_apollo_client_header_is_allowed(
    client: httpx.Client, header: str
) -> None:
    response = preflight(client, f"content-type, {header}")
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert header in response.headers["access-control-allow-headers"].lower()


def test_a_preflight_for_a_header_nobody_allowed_is_refused(client: httpx.Client) -> None:
    assert preflight(client, "content-type, x-trace-id").status_code == 400


def test_cors_allow_headers_sets_the_headers_allowed_besides_the_standard_ones(
    sqlite_settings: Settings,
) -> None:
    settings = with_settings(sqlite_settings, cors_allow_headers=" X-Trace-Id , x-tenant,")
    assert settings.cors_allow_headers == ["X-Trace-Id", "x-tenant"]
    with web_client(settings) as configured:
        allowed = "content-type, graphql-require-preflight, x-requested-with, x-trace-id, x-tenant"
        assert preflight(configured, allowed).status_code == 200
        assert preflight(configured, "apollographql-client-name").status_code == 400


def test_csrf_lets_a_simple_post_with_apollo_require_preflight_through(
    client: httpx.Client,
) -> None:
    headers = {"content-type": "text/plain", "Apollo-Require-Preflight": "1"}
    response = client.post("/graphql", content=json.dumps(TYPENAME), headers=headers)
    assert refusal(response, 400, "BAD_REQUEST") == "Unsupported content type"


def test_csrf_lets_a_multipart_post_with_apollo_require_preflight_through(
    client: httpx.Client,
) -> None:
    upload = {"operations": json.dumps(TYPENAME), "map": "{}"}
    refused = client.post("/graphql", files={"0": ("a.csv", b"x")}, data=upload)
    assert code(refused.json()) == "CSRF_PREVENTED"
    response = client.post(
        "/graphql",
        files={"0": ("a.csv", b"x")},
        data=upload,
        headers={"Apollo-Require-Preflight": "1"},
    )
    # Past the CSRF check (what comes next depends on who uploads).
    assert "CSRF_PREVENTED" not in response.text


def test_csrf_refuses_an_empty_apollo_require_preflight_header(client: httpx.Client) -> None:
    response = client.get("/graphql", params=TYPENAME, headers={"Apollo-Require-Preflight": ""})
    refusal(response, 400, "CSRF_PREVENTED")


def test_a_client_that_leaves_before_its_body_is_read_is_no_server_error(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = server.removeprefix("http://").split(":")
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n"
        "content-length: 1000\r\n\r\n"
    )
    with caplog.at_level(logging.ERROR), socket.create_connection((host, int(port))) as conn:
        conn.sendall(head.encode() + b'{"query": "{ __typename')
        time.sleep(0.2)  # the view is reading the body when the client goes
    with http_client(base_url=server) as client:  # and the server still answers
        assert client.post("/graphql", json=TYPENAME).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
