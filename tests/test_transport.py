"""A response reaches the socket in one write (web/transport.py), whole and in order."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from conftest import csv_text, generate_csv, http_client, load, serve, trend_row
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from trends_gql.core.db import Database
from trends_gql.core.settings import Settings
from trends_gql.web.app import create_app
from trends_gql.web.transport import HELD_MAX, JOINED_MAX, OneWrite, OneWriteHttpTools

PAGE = "{ trends(first: 500) { totalCount nodes { megatrend macrotrend } } }"
TEXTS = "challengesAndResearchGaps relevantIndustries realWorldApplicationAndUseCases"
LARGE = f"{{ trends(first: 500) {{ nodes {{ megatrend macrotrend {TEXTS} }} }} }}"


class _Recorder:
    """The server's transport, recording the writes that reach it (each one system call)."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self.transport = transport
        self.writes = writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def writelines(self, chunks: Any) -> None:  # one system call too
        chunks = [bytes(c) for c in chunks]
        self.writes.append(b"".join(chunks))
        self.transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _recorded(protocol: type[HttpToolsProtocol], writes: list[bytes]) -> type[Any]:
    """`protocol`, its writes to the socket recorded in `writes`."""

    class Recorded(protocol):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_Recorder(transport, writes))

    return Recorded


@pytest.fixture
def writes() -> list[bytes]:
    return []


@pytest.fixture
def recorded(backend: Settings, db: Database, writes: list[bytes]) -> Iterator[str]:
    """The app served with our protocol, recording what reaches the socket."""
    with serve(create_app(backend), http=_recorded(OneWriteHttpTools, writes)) as url:
        yield url


def _page(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": PAGE})
    assert response.status_code == 200, response.text
    return response.json()["data"]["trends"]  # type: ignore[no-any-return]


def test_each_answer_reaches_the_socket_in_one_write_with_its_head(
    recorded: str, db: Database, tmp_path: Any, writes: list[list[bytes]]
) -> None:
    load(db, tmp_path, csv_text([trend_row(megatrend=f"M{i}") for i in range(3)]))
    with http_client(base_url=recorded) as client:
        _page(client)  # the connection is open: what follows writes responses only
        writes.clear()
        pages = [_page(client) for _ in range(3)]
    assert [p["totalCount"] for p in pages] == [3, 3, 3]
    assert len(writes) == 3, [len(w) for w in writes]
    for sent in writes:
        assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
        body = sent.split(b"\r\n\r\n", 1)[1]
        assert orjson.loads(body)["data"]["trends"]["totalCount"] == 3


def test_uvicorn_alone_writes_the_head_and_the_body_apart(backend: Settings, db: Database) -> None:
    # What OneWriteHttpTools is for: the day uvicorn writes a response at once, this fails and
    # web/transport.py can go.
    writes: list[bytes] = []
    with (
        serve(create_app(backend), http=_recorded(HttpToolsProtocol, writes)) as url,
        http_client(base_url=url) as client,
    ):
        _page(client)
        writes.clear()
        _page(client)
    assert len(writes) == 2
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n")


def test_a_large_answer_goes_out_at_once_with_its_held_head(
    recorded: str, db: Database, tmp_path: Any, writes: list[list[bytes]]
) -> None:
    load(db, tmp_path, generate_csv(300, tmp_path / "trends.csv"))
    with http_client(base_url=recorded) as client:
        _page(client)
        writes.clear()
        response = client.post("/graphql", json={"query": LARGE})
    assert len(response.content) > HELD_MAX
    assert len(response.json()["data"]["trends"]["nodes"]) == 300
    # The head was held; the body, too large to hold, went out with it in the same call.
    [sent] = writes
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
    assert sent.endswith(b"\r\n\r\n" + response.content)


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _request_head(host: str, body: bytes, *headers: bytes) -> bytes:
    """The head of a POST of `body` to /graphql, with `headers` (each ending in CRLF)."""
    return (
        b"POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%s\r\n"
    ) % (host.encode(), len(body), b"".join(headers))


def _until_closed(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_pipelined_requests_are_answered_in_order_and_whole_before_the_close(
    recorded: str, db: Database, tmp_path: Any
) -> None:
    load(db, tmp_path, csv_text([trend_row(megatrend="First"), trend_row(megatrend="Second")]))
    host, port = _address(recorded)
    requests = b""
    for megatrend, last in (("First", False), ("Second", True)):
        query = f'{{ trends(filter: {{megatrend: "{megatrend}"}}) {{ nodes {{ megatrend }} }} }}'
        body = orjson.dumps({"query": query})
        requests += _request_head(host, body, b"Connection: close\r\n" if last else b"") + body
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(requests)  # both at once: the second waits for the first's answer
        received = _until_closed(sock)  # which the server closes after the second answer
    bodies = [a.split(b"\r\n\r\n", 1)[1] for a in received.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    megatrends = [orjson.loads(body)["data"]["trends"]["nodes"] for body in bodies]
    assert megatrends == [[{"megatrend": "First"}], [{"megatrend": "Second"}]]


def test_a_client_that_expects_100_continue_is_told_to_go_on_at_once(recorded: str) -> None:
    # uvicorn writes the 100 Continue when the app first reads the body, then waits for it: what
    # is held must go out at the end of that turn, or the client would wait for nothing.
    host, port = _address(recorded)
    body = orjson.dumps({"query": "{ __typename }"})
    expect = (b"Expect: 100-continue\r\n", b"Connection: close\r\n")
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(_request_head(host, body, *expect))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"  # the timeout raises
        sock.sendall(body)
        received = _until_closed(sock)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b'{"data":{"__typename":"Query"}}')


class _Sink(asyncio.Protocol):
    """The peer: what it received, and whether the stream has ended."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.ended = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.received.extend(data)

    def eof_received(self) -> None:
        self.ended.set()


@contextlib.asynccontextmanager
async def _connected(writes: list[bytes]) -> AsyncIterator[tuple[OneWrite, _Sink]]:
    """A OneWrite over a real loopback connection to a _Sink, its writes recorded."""
    loop = asyncio.get_running_loop()
    sink = _Sink()
    server = await loop.create_server(lambda: sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    one = OneWrite(_Recorder(transport, writes), loop)  # type: ignore[arg-type]
    try:
        yield one, sink
    finally:
        one.close()
        server.close()


@pytest.mark.anyio
async def test_a_write_too_large_to_copy_goes_out_on_its_own_after_what_is_held() -> None:
    writes: list[bytes] = []
    async with _connected(writes) as (one, sink):
        one.write(b"0123456789")
        one.write(b"x" * (JOINED_MAX + 1))
        assert [len(w) for w in writes] == [10, JOINED_MAX + 1]
        one.write_eof()
        await asyncio.wait_for(sink.ended.wait(), 10)
    assert bytes(sink.received) == b"0123456789" + b"x" * (JOINED_MAX + 1)


@pytest.mark.anyio
async def test_what_is_held_goes_out_in_one_write_before_the_end_of_the_stream() -> None:
    writes: list[bytes] = []
    async with _connected(writes) as (one, sink):
        one.write(b"last ")
        one.writelines([b"words", b"."])  # held as well, not sent past what is held
        one.write_eof()
        assert writes == [b"last words."]
        await asyncio.wait_for(sink.ended.wait(), 10)
    assert bytes(sink.received) == b"last words."
