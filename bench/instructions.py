"""Instructions an uncached request costs our server, counted: `python bench/instructions.py`.

On a shared machine, timings vary by 20 % and more from one run to the next; the instructions a
request runs barely vary. For BENCH_BASE (default HEAD, written out as bench/compare.py writes
it) and this working tree, the app is called in process (as ASGI, without an HTTP server) under
valgrind's callgrind, once for LOW requests and once for HIGH; the difference of the two counts,
divided by HIGH - LOW, is what one request costs. What the kernel does (socket reads and
writes) and what PostgreSQL does are not counted: bench/compare.py measures those, with their
noise. Needs valgrind (`apt-get install valgrind`); a run takes a few minutes a workload.
"""

import asyncio
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import psycopg
import uvloop
from compare import BASE, checkout
from run import (
    BIN,
    HTTP_ROWS,
    BenchError,
    Workload,
    app_env,
    bench_url,
    drop_database,
    generate,
    libpq_url,
    reset_database,
    run,
    workloads,
)

from trends_gql.core.pagination import encode_id

LOW, HIGH = 100, 600
WARMUP = 300  # requests before those counted: every document is planned and prepared by then
NAMES = os.environ.get("BENCH_WORKLOADS", "L3,L4").split(",")
VALGRIND = "/usr/bin/valgrind"


async def _requests(workload: Workload, count: int) -> None:
    """In the child: WARMUP then `count` requests of `workload` to a new app, in process."""
    from trends_gql.web.app import create_app

    app = create_app()
    body = orjson.dumps({"query": workload.query})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": workload.path,
        "raw_path": workload.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def one() -> None:
        sent = False
        statuses = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # the client stays connected
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app({**scope, "state": {}}, receive, send)
        if statuses != [200]:
            raise BenchError(f"{workload.name} answered {statuses}")

    for _ in range(WARMUP + count):
        await one()


def child(name: str, count: int) -> None:
    """Run in valgrind: the requests of one workload."""
    trend_id = os.environ["BENCH_TREND_ID"]
    [workload] = [w for w in workloads(trend_id) if w.name == name]
    # uvicorn's loop: asyncio's own runs Python code on each turn, as many turns as the
    # database's answers take (which would count its speed, not ours).
    uvloop.run(_requests(workload, count))


def counted(tree: Path | None, name: str, count: int, trend_id: str, work: Path) -> int:
    """The instructions of one run of the child: startup, WARMUP and `count` requests."""
    out = work / f"callgrind-{os.getpid()}-{name}-{count}-{tree is None}.out"
    env = app_env(CACHE_TTL="0", BENCH_TREND_ID=trend_id, PYTHONMALLOC="malloc")
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    command = [VALGRIND, "--tool=callgrind", f"--callgrind-out-file={out}"]
    command += [sys.executable, __file__, "--child", name, str(count)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise BenchError(f"callgrind of {name} failed: {done.stderr[-2000:]}")
    out.unlink(missing_ok=True)
    return int(found[1])


def per_request(tree: Path | None, name: str, trend_id: str, work: Path) -> float:
    """One request's instructions: the two runs at once (one a core)."""
    with ThreadPoolExecutor(2) as pool:
        low, high = pool.map(lambda n: counted(tree, name, n, trend_id, work), (LOW, HIGH))
    return (high - low) / (HIGH - LOW)


def main() -> int:
    """Count both trees on each workload, print one table; drop the database after."""
    if not os.access(VALGRIND, os.X_OK):
        print("bench: valgrind is missing (apt-get install valgrind)", file=sys.stderr)
        return 1
    try:
        base_tree = checkout(BASE)
        with tempfile.TemporaryDirectory(prefix="trends-instructions-") as tmp:
            work = Path(tmp)
            try:
                reset_database()
                print(run([str(BIN / "trends"), "import", str(generate(HTTP_ROWS, work))]).strip())
                trend_id = _first_id()
                print(f"\n{BASE} and the working tree, {HIGH - LOW} requests, uncached\n")
                print(f"| workload | {BASE} | working tree | ratio |\n|---|--:|--:|--:|")
                for name in NAMES:
                    before = per_request(base_tree, name, trend_id, work)
                    after = per_request(None, name, trend_id, work)
                    print(f"| {name} | {before:,.0f} | {after:,.0f} | {after / before:.3f} |")
            finally:
                drop_database()
    except (BenchError, subprocess.CalledProcessError, psycopg.Error) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    return 0


def _first_id() -> str:
    """The GraphQL id of the first trend."""
    with psycopg.connect(libpq_url(bench_url())) as conn:
        row = conn.execute("SELECT min(id) FROM trend").fetchone()
    if row is None or row[0] is None:
        raise BenchError("no trend was imported")
    return encode_id(row[0])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
