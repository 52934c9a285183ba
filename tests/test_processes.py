"""`trends up`: three processes under one supervisor, and the private Redis."""

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from conftest import SAMPLE, TRENDS, http_request, make_settings, settings_env

from trends_gql.cli import migrate
from trends_gql.core.settings import Settings, find_private_redis, redis_problem
from trends_gql.processes import private_redis


def test_a_private_redis_answers_on_its_socket_and_stops_with_its_block(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as url:
        assert url.startswith("unix://")
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.close()
    assert not (tmp_path / "redis" / "redis.sock").exists()
    assert redis_problem(url) is not None


def test_nothing_answers_on_a_closed_port() -> None:
    assert "refused" in (redis_problem("redis://127.0.0.1:1/0") or "")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    sqlite_settings: Settings, tmp_path: Path, *args: str, **env: str
) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    environ = {**settings_env(sqlite_settings), **env}
    for name, value in env.items():
        if value == "":
            environ.pop(name)
    process = subprocess.Popen(
        [TRENDS, "up", "--port", str(port), *args],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # three processes starting on a busy 2-core machine
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if http_request("GET", f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)  # the whole session: nothing left running
            output, _ = process.communicate(timeout=30)
            pytest.fail(f"trends up did not serve within 90 s:\n{output}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[str], sig: signal.Signals) -> str:
    """Signal `trends up` and return all it printed."""
    os.kill(process.pid, sig)
    output, _ = process.communicate(timeout=30)
    return output


def session_processes(pid: int) -> list[int]:
    """Processes still alive in the session `trends up` led."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == pid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def stopped_cleanly(process: subprocess.Popen[str], output: str, tmp_path: Path) -> None:
    """Assert that `trends up` stopped its three processes and its private Redis, and exited 0."""
    for name in ("web", "worker", "scheduler"):
        assert f"{name} started" in output
        assert f"{name} stopped" in output
    assert "started a private Redis at unix://" in output
    assert not (tmp_path / "var" / "redis" / "redis.sock").exists()
    assert session_processes(process.pid) == []
    assert process.returncode == 0


def test_up_runs_web_worker_and_scheduler_with_a_private_redis_and_sigterm_stops_them_all(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    process, url = start(sqlite_settings, tmp_path, "--private-redis")
    assert http_request("GET", f"{url}/healthz").json()["redis"] == "ok"
    assert (tmp_path / "var" / "redis" / "redis.sock").exists()
    stopped_cleanly(process, stop(process, signal.SIGTERM), tmp_path)


def test_a_configured_redis_url_is_never_replaced(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    process, url = start(sqlite_settings, tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert http_request("GET", f"{url}/healthz").json()["redis"].startswith("unavailable")
    time.sleep(1.5)
    assert process.poll() is None, "worker and scheduler wait for Redis instead of exiting"
    output = stop(process, signal.SIGINT)
    assert "private Redis" not in output
    assert "Redis at redis://127.0.0.1:1/0 is unavailable" in output
    assert not (tmp_path / "var" / "redis").exists()


def child_pids(output_lines: list[str], name: str) -> list[int]:
    """The pids `trends up` reported for a child, in order."""
    return [
        int(line.split("(pid ")[1].strip().rstrip(")"))
        for line in output_lines
        if f"| {name} started (pid " in line
    ]


def test_a_child_that_dies_is_restarted_while_the_others_keep_serving_and_a_hang_up_stops_all(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    process, url = start(sqlite_settings, tmp_path, "--private-redis")
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not child_pids(lines, "scheduler"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(child_pids(lines, "scheduler")[0], signal.SIGKILL)
    while len(child_pids(lines, "scheduler")) < 2:
        assert (
            http_request("GET", f"{url}/healthz", timeout=5).status_code == 200
        )  # web never went down
        assert process.poll() is None
        assert time.monotonic() < deadline, "the scheduler was not restarted"
        time.sleep(0.2)
    # A hang-up (the terminal closed) stops every process, the restarted one included.
    os.kill(process.pid, signal.SIGHUP)
    process.wait(timeout=30)
    reader.join(timeout=10)
    process.stdout.close()
    assert any("scheduler exited with code" in line for line in lines)
    for name in ("web", "worker", "scheduler"):
        assert any(f"{name} stopped" in line for line in lines), name
    assert process.returncode == 0
    assert not (tmp_path / "var" / "redis" / "redis.sock").exists()
    assert session_processes(process.pid) == []
    with pytest.raises(httpx.HTTPError):
        http_request("GET", f"{url}/healthz", timeout=1)


def test_commands_find_the_private_redis_of_trends_up_and_ctrl_c_stops_it_all(
    tmp_path: Path,
) -> None:
    """An import from the folder of `make run` invalidates what its web process cached."""
    settings = make_settings(f"sqlite:///{tmp_path / 'trends.db'}", tmp_path)
    migrate(settings)
    process, url = start(settings, tmp_path, "--private-redis", REDIS_URL="")
    try:
        query = {"query": "{ trends { totalCount } }"}
        assert (
            http_request("POST", f"{url}/graphql", json=query).json()["data"]["trends"][
                "totalCount"
            ]
            == 0
        )
        env = {k: v for k, v in settings_env(settings).items() if k != "REDIS_URL"}
        imported = subprocess.run(
            [TRENDS, "import", str(SAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert imported.returncode == 0, imported.stderr
        assert "cache not invalidated" not in imported.stderr
        response = http_request("POST", f"{url}/graphql", json=query)
        assert response.json()["data"]["trends"]["totalCount"] == 44  # not the cached 0
    finally:
        output = stop(process, signal.SIGINT)
    stopped_cleanly(process, output, tmp_path)  # Ctrl-C is a clean stop


def test_the_private_redis_is_used_only_when_redis_url_is_not_set_and_it_answers(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    unset = Settings.model_validate({})  # as read from an environment without REDIS_URL
    socket_path = tmp_path / "redis" / "redis.sock"
    assert find_private_redis(unset, socket_path) == unset  # no socket: the default
    with private_redis(tmp_path / "redis") as private:
        assert find_private_redis(unset, socket_path).redis_url == private
        assert find_private_redis(sqlite_settings, socket_path) == sqlite_settings  # REDIS_URL
    stale = socket.socket(socket.AF_UNIX)  # a socket file nothing listens on (trends up killed)
    stale.bind(str(socket_path))
    stale.close()
    assert socket_path.is_socket()
    assert find_private_redis(unset, socket_path) == unset


def test_make_help_shows_the_address_with_host_and_port(tmp_path: Path) -> None:
    repository = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        ["make", "-s", "-C", str(repository), "help", "HOST=0.0.0.0", "PORT=9001"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "http://0.0.0.0:9001/graphql" in result.stdout
    assert "$(" not in result.stdout
    assert result.stderr == ""
