"""The data generation known in this process, as long as Redis has not said it changed.

Every hit of the cache needs the current generation (core/generation.py); asking Redis for it
costs a hit as much CPU as the rest of it. Instead, a process subscribes to the channel on which
each bump is published, and keeps the generation it last read: while nothing has arrived on
the subscription, that generation is still current. Before using it, a hit reads what the
socket holds without waiting (one system call): anything at all means "ask Redis again".

Read-your-writes holds across processes: a bump publishes, then waits for one more answer of
Redis (core/generation.bump) before the write's request is answered, and Redis writes the
published message to the subscribers' sockets before it answers that second command. So once
a client has the answer to its write, the message is in every subscriber's socket, and the next
hit in any process sees it. A subscription that is not (yet) open, or that failed, knows nothing:
hits ask Redis, as without it.
"""

import contextlib
import logging
import socket
import threading
import time
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT = 1.0
_RETRY_AFTER = 5.0  # seconds between attempts to subscribe, while they fail


def _command(*parts: bytes) -> bytes:
    """A command in Redis' protocol (RESP)."""
    encoded = [b"*%d\r\n" % len(parts)]
    for part in parts:
        encoded.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(encoded)


class GenerationWatch:
    """The generation this process last read, valid until a bump is published."""

    def __init__(self, redis_url: str, channel: str, retry_after: float = _RETRY_AFTER) -> None:
        self.url = redis_url
        self.channel = channel.encode()
        self.name = b"trends-watch:" + self.channel  # its connection's, in CLIENT LIST
        self.retry_after = retry_after
        self.sock: socket.socket | None = None
        self.value: int | None = None
        # Bumped whenever something arrives: a generation read before then may be outdated.
        self.epoch = 0
        self.opening: threading.Thread | None = None
        self.retry_at = 0.0
        self.supported = urlsplit(redis_url).scheme in ("redis", "unix")  # not TLS

    @property
    def watching(self) -> bool:
        """Whether the subscription is open."""
        return self.sock is not None

    def current(self) -> int | None:
        """The generation if this process knows it is current; None: ask Redis."""
        if self.sock is None:
            self._open_in_background()
            return None
        if self._arrived():
            self.value = None
        return self.value

    def started(self) -> int:
        """Mark the start of a read of the generation from Redis (pass it to `read`)."""
        return self.epoch

    def read(self, value: int, started: int) -> None:
        """Keep a generation read from Redis, unless something arrived since it was asked for."""
        if self.sock is not None and started == self.epoch:
            self.value = value

    def _arrived(self) -> bool:
        """Whether anything arrived on the subscription (or it broke); drains the socket."""
        assert self.sock is not None
        arrived = False
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:  # closed by Redis (restarted, or the client killed)
                    self._close()
                    return True
                arrived = True
        except BlockingIOError:
            pass
        except OSError:
            self._close()
            return True
        if arrived:
            self.epoch += 1
        return arrived

    def _open_in_background(self) -> None:
        # Connecting may take a while (a Redis down or far away): never on the event loop.
        if not self.supported or time.monotonic() < self.retry_at:
            return
        if self.opening is not None and self.opening.is_alive():
            return
        self.retry_at = time.monotonic() + self.retry_after
        self.opening = threading.Thread(target=self._open, name="generation-watch", daemon=True)
        self.opening.start()

    def _open(self) -> None:
        try:
            sock = self._subscribed()
        except OSError as exc:
            log.debug("generation watch not open (hits ask Redis): %s", exc)
            return
        sock.setblocking(False)
        self.epoch += 1  # a generation read before the subscription is not to be kept
        self.sock = sock

    def _subscribed(self) -> socket.socket:
        """A socket subscribed to the channel, blocking, the confirmation read."""
        parts = urlsplit(self.url)
        sock: socket.socket
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(_CONNECT_TIMEOUT)
            sock.connect(unquote(parts.path))
        else:
            address = (parts.hostname or "localhost", parts.port or 6379)
            sock = socket.create_connection(address, timeout=_CONNECT_TIMEOUT)
        try:
            if parts.password is not None:
                user = unquote(parts.username or "default").encode()
                sock.sendall(_command(b"AUTH", user, unquote(parts.password).encode()))
                if not sock.recv(1024).startswith(b"+OK"):
                    raise ConnectionError("Redis refused the credentials")
            sock.sendall(_command(b"CLIENT", b"SETNAME", self.name))
            if not sock.recv(1024).startswith(b"+OK"):
                raise ConnectionError("Redis refused CLIENT SETNAME")
            sock.sendall(_command(b"SUBSCRIBE", self.channel))
            confirmation = sock.recv(1024)
            if not confirmation.startswith(b"*3\r\n$9\r\nsubscribe\r\n"):
                raise ConnectionError(f"unexpected answer to SUBSCRIBE: {confirmation[:80]!r}")
        except BaseException:
            sock.close()
            raise
        return sock

    def _close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.value = None
        self.epoch += 1

    def close(self) -> None:
        """Unsubscribe (close the socket)."""
        self._close()
