"""uvicorn's HTTP protocol, writing a response's head and body to the socket at once.

uvicorn writes a response's head as soon as the app sends it, then its body: two writes, two
segments on the wire, and two wake-ups of the client. Here the writes made in one turn of the
event loop go out together at its end, in one system call: a small uncached read answers about
a seventh faster under load (README, "One write a response"). A large write is not held: it
goes out at once with what is held, so flow control sees every byte as before.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HELD_MAX = 64 * 1024  # bytes held until the end of the turn, at most
# A write joined to what is held (a copy), at most. A 237 KB body joined to its head went out as
# fast as the two written apart; far larger ones go apart rather than be copied.
JOINED_MAX = 1024 * 1024


class OneWrite:
    """A transport whose small writes of one event-loop turn reach the socket together."""

    __slots__ = ("held", "loop", "size", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.held: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        """Send `data` at the end of this turn; now, with what is held, if it is large."""
        if self.size + len(data) < HELD_MAX:
            if not self.held:
                self.loop.call_soon(self.flush)
            self.held.append(data)
            self.size += len(data)
        elif len(data) <= JOINED_MAX:
            self.held.append(data)
            self.flush()
        else:
            self.flush()
            if not self.transport.is_closing():
                self.transport.write(data)

    def writelines(self, chunks: Any) -> None:
        """Write each chunk as `write` does."""
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Send what is held (nothing once the transport is closing: the peer is gone)."""
        held = self.held
        if not held:
            return
        self.held, self.size = [], 0
        if not self.transport.is_closing():
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def write_eof(self) -> None:
        """End the stream after what is held."""
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        """Close after sending what is held."""
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol over a OneWrite transport (`uvicorn.Config(http=...)`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWrite(transport, self.loop))  # type: ignore[arg-type]
