"""`make bench`: GraphQL throughput under wrk and import speed, against PostgreSQL.

Creates its own database (BENCH_DATABASE_URL) and uses one Redis database (BENCH_REDIS_URL),
prints Markdown tables and writes bench/results.json.
"""

import contextlib
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
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
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
WARMUP_SECONDS = 3
CONNECTIONS, THREADS, SERVER_WORKERS = 32, 2, 2
HTTP_ROWS = 440
ROUNDS = {"on": 2, "off": 1}

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
    """One kind of request wrk repeats: a GET of `path`, or a POST of a GraphQL query."""

    name: str
    label: str
    path: str
    query: str | None = None

    def body(self) -> bytes | None:
        """The JSON body of the POST, None for a GET."""
        return None if self.query is None else json.dumps({"query": self.query}).encode()


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
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(bench_url().database)))
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


def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until /healthz answers 200; BenchError with the log if the server died or hung."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"the server did not answer /healthz within 30 s:\n{log.read_text()}")


@contextlib.contextmanager
def server(log: Path, **env: str) -> Iterator[str]:
    """`trends serve` on a free port with `env`, output to `log`; yields its base URL."""
    port = free_port()
    cmd = [str(BIN / "trends"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        # Its own session: Ctrl-C reaches us only, and we stop the server and its workers.
        process = subprocess.Popen(
            [*cmd, "--workers", str(SERVER_WORKERS)],
            cwd=ROOT,
            env=app_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, process, log)
        yield base
    finally:
        stop(process)


def warnings_in(log: Path) -> list[str]:
    """The server's warnings and errors: what may explain odd figures."""
    levels = ("WARNING", "ERROR", "CRITICAL")
    return [
        line for line in log.read_text(errors="replace").splitlines() if line.startswith(levels)
    ]


def fetch(base: str, workload: Workload) -> httpx.Response:
    """One request of `workload`; BenchError unless it succeeded without GraphQL errors."""
    url = f"{base}{workload.path}"
    body = workload.body()
    if body is None:
        response = httpx.get(url, timeout=30)
    else:
        headers = {"content-type": "application/json"}
        response = httpx.post(url, content=body, headers=headers, timeout=30)
    if response.status_code != 200 or "errors" in response.json():
        raise BenchError(f"{workload.name} answered {response.status_code}: {response.text[:500]}")
    return response


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


def probe(work: Path) -> tuple[int, str, int]:
    """Size of L1's answer, the first trend's id and L2's row count, from a first server."""
    l1 = Workload("L1", "", "/graphql", L1_QUERY)
    l2 = Workload("L2", "", "/graphql", L2_QUERY)
    with server(work / "server-probe.log", CACHE_TTL="0") as base:
        response = fetch(base, l1)
        nodes = response.json()["data"]["trends"]["nodes"]
        ai_rows = len(fetch(base, l2).json()["data"]["trends"]["nodes"])
    if len(nodes) != HTTP_ROWS:
        raise BenchError(f"L1 returned {len(nodes)} trends, expected {HTTP_ROWS}")
    return len(response.content), nodes[0]["id"], ai_rows


def lua_script(workload: Workload, work: Path) -> Path:
    """wrk's script for `workload`: the request, and a `done` that prints one JSON line."""
    lines = [f'wrk.method = "{"GET" if workload.query is None else "POST"}"']
    body = workload.body()
    if body is not None:
        lines += [
            'wrk.headers["Content-Type"] = "application/json"',
            f"wrk.body = [==[{body.decode()}]==]",
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


def measure(base: str, workload: Workload, cache: str, round_: int, work: Path) -> HttpResult:
    """Warm up, check one answer, then measure `workload` for SECONDS."""
    wrk(base, workload, WARMUP_SECONDS, work)
    response = fetch(base, workload)
    figures = wrk(base, workload, SECONDS, work)
    seconds = figures["duration_us"] / 1e6
    errors = {k: int(figures[k]) for k in ("connect", "read", "write", "status", "timeout")}
    return HttpResult(
        workload=workload.name,
        label=workload.label,
        cache=cache,
        round=round_,
        requests=int(figures["requests"]),
        seconds=round(seconds, 2),
        requests_per_s=round(figures["requests"] / seconds, 1),
        p50_ms=round(figures["p50_us"] / 1000, 2),
        p99_ms=round(figures["p99_us"] / 1000, 2),
        response_bytes=len(response.content),
        errors=errors,
        cache_header=response.headers.get("x-trends-cache"),
    )


def bench_http(work: Path) -> tuple[list[HttpResult], dict[str, Any]]:
    """L0 to L4 with caching on (twice) and off (once), a server restart between."""
    print(f"HTTP: {HTTP_ROWS} trends, wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s", flush=True)
    reset_database()
    flush_redis()
    print(run([str(BIN / "trends"), "import", str(generate(HTTP_ROWS, work))]).strip())
    body_bytes, trend_id, ai_rows = probe(work)
    results: list[HttpResult] = []
    warnings: dict[str, list[str]] = {}
    for cache, rounds in ROUNDS.items():
        flush_redis()  # every server starts with an empty cache
        ttl = str(cache_ttl_on() if cache == "on" else 0)
        route = {"BENCH_ROUTE": "1", "BENCH_BODY_BYTES": str(body_bytes)}
        log = work / f"server-cache-{cache}.log"
        with server(log, CACHE_TTL=ttl, **route) as base:
            for round_ in range(1, rounds + 1):
                ceiling = 0.0
                for workload in workloads(trend_id):  # L0 first: the others' ceiling
                    result = measure(base, workload, cache, round_, work)
                    ceiling = ceiling or result.requests_per_s
                    result.ratio_to_l0 = round(result.requests_per_s / ceiling, 3)
                    print(f"  {http_row(result)}", flush=True)
                    results.append(result)
        warnings[cache] = warnings_in(log)
        print(f"  server log, cache {cache}: {len(warnings[cache])} warnings or errors", flush=True)
        for line in warnings[cache][:5]:
            print(f"    {line}")
    data = {
        "rows": HTTP_ROWS,
        "ai_rows": ai_rows,
        "l1_bytes": body_bytes,
        "trend_id": trend_id,
        "server_warnings": warnings,
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
    """`psql \\copy` of `path` into a scratch table of text columns without indexes."""
    url = libpq_url(bench_url())
    columns = ", ".join(f"c{i} text" for i in range(10))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy ({columns})")
    copy = f"\\copy bench_copy FROM '{path}' WITH (FORMAT csv, DELIMITER ';', HEADER true)"
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
        f"{r.workload} {r.label}",
        f"{r.cache} ({r.round})" if r.cache == "on" else r.cache,
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


def tables(http: list[HttpResult], imports: list[ImportResult]) -> str:
    """The Markdown tables of all results."""
    lines = [
        "| workload | cache (round) | requests/s | p50 ms | p99 ms | response bytes | ÷ L0 |",
        "|---|---|--:|--:|--:|--:|--:|",
        *(http_row(r) for r in http),
    ]
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
    http: list[HttpResult], http_data: dict[str, Any], imports: list[ImportResult]
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
                write_results(http, http_data, imports)
            finally:
                drop_database()
                flush_redis()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, database dropped", file=sys.stderr)
        return 130
    print(f"\n{tables(http, imports)}\n\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
