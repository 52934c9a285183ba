"""`make bench SCALE=1`: every documented query on 1,000,000 rows, uncached, at 8 connections.

Run alone with `.venv/bin/python bench/scale.py` (the same environment variables).

The generator's rows go once into a database of their own (BENCH_DATABASE_URL's name with
`_scale`), kept between runs: the first SCALE_ROWS - SCALE_ROWS/100 in one import, then the
whole file, so that the last hundredth carries a later `updatedAt`. `trends serve` with
CACHE_TTL=0 then answers each query under `wrk -c8 --latency`; the statements each query sends
are EXPLAINed (ANALYZE) in this process. Prints the table and writes it to bench/results.json
under "scale".
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from psycopg import sql
from run import (
    BIN,
    LUA_DONE,
    REDIS_URL,
    RESULTS,
    ROOT,
    SERVER_WORKERS,
    WARMUP_SECONDS,
    BenchError,
    admin_connection,
    app_env,
    bench_url,
    check_tools,
    generate,
    git,
    libpq_url,
    machine,
    server,
)
from sqlalchemy.engine import URL

from trends_gql.core import plans
from trends_gql.core.pagination import encode_id
from trends_gql.core.settings import Settings
from trends_gql.web.app import create_app

ROWS = int(os.environ.get("SCALE_ROWS", "1000000"))
LATE_ROWS = ROWS // 100
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS, THREADS = 8, 2
P50_MS, P99_MS = 20.0, 100.0
JSON = {"content-type": "application/json"}
PAGE_SIZE, DEEP_PAGE = 100, 1000  # the walk's page size, and the deep page measured

NODES = (
    "id megatrend macrotrend technologyReadinessLevel impactStrength steepl"
    " totalCountOfPublications totalCountOfPatents updatedAt"
)
CONNECTION = f"totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {NODES} }}"
FACETS = (
    "total technologyReadinessLevel { value count } impactStrength { value count }"
    " steepl { value count } megatrend { value count }"
)
BY_PUBLICATIONS = "orderBy: [{field: PUBLICATIONS, direction: DESC}]"
# The README's filters, and one for each field of TrendFilter.
FILTERS = {
    "megatrend": 'megatrend: "AI"',
    "macrotrend": 'macrotrend: "edge ai"',
    "technologyReadinessLevel": "technologyReadinessLevel: DEPLOY",
    "impactStrength": "impactStrength: HIGH",
    "steepl": "steepl: T",
    "megatrendIn": 'megatrendIn: ["AI", "Mobility"]',
    "technologyReadinessLevelIn": "technologyReadinessLevelIn: [PILOT, DEPLOY]",
    "impactStrengthIn": "impactStrengthIn: [LOW, HIGH]",
    "steeplIn": "steeplIn: [T, E]",
    "publicationsMin": "publicationsMin: 200000",
    "publicationsMax": "publicationsMax: 1000",
    "patentsMin": "patentsMin: 39000",
    "patentsMax": "patentsMax: 100",
    "updatedSince": "updatedSince: $SINCE",
    "search (common)": 'search: "quantum"',
    "search (rare)": 'search: "batch 12345)"',
    "README: megatrend, TRL, search": (
        'megatrend: "ai", technologyReadinessLevel: DEPLOY, search: "energy"'
    ),
    "README: lists, bound, updatedSince": (
        'megatrendIn: ["AI", "Mobility"], steeplIn: [T, E], publicationsMin: 10000,'
        " updatedSince: $SINCE"
    ),
}


@dataclass
class ScaleResult:
    """One query's latencies under wrk, and the plans of the statements it sends."""

    name: str
    query: str
    requests_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    errors: dict[str, int]
    met: bool
    error: str | None = None  # the answer's first error, when it has one (then no wrk run)
    sql_ms: float | None = None  # the EXPLAIN ANALYZE time of its statements, summed
    plans: list[str] = field(default_factory=list)
    unbounded_scans: list[str] = field(default_factory=list)


def scale_url() -> URL:
    """The scale set's database: the benchmark's name with `_scale`, kept between runs."""
    url = bench_url()
    return url.set(database=f"{url.database}_scale")


def env() -> dict[str, str]:
    """What every process of the scale set runs with: its database, no cache."""
    return {"DATABASE_URL": scale_url().render_as_string(hide_password=False), "CACHE_TTL": "0"}


def trends(command: str, *args: str) -> str:
    """Run a `trends` command on the scale database; its output."""
    done = subprocess.run(
        [str(BIN / "trends"), command, *args],
        cwd=ROOT,
        env=app_env(**env()),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(
            f"trends {command} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def count_rows() -> int | None:
    """The rows of the scale database's trend table; None when it has no such database."""
    try:
        with psycopg.connect(libpq_url(scale_url())) as conn:
            row = conn.execute("SELECT count(*) FROM trend").fetchone()
    except psycopg.OperationalError:
        return None
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def load(work: Path) -> None:
    """ROWS generated rows in the scale database, imported unless it holds them already."""
    name = sql.Identifier(scale_url().database or "")
    if count_rows() is None:
        with admin_connection() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    trends("migrate")
    rows = count_rows()
    if rows == ROWS:
        print(f"scale: reusing the {ROWS:,} rows of {scale_url().database}", flush=True)
        return
    if rows:
        with admin_connection() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        trends("migrate")
    print(f"scale: importing {ROWS:,} generated rows (once)", flush=True)
    path = generate(ROWS, work)
    early = path.with_name("early.csv")
    with path.open("rb") as src, early.open("wb") as out:
        for number, line in enumerate(src):
            if number > ROWS - LATE_ROWS:  # the header, then the early rows
                break
            out.write(line)
    for file in (early, path):
        started = time.perf_counter()
        trends("import", str(file))
        print(f"  {file.name}: {time.perf_counter() - started:.1f} s", flush=True)
        time.sleep(1)  # the late rows' updatedAt is a second later at least
    with psycopg.connect(libpq_url(scale_url()), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) trend")
    if count_rows() != ROWS:
        raise BenchError(f"the scale database holds {count_rows()} rows, expected {ROWS}")


def settings() -> Settings:
    """The settings of the in-process app that walks cursors and records statements."""
    return Settings(
        database_url=env()["DATABASE_URL"],
        redis_url=REDIS_URL,
        cache_ttl=0,
        rate_limit_anon=0,
        rate_limit_user=0,
        db_statement_timeout_ms=0,  # the plan of a query that runs long is wanted too
        log_level="WARNING",
    )


def post(base: str, query: str) -> dict[str, Any]:
    """The data of one GraphQL query; BenchError on any error."""
    body = json.dumps({"query": query})
    response = httpx.post(f"{base}/graphql", content=body, headers=JSON, timeout=600)
    if response.status_code != 200 or "errors" in response.json():
        raise BenchError(f"answered {response.status_code}: {response.text[:300]}")
    return dict(response.json()["data"])


def deep_cursor(base: str, order: str) -> str:
    """The `after` cursor of page DEEP_PAGE of PAGE_SIZE rows, walked to 500 rows at a time."""
    left, after = (DEEP_PAGE - 1) * PAGE_SIZE, "null"
    while left:
        first = min(left, 500)
        query = (
            f"{{ trends(first: {first}, after: {after}{order}) {{ pageInfo {{ endCursor }} }} }}"
        )
        after = json.dumps(post(base, query)["trends"]["pageInfo"]["endCursor"])
        left -= first
    return after


def queries(base: str) -> dict[str, str]:
    """Each measured query by name: a filter, a page of a walk, an aggregate."""
    with psycopg.connect(libpq_url(scale_url())) as conn:
        row = conn.execute("SELECT max(updated_at) FROM trend").fetchone()
    since = json.dumps(row[0].astimezone(UTC).isoformat() if row and row[0] else None)
    found = {"trends": f"{{ trends {{ {CONNECTION} }} }}"}
    for name, condition in FILTERS.items():
        condition = condition.replace("$SINCE", since)
        found[f"trends, {name}"] = f"{{ trends(filter: {{{condition}}}) {{ {CONNECTION} }} }}"
    for label, order in (("by id", ""), ("by publications desc", f", {BY_PUBLICATIONS}")):
        for page, after in ((1, "null"), (DEEP_PAGE, deep_cursor(base, order))):
            args = f"first: {PAGE_SIZE}, after: {after}{order}"
            found[f"walk {label}, page {page:,}"] = f"{{ trends({args}) {{ {CONNECTION} }} }}"
    dashboard = 'filter: {megatrend: "AI"}, orderBy: [{field: MACROTREND}], first: 100'
    found["dashboard page (AI by macrotrend)"] = f"{{ trends({dashboard}) {{ {CONNECTION} }} }}"
    found["trend by id"] = f'{{ trend(id: "{encode_id(ROWS // 2)}") {{ {NODES} }} }}'
    found["trendFacets"] = f"{{ trendFacets {{ {FACETS} }} }}"
    found["trendFacets, megatrend"] = (
        f'{{ trendFacets(filter: {{megatrend: "AI"}}) {{ {FACETS} }} }}'
    )
    found["trendFacets, search"] = (
        f'{{ trendFacets(filter: {{search: "quantum"}}) {{ {FACETS} }} }}'
    )
    found["megatrends"] = "{ megatrends { name trendCount macrotrendCount } }"
    readiness = "macrotrend trendCount ratedCount averageTrlScore"
    found["macrotrendReadiness"] = f'{{ macrotrendReadiness(megatrend: "AI") {{ {readiness} }} }}'
    return found


@contextmanager
def in_process() -> Iterator[tuple[str, Any]]:
    """The app served in this process (its base URL), and its engine, whose statements are
    recorded."""
    app = create_app(settings())
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise BenchError("the in-process app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}", app.state.db.engine
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def explained(base: str, engine: Any, query: str) -> list[plans.Plan]:
    """The plans of the statements `query` sends (after one run to warm the caches)."""
    with plans.recorded(engine) as sent:
        post(base, query)
    with engine.connect() as conn:
        return [plans.explain(conn, s) for s in sent if "trend" in s.sql]


def wrk(base: str, script: Path, seconds: int) -> dict[str, float]:
    """One wrk run with `script`; the figures its `done` function printed."""
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    done = subprocess.run(
        [*cmd, "--timeout", "10s", "-s", str(script), f"{base}/graphql"],
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return dict(json.loads(line.removeprefix("BENCH ")))


def latency(base: str, name: str, query: str, work: Path) -> ScaleResult:
    """wrk at CONNECTIONS connections on one query, after a check of its answer and a warm-up."""
    body = json.dumps({"query": query})
    response = httpx.post(f"{base}/graphql", content=body, headers=JSON, timeout=30)
    if response.status_code != 200 or "errors" in response.json():
        error = response.json().get("errors", [{}])[0].get("extensions", {}).get("code")
        return ScaleResult(name, query, None, None, None, {}, False, error or response.text[:200])
    script = work / "scale.lua"
    request = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    script.write_text(f"{request}wrk.body = [==[{body}]==]\n{LUA_DONE}")
    wrk(base, script, WARMUP_SECONDS)
    figures = wrk(base, script, SECONDS)
    errors = {k: int(figures[k]) for k in ("connect", "read", "write", "status", "timeout")}
    if not figures["requests"]:
        return ScaleResult(name, query, None, None, None, errors, False, "no answer in the run")
    p50, p99 = figures["p50_us"] / 1000, figures["p99_us"] / 1000
    return ScaleResult(
        name=name,
        query=query,
        requests_per_s=round(figures["requests"] / (figures["duration_us"] / 1e6), 1),
        p50_ms=round(p50, 2),
        p99_ms=round(p99, 2),
        errors=errors,
        met=p50 < P50_MS and p99 < P99_MS and not any(errors.values()),
    )


def row(r: ScaleResult) -> str:
    """One Markdown table row."""
    met = "yes" if r.met else "**no**"
    sql = "" if r.sql_ms is None else f"{r.sql_ms:.1f}"
    if r.p50_ms is None or r.p99_ms is None or r.requests_per_s is None:
        return f"| {r.name} | | | | {sql} | {met}: {r.error} |"
    errors = sum(r.errors.values())
    cells = [r.name, f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.requests_per_s:,.0f}", sql, met]
    return "| " + " | ".join(cells) + " |" + (f" {errors} errors" if errors else "")


def write(results: list[ScaleResult]) -> None:
    """Put the scale set into bench/results.json, keeping what else it holds."""
    try:
        previous = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        previous = {}
    status = git("status", "--porcelain")
    previous["scale"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "machine": machine(),
        "setup": {
            "rows": ROWS,
            "late_rows": LATE_ROWS,
            "server": f"trends serve --workers {SERVER_WORKERS}, CACHE_TTL=0",
            "wrk": {"threads": THREADS, "connections": CONNECTIONS, "seconds": SECONDS},
            "targets_ms": {"p50": P50_MS, "p99": P99_MS},
            "database": str(scale_url()),
        },
        "results": [asdict(r) for r in results],
    }
    RESULTS.write_text(json.dumps(previous, indent=2) + "\n")


def measure(
    base: str, name: str, query: str, plans_of: list[plans.Plan], work: Path
) -> ScaleResult:
    """One query's latencies, with the summaries of its statements' plans."""
    result = latency(base, name, query, work)
    result.plans = [p.summary() for p in plans_of]
    # A scan of the summary is bounded by its size; one of trend is not.
    result.unbounded_scans = [t for p in plans_of for t in p.unbounded if t == "trend"]
    result.sql_ms = round(sum(p.execution_ms for p in plans_of), 2)
    return result


def bench_scale(work: Path) -> list[ScaleResult]:
    """Load once, explain and measure every query; print the table and the plans, write them."""
    load(work)
    with in_process() as (local, engine):
        measured = queries(local)
        explains = {name: explained(local, engine, q) for name, q in measured.items()}
    print(f"scale: {ROWS:,} rows, wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s", flush=True)
    print("| query | p50 ms | p99 ms | requests/s | SQL ms | target met |")
    print("|---|--:|--:|--:|--:|---|")
    results = []
    with server(work / "server-scale.log", **env()) as base:
        for name, query in measured.items():
            results.append(measure(base, name, query, explains[name], work))
            print(row(results[-1]), flush=True)
    print("\nplans (EXPLAIN ANALYZE of each statement):")
    for r in results:
        flag = f"  SEQ SCAN OF TREND: {len(r.unbounded_scans)}" if r.unbounded_scans else ""
        print(f"- {r.name}{flag}")
        for summary in r.plans:
            print(f"    {summary}")
    write(results)
    met = sum(r.met for r in results)
    print(f"\n{met} of {len(results)} queries met p50 < {P50_MS:.0f} ms and p99 < {P99_MS:.0f} ms")
    print(f'written to {RESULTS.relative_to(ROOT)} ("scale")')
    return results


def main() -> int:
    """The scale set alone (`make bench SCALE=1` runs it after the rest)."""
    try:
        check_tools()
        with tempfile.TemporaryDirectory(prefix="trends-scale-") as tmp:
            bench_scale(Path(tmp))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
