"""This working tree's server next to another revision's, side by side: `python bench/compare.py`.

BENCH_BASE (default HEAD) is written out with `git archive` under var/bench-compare/<commit>/
and served by the same virtualenv, its package first on PYTHONPATH. Both serve the same rows of
the benchmark's database (bench/run.py's settings: BENCH_DATABASE_URL, BENCH_REDIS_URL,
BENCH_SECONDS, BENCH_ROUNDS), uncached (BENCH_CACHE=1: cached), answer L1 to L5 alike (checked
first), and are measured in turn, in alternating order each round. Beside requests/s it prints
the CPU time a request costs the server's processes and PostgreSQL's backends together, which
the load of a shared machine changes less than the rate.
"""

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from run import (
    BIN,
    FIELDS,
    HTTP_ROWS,
    ROOT,
    SECONDS,
    WARMUP_SECONDS,
    BenchError,
    Workload,
    admin_connection,
    bench_url,
    cache_ttl_on,
    check_tools,
    drop_database,
    fetch,
    flush_redis,
    generate,
    git,
    probe,
    reset_database,
    run,
    server,
    workloads,
    wrk,
)

from trends_gql.schema.limits import DOCUMENT_CACHE_SIZE

BASE = os.environ.get("BENCH_BASE", "HEAD")
CACHE = os.environ.get("BENCH_CACHE", "") not in ("", "0")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
TICKS = os.sysconf("SC_CLK_TCK")
# (workload, server) -> (requests/s, CPU ms a request) of each round
Figures = dict[tuple[str, str], list[tuple[float, float]]]


def checkout(ref: str) -> Path:
    """The package of `ref`, written out once under var/bench-compare/<commit>/."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    if commit is None:
        raise BenchError(f"BENCH_BASE={ref} names no commit")
    folder = ROOT / "var" / "bench-compare" / commit
    if not (folder / "trends_gql").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "trends_gql"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_seconds(server_group: int) -> float:
    """CPU time so far of a server's processes and of the database's backends."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == server_group:
                    pids.append(int(entry.name))
    with admin_connection() as conn:
        backends = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (bench_url().database,)
        ).fetchall()
    return sum(_cpu_seconds(pid) for pid in pids + [row[0] for row in backends])


def group_of(base: str) -> int:
    """The process group of the server serving `base` (its own session: bench/run.py)."""
    wanted = f"--port\0{base.rsplit(':', 1)[1]}\0".encode()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and wanted in (entry / "cmdline").read_bytes():
                return os.getpgid(int(entry.name))
    raise BenchError(f"no server process found for {base}")


@contextlib.contextmanager
def served(name: str, work: Path, base_tree: Path | None) -> Iterator[str]:
    """One of the two servers, with caching as asked and an empty cache."""
    flush_redis()
    env = {"CACHE_TTL": str(cache_ttl_on() if CACHE else 0)}
    if base_tree is not None:
        env["PYTHONPATH"] = str(base_tree)
    with server(work / f"server-{name}.log", **env) as url:
        yield url


def main() -> int:
    """Measure both, print one table; drop the database whatever happens."""
    try:
        check_tools()
        base_tree = checkout(BASE)
        with tempfile.TemporaryDirectory(prefix="trends-compare-") as tmp:
            work = Path(tmp)
            try:
                compare(work, base_tree)
            finally:
                drop_database()
                flush_redis()
    except (BenchError, subprocess.CalledProcessError, psycopg.Error) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    return 0


WALK = (
    "query($first: Int, $after: String) "
    f"{{ trends(first: $first, after: $after) {{ nodes {{ {FIELDS} }} }} }}"
)


def walked_pages(work: Path) -> Workload:
    """L5: pages of a cursor walk, of 10 to 50 trends after each trend in turn, so that each
    request's variables are new to the server (more of them than it keeps prepared)."""
    with served("cursors", work, None) as url:
        first = fetch(
            url, Workload("cursors", "", "/graphql", "{ trends(first: 500) { edges { cursor } } }")
        )
    cursors = [e["cursor"] for e in first[0].json()["data"]["trends"]["edges"]]
    payloads = tuple(
        {"query": WALK, "variables": {"first": size, "after": cursor}}
        for size in range(10, 60, 10)
        for cursor in cursors
    )
    assert len(payloads) > 4 * DOCUMENT_CACHE_SIZE, "as many as the server keeps prepared"
    return Workload(
        "L5", "pages of a cursor walk, new variables each", "/graphql", payloads=payloads
    )


def compare(work: Path, base_tree: Path) -> None:
    """Both servers on L1 to L5, ROUNDS rounds in alternating order; prints the table."""
    reset_database()
    print(run([str(BIN / "trends"), "import", str(generate(HTTP_ROWS, work))]).strip())
    wanted = [*workloads(probe(work).trend_id)[1:], walked_pages(work)]
    names = {BASE: base_tree, "working tree": None}
    answers = []
    for name, tree in names.items():
        with served(name, work, tree) as url:
            answers.append([fetch(url, w)[0].content for w in wanted])
    if answers[0] != answers[1]:
        raise BenchError("the two revisions answer L1 to L5 differently")
    figures: Figures = {}
    for round_ in range(1, ROUNDS + 1):
        order = list(names.items()) if round_ % 2 else list(names.items())[::-1]
        for name, tree in order:
            with served(name, work, tree) as url:
                group = group_of(url)
                for workload in wanted:
                    wrk(url, workload, WARMUP_SECONDS, work)
                    used = cpu_seconds(group)
                    done = wrk(url, workload, SECONDS, work)
                    used = cpu_seconds(group) - used
                    rate = done["requests"] / (done["duration_us"] / 1e6)
                    per_request = used / max(done["requests"], 1) * 1000
                    figures.setdefault((workload.name, name), []).append((rate, per_request))
                    print(
                        f"  round {round_} {workload.name} {name}: {rate:,.0f} requests/s, "
                        f"{per_request:.2f} ms CPU a request",
                        flush=True,
                    )
    _table(wanted, list(names), figures)


def _table(
    wanted: list[Workload],
    names: list[str],
    figures: dict[tuple[str, str], list[tuple[float, float]]],
) -> None:
    cache = f"CACHE_TTL={cache_ttl_on() if CACHE else 0}"
    print(f"\nwrk -t2 -c32 -d{SECONDS}s, {ROUNDS} rounds, {cache}; ranges over the rounds\n")
    head = [f"{n} requests/s" for n in names] + ["ratio"] + [f"{n} CPU ms/request" for n in names]
    print("| workload | " + " | ".join(head) + " |")
    print("|---|" + "--:|" * len(head))
    for workload in wanted:
        rates = [[r for r, _ in figures[(workload.name, n)]] for n in names]
        cpus = [[c for _, c in figures[(workload.name, n)]] for n in names]
        cells = [f"{min(r):,.0f}\N{EN DASH}{max(r):,.0f}" for r in rates]
        cells.append(f"{sum(rates[1]) / sum(rates[0]):.2f}")
        cells += [f"{min(c):.2f}\N{EN DASH}{max(c):.2f}" for c in cpus]
        print(f"| {workload.label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
