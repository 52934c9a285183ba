"""The response and resolver caches over HTTP: hits, misses, invalidation, failures."""

import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from conftest import (
    SAMPLE,
    TRENDS,
    code,
    http_client,
    http_request,
    load,
    login,
    make_user,
    other_database,
    serve,
    settings_env,
    web_client,
    with_settings,
)
from private_redis import private_redis
from sqlalchemy.orm import Session

from trends_gql.cache import store as cache
from trends_gql.cache.store import normalize
from trends_gql.core import generation
from trends_gql.core.db import Database
from trends_gql.core.fields import Steepl
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.settings import Settings
from trends_gql.imports import intake
from trends_gql.schema.caching import CACHE_HEADER, cacheable
from trends_gql.schema.limits import parse_document
from trends_gql.trends import filters
from trends_gql.web.app import create_app

TOTAL = "{ trends { totalCount } }"
CREATE = """mutation { createTrend(input: {megatrend: "AI", macrotrend: "Cached AI",
  challengesAndResearchGaps: "Staleness"}) { id } }"""


CREATE_ONE = (
    "megatrend;macrotrend;challenges_and_research_gaps\n"
    "AI;Memory-cached AI;Copies kept per process\n"
)


def ask(client: httpx.Client, query: str) -> tuple[dict[str, Any], str | None]:
    """The body of a GraphQL answer and whether it came from the cache."""
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    return response.json(), response.headers.get(CACHE_HEADER)


@pytest.fixture
def settings(backend: Settings, db: Database, rate_namespace: str) -> Settings:
    """Caching on, with a namespace, and Redis and statement timeouts for a busy test machine
    (a Redis call that times out is a miss computed in the process: as if no lock were held)."""
    return with_settings(
        backend,
        rate_limit_namespace=rate_namespace,
        cache_timeout=5.0,
        db_statement_timeout_ms=30_000,
    )


@pytest.fixture
def web(settings: Settings) -> Iterator[httpx.Client]:
    """An anonymous client of an app of these settings."""
    with web_client(settings) as client:
        yield client


def test_a_repeated_query_is_a_hit_with_the_same_answer(
    web: httpx.Client, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    first, outcome = ask(web, TOTAL)
    assert (first, outcome) == ({"data": {"trends": {"totalCount": 44}}}, "miss")
    again, outcome = ask(web, TOTAL)
    assert (again, outcome) == (first, "hit")
    _other, outcome = ask(web, "{ trends(first: 1) { totalCount } }")
    assert outcome == "miss"


def test_errors_mutations_and_me_are_never_cached(web: httpx.Client) -> None:
    for _ in range(2):
        assert ask(web, '{ trend(id: "nope") { id } }')[1] == "miss"
        assert ask(web, "{ me { email } }")[1] == "miss"
        assert ask(web, "mutation { logout }")[1] == "miss"
    assert not cacheable("{ me { email } }", None)
    assert not cacheable("query A { trends { totalCount } } mutation B { logout }", "B")
    assert cacheable("query A { trends { totalCount } } mutation B { logout }", "A")
    assert not cacheable("{ ...F } fragment F on Query { me { email } }", None)


def test_staff_are_neither_served_from_nor_stored_in_the_cache(
    web: httpx.Client, settings: Settings, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    make_user(db, "staff@example.org", staff=True)
    with web_client(settings) as staff:
        login(staff, "staff@example.org")
        for _ in range(2):
            body, outcome = ask(staff, "{ trends { totalCount } importRuns { nodes { id } } }")
            assert outcome == "bypass"
            assert body["data"]["trends"]["totalCount"] == 44
    body, outcome = ask(web, "{ trends { totalCount } importRuns { nodes { id } } }")
    assert code(body) == "UNAUTHENTICATED"
    assert outcome == "miss"


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def other_process(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The same app in another process (`trends serve`), sharing the database and Redis."""
    port = free_port()
    process = subprocess.Popen(
        [TRENDS, "serve", "--port", str(port)],
        env=settings_env(settings),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # generous: a process starts slowly on a busy machine
    while True:
        try:
            http_request("GET", f"{url}/healthz", timeout=1)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            assert process.poll() is None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_a_write_is_seen_at_once_by_another_server_process(
    web: httpx.Client, settings: Settings, db: Database, other_process: str, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    make_user(db, "staff@example.org", staff=True)
    subscribers = redis.Redis.from_url(settings.redis_url)
    channel = generation.channel(settings)

    def watching() -> int:
        """How many processes watch the generation's channel (this one's apps too)."""
        [(_, count)] = subscribers.pubsub_numsub(channel)
        return int(count)

    others = watching()
    with http_client(base_url=other_process) as reader:
        assert ask(reader, TOTAL) == ({"data": {"trends": {"totalCount": 44}}}, "miss")
        # Once the reader watches the generation's channel, its hits no longer ask Redis.
        deadline = time.monotonic() + 10
        while watching() == others:
            assert time.monotonic() < deadline
            assert ask(reader, TOTAL)[1] == "hit"
        subscribers.close()
        assert ask(reader, TOTAL)[1] == "hit"
        with web_client(settings) as staff:
            login(staff, "staff@example.org")
            assert "errors" not in ask(staff, CREATE)[0]
        assert ask(reader, TOTAL) == ({"data": {"trends": {"totalCount": 45}}}, "miss")


def test_a_document_is_parsed_once_to_run_it_and_to_decide_to_keep_its_answer(
    web: httpx.Client,
) -> None:
    query = f"{{ trends(first: 2) {{ totalCount }} }} # {uuid.uuid4().hex}"  # never seen before
    before = parse_document.cache_info()
    assert ask(web, query)[1] == "miss"
    after = parse_document.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    assert ask(web, query)[1] == "hit"


def test_a_new_write_path_invalidates_without_being_told(
    web: httpx.Client, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    names = "{ trends(first: 1) { nodes { megatrend } } }"
    assert ask(web, names)[1] == "miss"
    assert ask(web, names)[1] == "hit"

    def rename_all(session: Session, name: str) -> None:  # a service no one taught about caches
        session.execute(sa.update(TREND_TABLE).values(megatrend=name))
        session.commit()

    db.call_sync(rename_all, "Renamed")
    assert ask(web, names) == ({"data": {"trends": {"nodes": [{"megatrend": "Renamed"}]}}}, "miss")
    assert ask(web, names)[1] == "hit"

    def touch_and_roll_back(session: Session) -> None:
        session.execute(sa.update(TREND_TABLE).values(megatrend="Never"))
        session.rollback()

    db.call_sync(touch_and_roll_back)
    assert ask(web, names)[1] == "hit"  # nothing was committed: nothing to invalidate


def test_an_import_run_that_created_rows_invalidates(
    web: httpx.Client, settings: Settings, db: Database
) -> None:
    assert ask(web, TOTAL)[0]["data"]["trends"]["totalCount"] == 0
    assert ask(web, TOTAL)[1] == "hit"
    intake.import_now(db, settings, SAMPLE)
    assert ask(web, TOTAL) == ({"data": {"trends": {"totalCount": 44}}}, "miss")


def test_concurrent_misses_compute_once(settings: Settings, db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, SAMPLE)
    statements: list[str] = []
    app = create_app(settings)
    engine = app.state.db.engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM trend" in statement:
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    query = "{ trends(first: 500) { totalCount nodes { id megatrend } } }"
    outcomes: list[str | None] = []
    with serve(app) as url:
        barrier = threading.Barrier(8)

        def fetch() -> None:
            with http_client(base_url=url, timeout=30) as c:
                barrier.wait()
                outcomes.append(ask(c, query)[1])

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(outcomes) == ["hit"] * 7 + ["miss"]
    assert len(statements) == 1  # the page, once: it holds every trend, which counts them


@pytest.mark.parametrize("where", ["closed port", "silent server"])
def test_reads_answer_quickly_when_redis_is_unreachable(
    settings: Settings, db: Database, tmp_path: Path, where: str
) -> None:
    load(db, tmp_path, SAMPLE)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (the kernel does) and never answers
    port = silent.getsockname()[1] if where == "silent server" else 1
    broken = with_settings(settings, redis_url=f"redis://127.0.0.1:{port}/0", cache_timeout=0.05)
    try:
        with web_client(broken) as client:
            for _ in range(3):
                started = time.monotonic()
                body, outcome = ask(client, TOTAL)
                # Without the cache's timeout a silent server holds the read for good; the
                # margin is for a busy machine.
                assert time.monotonic() - started < 2.5
                assert body == {"data": {"trends": {"totalCount": 44}}}
                assert outcome in {"miss", "bypass"}
            # A refused connection pauses the cache at once; a silent server after a longer
            # probe (a late answer would have meant a busy host).
            deadline = time.monotonic() + cache.PROBE_TIMEOUT + 2
            while not client.get("/healthz").json()["cache"].startswith("degraded"):
                assert time.monotonic() < deadline
                ask(client, TOTAL)
                time.sleep(0.1)
    finally:
        silent.close()


def test_a_redis_that_answers_late_on_a_busy_host_stays_in_use(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    with private_redis() as server:
        slow = with_settings(settings, redis_url=server.url, cache_timeout=0.05)
        with web_client(slow) as client:
            assert ask(client, TOTAL)[1] == "miss"
            with server.stalled():  # no answer for 0.4 s, as when the host is saturated
                for _ in range(4):
                    body, outcome = ask(client, TOTAL)
                    assert body == {"data": {"trends": {"totalCount": 44}}}
                    assert outcome == "bypass"
                time.sleep(0.2)
            deadline = time.monotonic() + 5  # the probe's answer arrives, however busy the host
            while client.get("/healthz").json()["cache"] != "ok":
                assert time.monotonic() < deadline, "the cache did not come back"
                time.sleep(0.05)
            assert ask(client, TOTAL)[1] == "hit"


def test_entries_expire_after_the_ttl(settings: Settings, db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, SAMPLE)
    with web_client(with_settings(settings, cache_ttl=1)) as client:
        assert ask(client, TOTAL)[1] == "miss"
        assert ask(client, TOTAL)[1] == "hit"
        time.sleep(1.2)
        assert ask(client, TOTAL)[1] == "miss"


def test_a_ttl_of_zero_turns_the_cache_off(settings: Settings) -> None:
    with web_client(with_settings(settings, cache_ttl=0)) as client:
        for _ in range(2):
            body, outcome = ask(client, TOTAL)
            assert outcome is None
            assert body == {"data": {"trends": {"totalCount": 0}}}
        assert client.get("/healthz").json()["cache"] == "off"


@pytest.fixture
def counted(settings: Settings) -> Iterator[tuple[httpx.Client, list[str]]]:
    """A client of an app, and the statements on the trend table that app runs from now on."""
    app = create_app(settings)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM trend" in statement:
            statements.append(statement)

    sa.event.listen(app.state.db.engine, "before_cursor_execute", record)
    app.state.reads.observers.append(lambda sql: record(None, None, sql))  # prepared reads'
    with serve(app) as url, http_client(base_url=url, timeout=30) as client:
        yield client, statements


def test_documents_asking_a_root_field_the_same_way_share_its_result(
    counted: tuple[httpx.Client, list[str]], db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    client, statements = counted
    first = "{ trends(first: 5) { nodes { megatrend } } }"
    body, outcome = ask(client, first)
    assert (outcome, len(statements)) == ("miss", 1)
    same_field = "query Other { trends(first: 5) { nodes { megatrend } } __typename }"
    other_body, outcome = ask(client, same_field)
    assert (outcome, len(statements)) == ("miss", 1)  # a new response from the kept result
    assert other_body["data"]["trends"] == body["data"]["trends"]
    ask(client, "{ trends(first: 5) { nodes { megatrend macrotrend } } }")
    assert len(statements) == 2  # other columns: another result
    ask(client, "{ trends { nodes { id } } }")
    ask(client, "{ trends(first: 50) { nodes { id } } }")  # the default made explicit
    assert len(statements) == 3
    for megatrend in ("AI", "Robotics"):
        ask(client, f'{{ macrotrendReadiness(megatrend: "{megatrend}") {{ macrotrend }} }}')
    assert len(statements) == 5


def test_staff_reads_are_kept_by_resolver_and_see_writes_at_once(
    counted: tuple[httpx.Client, list[str]], db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    make_user(db, "staff@example.org", staff=True)
    staff, statements = counted
    login(staff, "staff@example.org")
    for _ in range(2):
        body, outcome = ask(staff, TOTAL)
        assert (body, outcome) == ({"data": {"trends": {"totalCount": 44}}}, "bypass")
    assert len(statements) == 1  # the page, once: it holds every trend, which counts them
    assert "errors" not in ask(staff, CREATE)[0]
    assert ask(staff, TOTAL)[0] == {"data": {"trends": {"totalCount": 45}}}


def test_resolver_arguments_normalise_to_the_same_key() -> None:
    a = filters.TrendFilter(megatrend="AI", steepl=Steepl.T)
    b = filters.TrendFilter(steepl=Steepl.T, megatrend="AI")
    assert normalize(((a,), {"columns": {"x", "y"}})) == normalize(((b,), {"columns": {"y", "x"}}))
    assert normalize(a) != normalize(filters.TrendFilter(megatrend="AI"))
    with pytest.raises(TypeError):
        normalize(object())


def test_a_filter_time_normalises_to_one_key_per_instant() -> None:
    utc = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)
    east = utc.astimezone(timezone(timedelta(hours=2)))
    a = filters.TrendFilter(updated_since=utc, steepl_in=(Steepl.T,))
    b = filters.TrendFilter(updated_since=east, steepl_in=(Steepl.T,))
    assert normalize(a) == normalize(b)
    assert normalize(a)["updated_since"] == "2026-01-31T10:00:00+00:00"
    later = filters.TrendFilter(updated_since=utc + timedelta(microseconds=1))
    assert normalize(later) != normalize(filters.TrendFilter(updated_since=utc))


@pytest.mark.parametrize("memory_mb", [64, 0])
def test_hits_come_from_process_memory_and_writes_still_reach_them(
    settings: Settings, db: Database, tmp_path: Path, memory_mb: int
) -> None:
    load(db, tmp_path, SAMPLE)
    redis_client = redis.Redis.from_url(settings.redis_url)
    with web_client(with_settings(settings, cache_memory_mb=memory_mb)) as client:
        assert ask(client, TOTAL)[1] == "miss"
        assert ask(client, TOTAL)[1] == "hit"
        responses = redis_client.keys(f"{settings.cache_namespace}:response:*")
        assert responses
        redis_client.delete(*responses)  # what Redis kept is gone; this process's copy is not
        assert ask(client, TOTAL)[1] == ("hit" if memory_mb else "miss")
        load(db, tmp_path, CREATE_ONE)  # its commit invalidates
        assert ask(client, TOTAL) == ({"data": {"trends": {"totalCount": 45}}}, "miss")
    redis_client.close()


def test_a_generation_lost_with_redis_data_is_never_issued_again(
    web: httpx.Client, settings: Settings, db: Database, tmp_path: Path
) -> None:
    redis_client = redis.Redis.from_url(settings.redis_url)
    generation_key = generation.key(settings)

    def lose_and_bump_three_times() -> None:
        redis_client.delete(generation_key)  # as a restart without persistence would
        for _ in range(3):
            assert generation.bump(settings)

    lose_and_bump_three_times()
    assert ask(web, TOTAL) == ({"data": {"trends": {"totalCount": 0}}}, "miss")
    assert ask(web, TOTAL)[1] == "hit"  # kept in Redis and in this server's memory
    load(db, tmp_path, CREATE_ONE)
    lose_and_bump_three_times()  # three acknowledged writes after the loss
    assert ask(web, TOTAL) == ({"data": {"trends": {"totalCount": 1}}}, "miss")
    redis_client.close()


def test_servers_of_two_databases_sharing_a_redis_answer_from_their_own(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    with (
        other_database(settings, tmp_path) as other,
        web_client(settings) as mine,
        web_client(other) as theirs,
    ):
        assert other.cache_namespace == settings.cache_namespace
        assert ask(mine, TOTAL) == ({"data": {"trends": {"totalCount": 44}}}, "miss")
        assert ask(theirs, TOTAL) == ({"data": {"trends": {"totalCount": 0}}}, "miss")
        assert ask(theirs, "{ megatrends { name } }")[0] == {"data": {"megatrends": []}}
        assert ask(mine, TOTAL)[1] == "hit"


def test_keys_name_the_database_but_not_its_password(settings: Settings) -> None:
    pg = "postgresql+psycopg://app:secret@db.example.org:5432/trends"
    same = with_settings(settings, database_url=pg.replace("secret", "rotated"))
    assert cache.scope_of(with_settings(settings, database_url=pg)) == cache.scope_of(same)
    assert "secret" not in cache.database_identity(pg)
    other = with_settings(settings, database_url=pg.replace("/trends", "/trends_eu"))
    assert cache.scope_of(other) != cache.scope_of(same)
    relative = with_settings(settings, database_url="sqlite:///var/x.db")
    absolute = with_settings(settings, database_url=f"sqlite:///{Path('var/x.db').resolve()}")
    assert cache.scope_of(relative) == cache.scope_of(absolute)
    assert cache.Cache(settings).key(7, "response", []).split(":")[1] == cache.scope_of(settings)


# A PostgreSQL table lock holds both misses open while they are counted.
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_concurrent_misses_in_two_server_processes_compute_once(
    web: httpx.Client, db: Database, other_process: str, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )

    def fetch(url: str, query: str, outcomes: list[str | None], answers: list[Any]) -> None:
        with http_client(base_url=url, timeout=30) as c:
            body, outcome = ask(c, query)
            answers.append(body)
            outcomes.append(outcome)

    for first, url in enumerate((str(web.base_url), other_process), 1):  # connected and warm
        with http_client(base_url=url, timeout=30) as c:
            assert "errors" not in ask(c, f"{{ trends(first: {first}) {{ totalCount }} }}")[0]
    for attempt in range(5):  # each with a query of its own, never asked before
        query = f"{{ trends(first: {7 + attempt}) {{ totalCount nodes {{ megatrend }} }} }}"
        outcomes: list[str | None] = []
        answers: list[dict[str, Any]] = []
        with db.engine.connect() as blocker, db.engine.connect() as observer:
            blocker.execute(sa.text("LOCK TABLE trend IN ACCESS EXCLUSIVE MODE"))
            threads = [
                threading.Thread(target=fetch, args=(url, query, outcomes, answers))
                for url in (str(web.base_url), other_process)
            ]
            sent = time.monotonic()
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 20  # within the servers' statement timeout (30 s here)
            while observer.execute(waiting).scalar_one() < 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(1.0)  # time for the other process's miss to reach the database, if it would
            blocked = observer.execute(waiting).scalar_one()
            # A waiting miss computes itself once the lock's lease is over: only a count taken
            # within the lease says that it did not. On a busy machine it may not be: again.
            within_lease = time.monotonic() - sent < cache.LOCK_LEASE - 0.5
            blocker.rollback()
        for thread in threads:
            thread.join(timeout=30)
        if within_lease or (blocked == 1 and sorted(outcomes, key=str) == ["hit", "miss"]):
            break
    assert blocked == 1
    assert sorted(outcomes, key=str) == ["hit", "miss"]
    assert answers[0] == answers[1]
    assert answers[0]["data"]["trends"]["totalCount"] == 44


def test_hits_take_the_generation_from_the_watch_until_a_write_is_published(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    redis_client = redis.Redis.from_url(settings.redis_url)
    app = create_app(settings)
    with serve(app) as url, http_client(base_url=url, timeout=10) as client:
        assert ask(client, TOTAL)[1] == "miss"
        deadline = time.monotonic() + 10
        while not app.state.cache.watch.watching:
            assert time.monotonic() < deadline
            assert ask(client, TOTAL)[1] == "hit"
        assert ask(client, TOTAL)[1] == "hit"  # the generation read once more, and kept
        # Gone without a word on the channel: a server that asked Redis would start a new
        # generation and miss; one that watches keeps the one it read, and hits.
        redis_client.delete(generation.key(settings))
        assert ask(client, TOTAL)[1] == "hit"
        load(db, tmp_path, CREATE_ONE)  # its commit bumps, and publishes
        assert ask(client, TOTAL) == ({"data": {"trends": {"totalCount": 45}}}, "miss")
        assert ask(client, TOTAL)[1] == "hit"
    redis_client.close()
