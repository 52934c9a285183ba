"""`make bench`: GraphQL throughput under wrk and import speed, against PostgreSQL.

Creates its own database (BENCH_DATABASE_URL) and uses one Redis database (BENCH_REDIS_URL),
prints Markdown tables and writes bench/results.json. With PEERS=1, PostGraphile and
strawberry-django are measured in the same run (bench/peers.py); with SCALE=1, every documented
query on 1,000,000 rows after the rest (bench/scale.py).
"""

import contextlib
import functools
import importlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pageload
import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from trends_gql.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the virtualenv's bin, where `trends` is installed
GENERATOR = ROOT / "tests" / "data" / "make_trends_csv.py"
RESULTS = ROOT / "bench" / "results.json"

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/trends_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
IMPORT_ROWS = [
    int(n) for n in os.environ.get("BENCH_IMPORT_ROWS", "100000,1000000").split(",") if n
]
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
PEERS = os.environ.get("PEERS", "") not in ("", "0")
SCALE = os.environ.get("SCALE", "") not in ("", "0")  # the 1,000,000-row set, bench/scale.py
WARMUP_SECONDS = 3
CONNECTIONS, THREADS, SERVER_WORKERS = 32, 2, 2
HTTP_ROWS = 440

FIELDS = (
    "id megatrend macrotrend challengesAndResearchGaps totalCountOfPublications"
    " totalCountOfPatents technologyReadinessLevel impactStrength steepl relevantIndustries"
    " realWorldApplicationAndUseCases uploadedAt updatedAt"
)
L1_QUERY = f"{{ trends(first: 500) {{ nodes {{ {FIELDS} }} }} }}"
L2_QUERY = f'{{ trends(first: 500, filter: {{megatrend: "AI"}}) {{ nodes {{ {FIELDS} }} }} }}'
L4_QUERY = (
    '{ macrotrendReadiness(megatrend: "AI") { macrotrend trendCount ratedCount averageTrlScore } }'
)

LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, "p50_us": %.0f, '
    .. '"p99_us": %.0f, "connect": %.0f, "read": %.0f, "write": %.0f, "status": %.0f, '
    .. '"timeout": %.0f}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"""


class BenchError(Exception):
    """A step failed; the message says which and why."""


@dataclass(frozen=True)
class Workload:
    """What wrk repeats: a GET of `path`, a POST of a GraphQL query, or payloads' POSTs in turn."""

    name: str
    label: str
    path: str
    query: str | None = None
    payloads: tuple[dict[str, Any], ...] = ()  # a page load's requests, in order
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})

    def bodies(self) -> list[bytes]:
        """The JSON bodies of the POSTs (as JSON.stringify writes them); none for a GET."""
        if self.query is not None:
            return [json.dumps({"query": self.query}).encode()]
        return [
            json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode() for p in self.payloads
        ]


@dataclass(frozen=True)
class System:
    """A server measured on its workloads: ours with caching on or off, or a peer."""

    key: str  # "ours", or the peer's key
    cache: str  # "on" or "off" for ours, "none" for a peer
    serve: Callable[[Path], contextlib.AbstractContextManager[str]]
    workloads: list[Workload]


@dataclass
class HttpResult:
    """One wrk run of one workload."""

    workload: str
    label: str
    cache: str
    round: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    response_bytes: int
    errors: dict[str, int]
    cache_header: str | None
    ratio_to_l0: float | None = None
    system: str = "ours"
    requests_per_load: int = 1
    page_loads_per_s: float | None = None  # W5: requests/s ÷ requests_per_load


@dataclass
class ImportResult:
    """One timed command of the import part."""

    command: str
    case: str
    rows: int
    wall_s: float
    rows_per_s: float | None
    in_process_s: float | None
    peak_rss_mib: float
    created: int | None
    skipped: int | None
    wall_vs_copy: float | None = None


@dataclass
class Timed:
    """A command's wall time, peak RSS and standard output."""

    wall_s: float
    peak_rss_mib: float
    stdout: str


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, so that the finally blocks stop the servers."""
    raise SystemExit(128 + signum)


def cache_ttl_on() -> int:
    """CACHE_TTL for "caching on": the setting's default (120 s while there is none)."""
    field = Settings.model_fields.get("cache_ttl")
    default = field.default if field else None
    return default if isinstance(default, int) and default > 0 else 120


def libpq_url(url: URL) -> str:
    """`url` for psql and psycopg (no SQLAlchemy driver name)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def bench_url() -> URL:
    """The benchmark's database URL, refused unless its name says it is a benchmark's."""
    url = make_url(DATABASE_URL)
    if url.get_backend_name() != "postgresql" or "bench" not in (url.database or ""):
        raise BenchError(f"BENCH_DATABASE_URL must name a PostgreSQL database *bench*: {url}")
    return url


def admin_connection() -> psycopg.Connection[Any]:
    """A connection to the server's `postgres` database, to drop and create ours."""
    return psycopg.connect(libpq_url(bench_url().set(database="postgres")), autocommit=True)


def drop_database() -> None:
    """Drop the benchmark's database (only that one), closing its leftover connections."""
    name = sql.Identifier(bench_url().database or "")
    with admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def reset_database() -> None:
    """A new, migrated, empty benchmark database."""
    drop_database()
    with admin_connection() as conn:
        name = sql.Identifier(bench_url().database or "")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    run([str(BIN / "trends"), "migrate"])


def redis_client() -> redis.Redis:
    """The benchmark's Redis database, refused if it is database 0 (the default of everything)."""
    client = redis.Redis.from_url(REDIS_URL)
    if client.connection_pool.connection_kwargs.get("db", 0) == 0:
        raise BenchError(f"BENCH_REDIS_URL must name a Redis database other than 0: {REDIS_URL}")
    return client


def flush_redis() -> None:
    """Empty the benchmark's Redis database (only that one)."""
    client = redis_client()
    try:
        client.flushdb()
    finally:
        client.close()


def app_env(**extra: str) -> dict[str, str]:
    """The environment of every `trends` process: our database and Redis, no rate limits."""
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_ANON": "0",
        "RATE_LIMIT_USER": "0",
        "TRENDS_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "LOG_LEVEL": "WARNING",  # INFO would log every request
        **extra,
    }


def run(cmd: Sequence[str], env: dict[str, str] | None = None) -> str:
    """Run `cmd` in the project folder; its standard output, or BenchError with its output."""
    done = subprocess.run(
        cmd, cwd=ROOT, env=env or app_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def timed(cmd: Sequence[str], work: Path) -> Timed:
    """Run `cmd` under /usr/bin/time -v: wall time, peak RSS, standard output."""
    report = work / "time.txt"
    started = time.perf_counter()
    stdout = run(["/usr/bin/time", "-v", "-o", str(report), *cmd])
    wall = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text())
    if rss is None:
        raise BenchError(f"no peak RSS in the report of /usr/bin/time:\n{report.read_text()}")
    return Timed(wall, int(rss.group(1)) / 1024, stdout)


def check_tools() -> None:
    """Stop early, saying what to install, when wrk, psql, time or a service is missing."""
    for tool in ("/usr/bin/wrk", "/usr/bin/time", "/usr/bin/psql", str(BIN / "trends")):
        if not os.access(tool, os.X_OK):
            raise BenchError(f"{tool} is missing: run `make bench` (it installs wrk and time)")
    try:
        with admin_connection():
            pass
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL does not answer at {bench_url()}: {exc}") from exc
    client = redis_client()
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis does not answer at {REDIS_URL}: {exc}") from exc
    finally:
        client.close()


def generate(rows: int, work: Path) -> Path:
    """The pipeline generator's file of `rows` rows."""
    path = work / f"trends_{rows}.csv"
    run([sys.executable, str(GENERATOR), str(rows), str(path)])
    return path


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and its workers (its own process group), forcefully after 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_ready(
    ready: Callable[[], str | None], process: subprocess.Popen[bytes], log: Path
) -> None:
    """Wait until `ready()` finds nothing wrong; BenchError with the log if it dies or hangs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{process.args!r} exited ({process.returncode}):\n{log.read_text()}")
        problem = ready()
        if problem is None:
            return
        time.sleep(0.2)
    raise BenchError(f"{process.args!r} not ready in 60 s ({problem}):\n{log.read_text()}")


@contextlib.contextmanager
def started(
    cmd: Sequence[str],
    log: Path,
    env: dict[str, str],
    cwd: Path,
    ready: Callable[[], str | None],
) -> Iterator[None]:
    """A server process, output to `log`, once `ready()`; stopped with its children after."""
    with log.open("wb") as out:
        # Its own session: Ctrl-C reaches us only, and we stop the server and its workers.
        process = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(ready, process, log)
        yield
    finally:
        stop(process)


def healthy(base: str) -> str | None:
    """None when our server at `base` answers /healthz with 200, else what it answered."""
    try:
        response = httpx.get(f"{base}/healthz", timeout=2)
    except httpx.HTTPError as exc:
        return repr(exc)
    return None if response.status_code == 200 else f"{response.status_code} {response.text}"


@contextlib.contextmanager
def server(log: Path, **env: str) -> Iterator[str]:
    """`trends serve` on a free port with `env`, output to `log`; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "trends"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(SERVER_WORKERS)]
    with started(cmd, log, app_env(**env), ROOT, lambda: healthy(base)):
        yield base


def warnings_in(log: Path) -> list[str]:
    """The server's warnings and errors: what may explain odd figures."""
    levels = ("WARNING", "ERROR", "CRITICAL")
    return [
        line for line in log.read_text(errors="replace").splitlines() if line.startswith(levels)
    ]


def fetch(base: str, workload: Workload) -> list[httpx.Response]:
    """Each request of `workload` once; BenchError unless all succeeded without GraphQL errors."""
    url = f"{base}{workload.path}"
    bodies = workload.bodies()
    with httpx.Client(timeout=60) as client:  # one TLS context: each costs milliseconds
        if not bodies:
            responses = [client.get(url)]
        else:
            responses = [
                client.post(url, content=body, headers=workload.headers) for body in bodies
            ]
    for response in responses:
        if response.status_code != 200 or "errors" in response.json():
            status, text = response.status_code, response.text[:500]
            raise BenchError(f"{workload.name} answered {status}: {text}")
    return responses


def workloads(trend_id: str) -> list[Workload]:
    """L0 to L4; `trend_id` is the trend L3 asks for."""
    one = f'{{ trend(id: "{trend_id}") {{ {FIELDS} }} }}'
    return [
        Workload("L0", "fixed JSON, L1's size (GET /bench/fixed)", "/bench/fixed"),
        Workload("L1", f"all {HTTP_ROWS} trends, 13 fields", "/graphql", L1_QUERY),
        Workload("L2", 'megatrend "AI", 13 fields', "/graphql", L2_QUERY),
        Workload("L3", "one trend by id, 13 fields", "/graphql", one),
        Workload("L4", 'macrotrendReadiness "AI"', "/graphql", L4_QUERY),
    ]


def page_loads(first_megatrend: str) -> list[Workload]:
    """W5: the dashboard's page loads (bench/pageload.py), each request in turn."""
    try:
        loads = pageload.page_loads(first_megatrend)
    except pageload.PageChanged as exc:
        raise BenchError(str(exc)) from exc
    return [
        Workload(
            "W5" if url == "/" else "W5a",
            f"dashboard `{url}`, {len(payloads)} request{'s' if len(payloads) > 1 else ''}",
            "/graphql",
            payloads=payloads,
            headers=pageload.HEADERS,
        )
        for url, payloads in loads.items()
    ]


@dataclass
class Probe:
    """What the first server tells the rest of the benchmark."""

    l1_bytes: int
    trend_id: str
    ai_rows: int
    first_megatrend: str
    answers: dict[str, dict[str, Any]]  # the data of L1 to L4, uncached


def probe(work: Path) -> Probe:
    """L1 to L4's answers, L1's size, the first trend and megatrend, from an uncached server."""
    with server(work / "server-probe.log", CACHE_TTL="0") as base:
        first = fetch(base, workloads("")[1])[0]
        nodes = first.json()["data"]["trends"]["nodes"]
        if len(nodes) != HTTP_ROWS:
            raise BenchError(f"L1 returned {len(nodes)} trends, expected {HTTP_ROWS}")
        answers = {w.name: fetch(base, w)[0].json()["data"] for w in workloads(nodes[0]["id"])[1:]}
        listed = fetch(base, page_loads("")[0])[0].json()["data"]["megatrends"]
    return Probe(
        l1_bytes=len(first.content),
        trend_id=nodes[0]["id"],
        ai_rows=len(answers["L2"]["trends"]["nodes"]),
        first_megatrend=listed[0]["name"],
        answers=answers,
    )


def lua_script(workload: Workload, work: Path) -> Path:
    """wrk's script for `workload`: its request(s), and a `done` that prints one JSON line."""
    bodies = workload.bodies()
    lines = [f'wrk.method = "{"POST" if bodies else "GET"}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in workload.headers.items() if bodies]
    if len(bodies) == 1:
        lines.append(f"wrk.body = [==[{bodies[0].decode()}]==]")
    elif bodies:  # a page load: its requests in turn (each thread's connections share them)
        lines.append("local bodies = {")
        lines += [f"  [==[{body.decode()}]==]," for body in bodies]
        lines += [
            "}",
            "local requests, next_one = {}, 0",
            "init = function(args)",
            "  for i, body in ipairs(bodies) do requests[i] = wrk.format(nil, nil, nil, body) end",
            "end",
            "request = function()",
            "  next_one = next_one % #requests + 1",
            "  return requests[next_one]",
            "end",
        ]
    path = work / f"{workload.name}.lua"
    path.write_text("\n".join(lines) + "\n" + LUA_DONE)
    return path


def wrk(base: str, workload: Workload, seconds: int, work: Path) -> dict[str, float]:
    """One wrk run; the figures its `done` function printed."""
    script = lua_script(workload, work)
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s"]
    out = run([*cmd, "-s", str(script), f"{base}{workload.path}"])
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise BenchError(f"wrk printed no BENCH line:\n{out}")
    return dict(json.loads(line.removeprefix("BENCH ")))


def measure(base: str, system: System, workload: Workload, round_: int, work: Path) -> HttpResult:
    """Warm up, check one answer of each request, then measure `workload` for SECONDS."""
    wrk(base, workload, WARMUP_SECONDS, work)
    responses = fetch(base, workload)
    figures = wrk(base, workload, SECONDS, work)
    seconds = figures["duration_us"] / 1e6
    errors = {k: int(figures[k]) for k in ("connect", "read", "write", "status", "timeout")}
    rate = figures["requests"] / seconds
    per_load = len(responses)
    return HttpResult(
        workload=workload.name,
        label=workload.label,
        cache=system.cache,
        round=round_,
        requests=int(figures["requests"]),
        seconds=round(seconds, 2),
        requests_per_s=round(rate, 1),
        p50_ms=round(figures["p50_us"] / 1000, 2),
        p99_ms=round(figures["p99_us"] / 1000, 2),
        response_bytes=sum(len(r.content) for r in responses),
        errors=errors,
        cache_header=responses[-1].headers.get("x-trends-cache"),
        system=system.key,
        requests_per_load=per_load,
        page_loads_per_s=round(rate / per_load, 1) if workload.payloads else None,
    )


@contextlib.contextmanager
def ours(log: Path, cache: str, l1_bytes: int) -> Iterator[str]:
    """Our server with caching on or off, an empty cache, and L0's route."""
    flush_redis()
    ttl = str(cache_ttl_on() if cache == "on" else 0)
    route = {"BENCH_ROUTE": "1", "BENCH_BODY_BYTES": str(l1_bytes)}
    with server(log, CACHE_TTL=ttl, **route) as base:
        yield base


def our_systems(found: Probe) -> list[System]:
    """Ours with caching on and off, on L0 to L4 and the dashboard's page loads (W5)."""
    measured = [*workloads(found.trend_id), *page_loads(found.first_megatrend)]
    return [
        System(
            key="ours",
            cache=cache,
            serve=functools.partial(ours, cache=cache, l1_bytes=found.l1_bytes),
            workloads=measured,
        )
        for cache in ("on", "off")
    ]


def bench_http(work: Path) -> tuple[list[HttpResult], dict[str, Any]]:
    """Each system alone on its workloads, ROUNDS times in alternating order, restarted each time.

    Ours runs with caching on and off (every server starts with an empty cache); with PEERS, the
    peers whose answers are the same as ours run too.
    """
    print(f"HTTP: {HTTP_ROWS} trends, wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s", flush=True)
    reset_database()
    flush_redis()
    print(run([str(BIN / "trends"), "import", str(generate(HTTP_ROWS, work))]).strip())
    found = probe(work)
    systems = our_systems(found)
    peer_data: dict[str, Any] = {}
    if PEERS:
        import peers  # it imports from this module

        measured, peer_data = peers.checked_peers(found, work)
        systems += measured
    results: list[HttpResult] = []
    warnings: dict[str, list[str]] = {"on": [], "off": []}
    for round_ in range(1, ROUNDS + 1):
        for system in systems if round_ % 2 else systems[::-1]:
            log = work / f"server-{system.key}-{system.cache}-{round_}.log"
            with system.serve(log) as base:
                ceiling = 0.0
                for workload in system.workloads:  # ours: L0 first, the others' ceiling
                    result = measure(base, system, workload, round_, work)
                    if system.key == "ours":
                        ceiling = ceiling or result.requests_per_s
                        result.ratio_to_l0 = round(result.requests_per_s / ceiling, 3)
                    print(f"  {http_row(result)}", flush=True)
                    results.append(result)
            if system.key == "ours":
                warnings[system.cache] += warnings_in(log)
    for cache, lines in warnings.items():
        print(f"  server log, cache {cache}: {len(lines)} warnings or errors", flush=True)
        for line in lines[:5]:
            print(f"    {line}")
    data = {
        "rows": HTTP_ROWS,
        "ai_rows": found.ai_rows,
        "l1_bytes": found.l1_bytes,
        "trend_id": found.trend_id,
        "rounds": ROUNDS,
        "page_load_megatrend": found.first_megatrend,
        "server_warnings": warnings,
        **({"peers": peer_data} if PEERS else {}),
    }
    return results, data


def trends_import(case: str, path: Path, rows: int, work: Path) -> ImportResult:
    """`trends import FILE` under /usr/bin/time, with the figures it prints."""
    result = timed([str(BIN / "trends"), "import", str(path)], work)
    took = re.search(r"took ([\d.]+) s \(([\d,]+) rows/s\)", result.stdout)
    counts = re.search(r"(\d+) created, (\d+) duplicates skipped", result.stdout)
    if counts is None:
        raise BenchError(f"unexpected output of trends import:\n{result.stdout}")
    return ImportResult(
        command="trends import",
        case=case,
        rows=rows,
        wall_s=round(result.wall_s, 3),
        rows_per_s=float(took.group(2).replace(",", "")) if took else None,
        in_process_s=float(took.group(1)) if took else None,
        peak_rss_mib=round(result.peak_rss_mib, 1),
        created=int(counts.group(1)),
        skipped=int(counts.group(2)),
    )


def psql_copy(path: Path, rows: int, work: Path) -> ImportResult:
    """`psql \\copy` of `path` into a scratch table typed as the file's columns, with one index
    (an identity primary key), as the issue's like-for-like comparison asks."""
    url = libpq_url(bench_url())
    columns = ", ".join(
        f"{name} {kind}"
        for name, kind in (
            ("megatrend", "text NOT NULL"),
            ("macrotrend", "text NOT NULL"),
            ("challenges", "text"),
            ("publications", "integer"),
            ("patents", "integer"),
            ("readiness", "text"),
            ("impact", "text NOT NULL"),
            ("steepl", "text NOT NULL"),
            ("industries", "text"),
            ("use_cases", "text"),
        )
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy "
            f"(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {columns})"
        )
    names = "megatrend, macrotrend, challenges, publications, patents, readiness, impact, steepl"
    target = f"bench_copy ({names}, industries, use_cases)"
    copy = f"\\copy {target} FROM '{path}' WITH (FORMAT csv, DELIMITER ';', HEADER true)"
    result = timed(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", copy], work)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM bench_copy").fetchone()
        conn.execute("DROP TABLE bench_copy")
    if row is None or row[0] != rows:
        raise BenchError(f"psql \\copy loaded {row} rows, expected {rows}")
    return ImportResult(
        command="psql \\copy",
        case=f"{rows:,} rows",
        rows=rows,
        wall_s=round(result.wall_s, 3),
        rows_per_s=round(rows / result.wall_s),
        in_process_s=None,
        peak_rss_mib=round(result.peak_rss_mib, 1),
        created=rows,
        skipped=None,
    )


def bench_import(rows: int, work: Path) -> list[ImportResult]:
    """New rows, re-imports (changed bytes: parsed; same bytes: not read) and psql \\copy."""
    print(f"import: {rows:,} rows", flush=True)
    path = generate(rows, work)
    # Same rows, other bytes: the importer skips blank lines, its sha256 check does not.
    changed = path.with_name(f"{path.stem}_blank_line.csv")
    changed.write_bytes(path.read_bytes() + b"\r\n")
    reset_database()
    results = [
        trends_import(f"{rows:,} new rows", path, rows, work),
        trends_import("same rows, a blank line added (all skipped)", changed, rows, work),
        trends_import("same file again (not read again)", path, rows, work),
        psql_copy(path, rows, work),
    ]
    if results[0].created != rows or results[1].skipped != rows:
        raise BenchError(f"expected {rows} rows created, then skipped: {results[:2]}")
    for r in results:
        r.wall_vs_copy = round(r.wall_s / results[-1].wall_s, 1)
        print(f"  {import_row(r)}", flush=True)
    changed.unlink()
    path.unlink()
    return results


def http_row(r: HttpResult) -> str:
    """One Markdown table row of an HTTP result."""
    errors = sum(r.errors.values())
    cells = [
        r.system,
        f"{r.workload} {r.label}",
        f"{r.cache} ({r.round})",
        f"{r.requests_per_s:,.0f}",
        f"{r.p50_ms:.1f}",
        f"{r.p99_ms:.1f}",
        f"{r.response_bytes:,}",
        "" if r.ratio_to_l0 is None else f"{r.ratio_to_l0:.3f}",
    ]
    return "| " + " | ".join(cells) + " |" + (f" {errors} errors" if errors else "")


def import_row(r: ImportResult) -> str:
    """One Markdown table row of an import result."""
    cells = [
        f"`{r.command}`, {r.case}",
        f"{r.wall_s:.2f} s",
        "" if r.rows_per_s is None else f"{r.rows_per_s:,.0f}",
        f"{r.peak_rss_mib:.0f} MiB",
        "" if r.wall_vs_copy is None else f"{r.wall_vs_copy:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def page_load_row(r: HttpResult) -> str:
    """One Markdown table row of a page load (W5)."""
    cells = [
        f"{r.workload} {r.label}",
        f"{r.cache} ({r.round})",
        f"{r.page_loads_per_s:,.0f}",
        f"{r.requests_per_s:,.0f}",
        f"{r.p50_ms:.1f}",
        f"{r.p99_ms:.1f}",
        f"{r.response_bytes:,}",
    ]
    return "| " + " | ".join(cells) + " |"


def tables(http: list[HttpResult], imports: list[ImportResult], comparison: str) -> str:
    """The Markdown tables of all results."""
    lines = [
        "| system | workload | cache (round) | requests/s | p50 ms | p99 ms | response bytes"
        " | ÷ L0 |",
        "|---|---|---|--:|--:|--:|--:|--:|",
        *(http_row(r) for r in http),
        "",
        "| page load | cache (round) | page loads/s | requests/s | p50 ms | p99 ms | bytes |",
        "|---|---|--:|--:|--:|--:|--:|",
        *(page_load_row(r) for r in http if r.page_loads_per_s is not None),
    ]
    if comparison:
        lines += ["", comparison]
    if imports:
        lines += [
            "",
            "| import | wall time | rows/s | peak RSS | time ÷ `\\copy`'s |",
            "|---|--:|--:|--:|--:|",
            *(import_row(r) for r in imports),
        ]
    return "\n".join(lines)


def git(*args: str) -> str | None:
    """Output of a git command in the project, None when git cannot answer."""
    try:
        return run(["git", *args], env=dict(os.environ)).strip()
    except (BenchError, OSError):
        return None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    with psycopg.connect(libpq_url(bench_url().set(database="postgres"))) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else None,
        "python": sys.version.split()[0],
        "postgresql": row[0] if row else None,
        "wrk": wrk_version(),
    }


def wrk_version() -> str:
    """wrk's version line (it prints it with its usage, exiting 1)."""
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip()


def write_results(
    http: list[HttpResult],
    http_data: dict[str, Any],
    imports: list[ImportResult],
    comparison: list[dict[str, Any]] | None,
) -> None:
    """bench/results.json: every figure, the set-up, the machine, the date and the commit."""
    status = git("status", "--porcelain")
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "machine": machine(),
        "setup": {
            "server": f"trends serve --workers {SERVER_WORKERS}",
            "wrk": {"threads": THREADS, "connections": CONNECTIONS, "seconds": SECONDS},
            "warmup_seconds": WARMUP_SECONDS,
            "cache_ttl_on": cache_ttl_on(),
            "database": str(bench_url()),
            "redis": REDIS_URL,
            **http_data,
        },
        "http": [asdict(r) for r in http],
        "import": [asdict(r) for r in imports],
        **({} if comparison is None else {"comparison": comparison}),
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def main() -> int:
    """Run everything, clean up whatever happens, print the tables and write the results."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        check_tools()
        with tempfile.TemporaryDirectory(prefix="trends-bench-") as tmp:
            work = Path(tmp)
            try:
                http, http_data = bench_http(work)
                imports = [r for rows in IMPORT_ROWS for r in bench_import(rows, work)]
                compared, comparison = None, ""
                if PEERS:
                    import peers  # it imports from this module

                    compared = peers.comparison(http)
                    comparison = peers.comparison_table(compared)
                write_results(http, http_data, imports, compared)
                if SCALE:
                    import scale  # it imports from this module

                    scale.bench_scale(work)
            finally:
                drop_database()
                flush_redis()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, database dropped", file=sys.stderr)
        return 130
    print(f"\n{tables(http, imports, comparison)}\n\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    # Run as the module `run`, the one that peers.py imports from, not as a second copy.
    sys.exit(importlib.import_module("run").main())
