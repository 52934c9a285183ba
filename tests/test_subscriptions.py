"""importRunUpdated over a real WebSocket (graphql-transport-ws) to the app served by uvicorn.

Refusals happen at the handshake, before the connection is accepted, as HTTP answers with a
JSON error: 403 FORBIDDEN for an Origin that is neither the server's own nor in CORS_ORIGINS
(or none) and for a signed-in user who is not staff, 401 UNAUTHENTICATED without a session,
429 TOO_MANY_REQUESTS over the rate limit.
"""

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    SAMPLE,
    csv_text,
    generate_csv,
    login,
    make_user,
    signed_in,
    trend_row,
    web_client,
    with_settings,
    work,
    work_in_a_worker_process,
)
from test_intake import upload
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from trends_gql.core.db import Database
from trends_gql.core.pagination import encode_id
from trends_gql.core.settings import Settings

PROTOCOL = Subprotocol("graphql-transport-ws")
FOREIGN = "https://evil.example"
FOLLOW = """subscription($id: ID!) {
  importRunUpdated(id: $id) {
    id status rowsTotal rowsProcessed rowsCreated rowsSkipped rowsInvalid
    errors { line column message } message finishedAt
  }
}"""
ORDER = ["QUEUED", "RUNNING", "SUCCEEDED"]


def socket_url(base: httpx.URL) -> str:
    return str(base.copy_with(scheme="ws", path="/graphql"))


def connected(
    base: httpx.URL,
    cookies: httpx.Cookies | None = None,
    origin: str | None = "own",
    protocol: Subprotocol = PROTOCOL,
) -> ClientConnection:
    """A WebSocket to the app at `base` offering `protocol`, from a page of `origin` ("own": the
    app's; None: no Origin header), with the session cookie of `cookies`."""
    sent = str(base).rstrip("/") if origin == "own" else origin
    cookie = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
    return connect(
        socket_url(base),
        origin=None if sent is None else Origin(sent),
        subprotocols=[protocol],
        additional_headers={"Cookie": cookie} if cookie else None,
        proxy=None,
        open_timeout=10,
    )


@contextmanager
def opened(
    base: httpx.URL, cookies: httpx.Cookies | None = None, origin: str | None = "own"
) -> Iterator[ClientConnection]:
    """A WebSocket as `connected` gives it, acknowledged (graphql-transport-ws)."""
    with connected(base, cookies, origin) as ws:
        assert ws.subprotocol == PROTOCOL
        ws.send(json.dumps({"type": "connection_init"}))
        assert received(ws, 10) == {"type": "connection_ack"}
        yield ws


def received(ws: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    """The next message, which comes as a text frame (browsers' clients read no other)."""
    frame = ws.recv(timeout=timeout)
    assert isinstance(frame, str), frame
    message: dict[str, Any] = json.loads(frame)
    return message


def refusal(
    base: httpx.URL, cookies: httpx.Cookies | None = None, origin: str | None = "own"
) -> tuple[int, str]:
    """The status and error code of a refused handshake."""
    with pytest.raises(InvalidStatus) as refused, opened(base, cookies, origin):
        pass
    response = refused.value.response
    (error,) = json.loads(response.body or b"{}")["errors"]
    return response.status_code, error["extensions"]["code"]


def start(ws: ClientConnection, query: str = FOLLOW, **variables: Any) -> None:
    """Send one operation (graphql-transport-ws "subscribe")."""
    payload = {"query": query, "variables": variables}
    ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))


def rest(ws: ClientConnection) -> list[dict[str, Any]]:
    """The operation's messages, up to the one that ends it (complete or error)."""
    messages = []
    while True:
        message = received(ws)
        messages.append(message)
        if message["type"] in ("complete", "error"):
            return messages


def subscribe(ws: ClientConnection, query: str = FOLLOW, **variables: Any) -> list[dict[str, Any]]:
    """Run one operation; its messages, up to the one that ends it."""
    start(ws, query, **variables)
    return rest(ws)


def events(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs the `next` messages carried, after checking that none carried errors."""
    nexts = [m["payload"] for m in messages if m["type"] == "next"]
    assert all("errors" not in p for p in nexts), nexts
    return [p["data"]["importRunUpdated"] for p in nexts]


def codes(messages: list[dict[str, Any]]) -> list[str]:
    """The error codes in the messages (errors of `next` payloads, and `error` messages)."""
    found = []
    for message in messages:
        payload = message.get("payload")
        errors = payload if message["type"] == "error" else (payload or {}).get("errors", [])
        found += [e["extensions"]["code"] for e in errors]
    return found


@pytest.fixture
def cookies(staff: httpx.Client) -> httpx.Cookies:
    """The staff member's session cookie."""
    return httpx.Cookies(staff.cookies)


# Live progress


def test_staff_follow_an_upload_from_queued_to_succeeded_as_a_worker_process_imports_it(
    staff: httpx.Client, cookies: httpx.Cookies, jobs_settings: Settings, tmp_path: Path
) -> None:
    rows = 600
    content = generate_csv(rows, tmp_path / "big.csv").read_bytes()
    queued = upload(staff, content, "big.csv")["data"]["importTrends"]
    # The worker's batches are small, so that it records its progress 30 times.
    worker = with_settings(jobs_settings, import_batch_size=20)
    with opened(staff.base_url, cookies) as ws, ThreadPoolExecutor(1) as pool:
        start(ws, id=queued["id"])
        first = received(ws, 10)  # subscribed: the worker may start
        working = pool.submit(work_in_a_worker_process, worker)
        messages = [first, *rest(ws)]
        working.result()
    assert messages[-1] == {"id": "1", "type": "complete"}  # the server ends it
    runs = events(messages)
    assert runs[0] == {**runs[0], "id": queued["id"], "status": "QUEUED", "rowsProcessed": 0}
    statuses = [ORDER.index(r["status"]) for r in runs]
    assert statuses == sorted(statuses), runs
    progress = [r["rowsProcessed"] for r in runs]
    assert progress == sorted(progress), progress
    final = runs[-1]
    assert final["status"] == "SUCCEEDED"
    assert final["rowsProcessed"] == final["rowsTotal"] == rows
    assert final["rowsCreated"] + final["rowsSkipped"] == rows
    assert (final["rowsInvalid"], final["errors"], final["finishedAt"] is None) == (0, [], False)
    assert all(r["status"] != "SUCCEEDED" for r in runs[:-1])  # one final event, the last
    if jobs_settings.database_url.startswith("postgresql"):
        # SQLite has one writer at a time: the import records its progress when it ends only.
        assert len({p for p in progress if 0 < p < rows}) >= 2, progress


def test_a_failed_import_ends_the_subscription_with_its_row_errors(
    staff: httpx.Client, cookies: httpx.Cookies, jobs_settings: Settings
) -> None:
    content = csv_text([trend_row(), trend_row(steepl="nope")]).encode()
    queued = upload(staff, content)["data"]["importTrends"]
    with opened(staff.base_url, cookies) as ws, ThreadPoolExecutor(1) as pool:
        start(ws, id=queued["id"])
        first = received(ws, 10)
        following = pool.submit(rest, ws)
        assert work(jobs_settings)  # in this process: RQ's worker wants the main thread
        messages = [first, *following.result()]
    final = events(messages)[-1]
    assert (final["status"], final["rowsInvalid"], final["rowsCreated"]) == ("FAILED", 1, 0)
    assert [(e["line"], e["column"]) for e in final["errors"]] == [(3, "STEEPL")]
    assert messages[-1]["type"] == "complete"


def test_a_finished_run_is_sent_once_as_it_ended_then_completed(
    staff: httpx.Client, cookies: httpx.Cookies, jobs_settings: Settings
) -> None:
    queued = upload(staff, SAMPLE.read_bytes())["data"]["importTrends"]
    assert work(jobs_settings)
    with opened(staff.base_url, cookies) as ws:
        messages = subscribe(ws, id=queued["id"])
    assert [m["type"] for m in messages] == ["next", "complete"]
    (run,) = events(messages)
    assert (run["status"], run["rowsProcessed"], run["rowsCreated"]) == ("SUCCEEDED", 44, 44)


def test_an_unknown_run_is_not_found(staff: httpx.Client, cookies: httpx.Cookies) -> None:
    with opened(staff.base_url, cookies) as ws:
        messages = subscribe(ws, id=encode_id(999_999, "ImportRun"))
        assert codes(messages) == ["NOT_FOUND"]
        assert codes(subscribe(ws, id="not an id")) == ["BAD_USER_INPUT"]


# What runs over the socket, and under which limits


def test_queries_and_mutations_go_over_http_not_over_the_socket(
    staff: httpx.Client, cookies: httpx.Cookies
) -> None:
    with opened(staff.base_url, cookies) as ws:
        for document in ("{ importRuns { nodes { id } } }", "mutation { logout }"):
            (message,) = subscribe(ws, document)
            assert message["type"] == "error"
            assert "are not allowed" in message["payload"][0]["message"]
            assert codes([message]) == ["GRAPHQL_VALIDATION_FAILED"]


def test_a_subscription_over_http_is_refused_saying_where_to_send_it(staff: httpx.Client) -> None:
    body = {"query": FOLLOW, "variables": {"id": encode_id(1, "ImportRun")}}
    for response in (
        staff.post("/graphql", json=body),
        staff.get("/graphql", params={"query": FOLLOW}, headers={"GraphQL-Require-Preflight": "1"}),
    ):
        assert response.status_code == 400
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert "WebSocket" in error["message"]


def test_the_document_limits_hold_for_subscriptions(
    staff: httpx.Client, cookies: httpx.Cookies, jobs_settings: Settings
) -> None:
    fields = " ".join(f"a{n}: status" for n in range(jobs_settings.max_query_aliases + 1))
    query = f"subscription($id: ID!) {{ importRunUpdated(id: $id) {{ {fields} }} }}"
    with opened(staff.base_url, cookies) as ws:
        messages = subscribe(ws, query, id=encode_id(1, "ImportRun"))
    assert codes(messages) == ["TOO_MANY_ALIASES"]


def test_each_handshake_counts_as_one_request_under_the_rate_limit(
    jobs_settings: Settings, db: Database
) -> None:
    make_user(db, "staff@example.org", staff=True)
    with web_client(with_settings(jobs_settings, rate_limit_user=2)) as client:
        login(client, "staff@example.org")  # anonymous: not the staff member's count
        for _ in range(2):
            with opened(client.base_url, client.cookies):
                pass
        assert refusal(client.base_url, client.cookies) == (429, "TOO_MANY_REQUESTS")


def test_a_client_offering_only_another_protocol_is_closed_with_4406(
    staff: httpx.Client, cookies: httpx.Cookies
) -> None:
    legacy = Subprotocol("graphql-ws")  # not offered by the server
    with (
        connected(staff.base_url, cookies, protocol=legacy) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4406


# Refusals at the handshake


def test_the_handshake_is_refused_to_anonymous_callers(staff: httpx.Client) -> None:
    assert refusal(staff.base_url) == (401, "UNAUTHENTICATED")


def test_the_handshake_is_refused_to_users_who_are_not_staff(
    staff: httpx.Client, jobs_settings: Settings, db: Database
) -> None:
    make_user(db, "reader@example.org")
    reader = signed_in(jobs_settings, "reader@example.org")
    assert refusal(staff.base_url, reader) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    "origin",
    [
        FOREIGN,  # another site's page, with the staff member's cookie (hijacking)
        "http://127.0.0.1",  # the server's host on another port
        "null",  # a sandboxed page or a file
        None,  # no Origin at all: not a browser, and not let in either
    ],
)
def test_the_handshake_is_refused_from_other_origins_even_with_a_staff_cookie(
    staff: httpx.Client, cookies: httpx.Cookies, origin: str | None
) -> None:
    assert refusal(staff.base_url, cookies, origin) == (403, "FORBIDDEN")


def test_a_page_of_an_origin_in_cors_origins_may_connect(
    staff: httpx.Client, cookies: httpx.Cookies, jobs_settings: Settings
) -> None:
    (allowed,) = jobs_settings.cors_origins
    with opened(staff.base_url, cookies, allowed) as ws:
        assert codes(subscribe(ws, id=encode_id(999_999, "ImportRun"))) == ["NOT_FOUND"]
