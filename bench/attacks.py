"""`make bench-attacks`: how fast each attack of the security review is refused, side by side
with a normal query, and how a normal query fares while attacks arrive.

Uses the database and Redis of `make bench` (BENCH_DATABASE_URL, BENCH_REDIS_URL), with
BENCH_ATTACK_ROWS generated trends (default 200,000) and the cache off, so every read is cold.
"""

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from run import BIN, BenchError, flush_redis, generate, reset_database, run, server

ROWS = int(os.environ.get("BENCH_ATTACK_ROWS", "200000"))
TRIES = 5
FIELDS = (
    "id megatrend macrotrend challengesAndResearchGaps totalCountOfPublications"
    " totalCountOfPatents technologyReadinessLevel impactStrength steepl relevantIndustries"
    " realWorldApplicationAndUseCases uploadedAt updatedAt"
)
NORMAL = {"query": '{ trends(first: 10, filter: {megatrend: "AI"}) { totalCount nodes { id } } }'}
ORDERED = "query($o: [TrendOrder!], $a: String) { trends(orderBy: $o, after: $a) { totalCount } }"


def fan_out(levels: int) -> dict[str, Any]:
    """Fragments that spread the one before four times: 4**levels fields once expanded."""
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{i} on Query {{ {' '.join([f'...F{i - 1}'] * 4)} }}"
        for i in range(1, levels + 1)
    ]
    return {"query": " ".join(fragments) + f" {{ ...F{levels} }}"}


def batch_of_pages() -> list[dict[str, Any]]:
    """10 operations of 15 aliases of trends(first: 500) with every field."""
    aliases = " ".join(f"a{i}: trends(first: 500) {{ nodes {{ {FIELDS} }} }}" for i in range(15))
    return [{"query": f"{{ {aliases} }}"}] * 10


def outcome(response: httpx.Response) -> str:
    """The HTTP status and the first error's code (or "data")."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}"
    first = body[0] if isinstance(body, list) else body
    errors = first.get("errors") if isinstance(first, dict) else None
    code = errors[0].get("extensions", {}).get("code") if errors else "data"
    return f"{response.status_code} {code}"


def timed(send: Callable[[], httpx.Response]) -> tuple[float, str]:
    """Median seconds of TRIES sends, and the answer of the last."""
    times, answer = [], ""
    for _ in range(TRIES):
        started = time.perf_counter()
        answer = outcome(send())
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def upload_body(size: int) -> Any:
    """A multipart upload of `size` bytes, streamed in 64 KiB chunks."""
    boundary = b"bench"
    head = (
        b"--bench\r\ncontent-disposition: form-data; name=operations\r\n\r\n"
        b'{"query": "mutation($f: Upload!) { importTrends(file: $f) { id } }",'
        b' "variables": {"f": null}}\r\n'
        b'--bench\r\ncontent-disposition: form-data; name=map\r\n\r\n{"0": ["variables.f"]}\r\n'
        b"--bench\r\ncontent-disposition: form-data; name=0; filename=a.csv\r\n\r\n"
    )
    chunk = b"x" * 65536

    def chunks() -> Any:
        yield head
        for _ in range(size // len(chunk)):
            yield chunk
        yield b"\r\n--" + boundary + b"--\r\n"

    return chunks()


def while_attacked(base: str, attack: dict[str, Any], attackers: int) -> float:
    """Median seconds of the normal query while `attackers` threads send `attack` non-stop."""
    stop = threading.Event()

    def attacker() -> None:
        with httpx.Client(base_url=base, timeout=120) as own:
            while not stop.is_set():
                own.post("/graphql", json=attack)

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(attackers)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        with httpx.Client(base_url=base, timeout=120) as client:
            return timed(lambda: client.post("/graphql", json=NORMAL))[0]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)


def attacks(base: str) -> list[tuple[str, float, str]]:
    """(attack, median seconds, answer) of each attack, the normal query first."""
    rows = []
    with httpx.Client(base_url=base, timeout=120) as c:
        post = c.post
        rows.append(
            ("normal query (10 trends of AI, cold)", *timed(lambda: post("/graphql", json=NORMAL)))
        )
        for levels in (10, 30):
            doc = fan_out(levels)
            rows.append(
                (f"fragment fan-out, k={levels}", *timed(lambda d=doc: post("/graphql", json=d)))
            )
        huge = {"query": ORDERED, "variables": {"o": [{"field": "ID"}] * 60_000}}
        rows.append(("orderBy of 60,000 entries", *timed(lambda: post("/graphql", json=huge))))
        order = [{"field": "MEGATREND"}, {"field": "MACROTREND"}, {"field": "PATENTS"}]
        page = post(
            "/graphql",
            json={
                "query": ORDERED.replace("totalCount", "pageInfo { endCursor }"),
                "variables": {"o": order},
            },
        )
        cursor = page.json()["data"]["trends"]["pageInfo"]["endCursor"]
        long = {"query": ORDERED, "variables": {"o": order * 200, "a": cursor}}
        rows.append(
            ("orderBy of 600 entries and a cursor", *timed(lambda: post("/graphql", json=long)))
        )
        rows.append(
            (
                "batch of 10 x 15 aliases of trends(first: 500)",
                *timed(lambda: post("/graphql", json=batch_of_pages())),
            )
        )
        search = {"query": '{ trends(filter: {search: "zzqxv-nomatch"}) { totalCount } }'}
        rows.append(("search with no match, cold", *timed(lambda: post("/graphql", json=search))))
        headers = {
            "content-type": "multipart/form-data; boundary=bench",
            "x-requested-with": "bench",
        }
        rows.append(
            (
                "anonymous 50 MB upload",
                *timed(lambda: post("/graphql", content=upload_body(50 << 20), headers=headers)),
            )
        )
    rows.append(
        ("normal query while 4 clients send k=30", while_attacked(base, fan_out(30), 4), "200 data")
    )
    huge = {"query": ORDERED, "variables": {"o": [{"field": "ID"}] * 60_000}}
    rows.append(
        (
            "normal query while 4 clients send the 60,000 orderBy",
            while_attacked(base, huge, 4),
            "200 data",
        )
    )
    return rows


def main() -> int:
    try:
        reset_database()
        flush_redis()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            run([str(BIN / "trends"), "import", str(generate(ROWS, work))])
            with server(work / "server.log", CACHE_TTL="0") as base:
                rows = attacks(base)
    except BenchError as exc:
        print(f"bench-attacks: {exc}", file=sys.stderr)
        return 1
    normal = rows[0][1]
    print(f"{ROWS:,} trends on PostgreSQL, cache off, median of {TRIES}\n")
    print("| attack | answer | ms | ratio to the normal query |")
    print("|---|---|--:|--:|")
    for name, seconds, answer in rows:
        print(f"| {name} | {answer} | {seconds * 1000:,.1f} | {seconds / normal:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
