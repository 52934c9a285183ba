"""Statements compiled once and read asynchronously give the rows SQLAlchemy gives, and the
connections they use behave as the engine's do (statement timeout, failures, pool size)."""

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from conftest import SAMPLE, load

from trends_gql.core.db import Database
from trends_gql.core.fields import Steepl
from trends_gql.core.reads import Reads
from trends_gql.core.settings import Settings
from trends_gql.trends import aggregates, counts, filters, queries

pytestmark = pytest.mark.anyio

COLUMNS = [
    "megatrend",
    "technology_readiness_level",
    "steepl",
    "uploaded_at",
    "relevant_industries",
]


def _statements(dialect: str) -> list[sa.Select[Any]]:
    only_s_and_t = filters.TrendFilter(steepl_in=(Steepl.S, Steepl.T))
    return [
        queries.page_query(trend_filter=only_s_and_t, columns=COLUMNS, first=20).statement,
        queries.trends_statement([1, 2, 3, 10**6], COLUMNS),
        aggregates.readiness_statement("ai"),
        counts.count_statement(None, dialect),
        counts.count_statement(filters.TrendFilter(search="energy"), dialect),
        counts.count_statement(filters.TrendFilter(publications_min=100_000), dialect),
    ]


async def test_rows_read_are_the_rows_sqlalchemy_gives(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, SAMPLE)
    statements = _statements(db.dialect)
    reads = Reads(db, pool_size=2)
    try:
        prepared = reads.prepare(statements)
        first, again = await reads.fetch(prepared), await reads.fetch(prepared)
    finally:
        reads.close()
    expected = db.call_sync(lambda s: [list(s.execute(st)) for st in statements])
    assert [[tuple(r) for r in rows] for rows in first] == [
        [tuple(r) for r in rows] for rows in expected
    ]
    assert [[tuple(r) for r in rows] for rows in again] == [
        [tuple(r) for r in rows] for rows in first
    ]
    page, theirs = first[0], expected[0]
    assert page
    assert all(type(r.steepl) is Steepl for r in page)
    assert [r._mapping for r in page] == [dict(r._mapping) for r in theirs]
    assert [r.uploaded_at for r in page] == [r.uploaded_at for r in theirs]
    assert all(r.uploaded_at.utcoffset().total_seconds() == 0 for r in page)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_statement_over_the_timeout_is_cancelled_and_its_connection_kept(
    backend: Settings,
) -> None:
    db = Database(backend.database_url, statement_timeout_ms=200)
    reads = Reads(db, pool_size=1)
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            await reads.fetch(reads.prepare([sa.select(sa.func.pg_sleep(2))]))
        (pool,) = reads.pools.values()
        (kept,) = pool.idle
        assert (await reads.fetch(reads.prepare([sa.select(sa.literal(1))]))) == [[(1,)]]
        assert pool.idle == [kept]  # the same connection, used again
    finally:
        reads.close()
        db.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_cancelled_read_gives_its_slot_back_and_leaves_no_statement_running(
    backend: Settings,
) -> None:
    db = Database(backend.database_url)
    reads = Reads(db, pool_size=1)
    try:
        marked = sa.select(sa.func.pg_sleep(30), sa.literal_column("'cancelled read'"))
        slow = asyncio.create_task(reads.fetch(reads.prepare([marked])))
        await asyncio.sleep(0.5)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        one = reads.prepare([sa.select(sa.literal(1))])
        assert await asyncio.wait_for(reads.fetch(one), timeout=5) == [[(1,)]]
        running = sa.text(  # in this database only: another test run may be at this test too
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
            " AND query LIKE '%cancelled read%' AND pid <> pg_backend_pid()"
            " AND datname = current_database()"
        )
        with db.engine.connect() as conn:
            assert conn.execute(running).scalar_one() == 0
    finally:
        reads.close()
        db.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_database_that_does_not_answer_fails_the_read_at_once(backend: Settings) -> None:
    url = sa.make_url(backend.database_url).set(host="127.0.0.1", port=1)
    db = Database(url.render_as_string(hide_password=False))
    reads = Reads(db, pool_size=1)
    started = time.monotonic()
    try:
        with pytest.raises(psycopg.OperationalError):
            await reads.fetch(reads.prepare([sa.select(sa.literal(1))]))
    finally:
        reads.close()
        db.dispose()
    assert time.monotonic() - started < 2


async def test_concurrent_reads_share_at_most_the_pools_connections(
    db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    reads = Reads(db, pool_size=2)
    prepared = reads.prepare([queries.trends_statement([1], COLUMNS)])
    try:
        answers = await asyncio.gather(*(reads.fetch(prepared) for _ in range(12)))
        assert len({repr(a) for a in answers}) == 1
        if db.dialect == "postgresql":
            (pool,) = reads.pools.values()
            assert len(pool.idle) == 2
    finally:
        reads.close()


def _filtered(dialect: str, **fields: Any) -> list[sa.Select[Any]]:
    """A page of the trends matching a filter, and their count."""
    trend_filter = filters.TrendFilter(**fields)
    page = queries.page_query(trend_filter=trend_filter, columns=COLUMNS, first=50).statement
    return [page, counts.count_statement(trend_filter, dialect)]


async def test_statements_of_one_structure_read_each_their_own_values(
    db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    wanted = [
        {"megatrend_in": ("AI",), "publications_min": 1},
        {"megatrend_in": ("AI", "Robotics", "Mobility"), "publications_min": 1000},
        {"megatrend_in": ("Robotics",), "publications_min": 0},
        {"steepl_in": (Steepl.S, Steepl.T), "search": "energy"},
        {"steepl_in": (Steepl.E,), "search": "a"},
        {"patents_min": 150, "patents_max": 20_420},
        {"patents_min": 3_000, "patents_max": 3_050},
    ]
    cases = [_filtered(db.dialect, **fields) for fields in wanted]
    # Values given by statement.params(), as the readiness statement's megatrend is.
    cases += [[aggregates.readiness_statement(m)] for m in ("AI", "Robotics", "none of them")]
    reads = Reads(db, pool_size=1)
    try:
        for statements in cases * 2:  # the second time, each structure is compiled already
            read = await reads.fetch(reads.prepare(statements))
            expected = db.call_sync(lambda s, st=statements: [list(s.execute(x)) for x in st])
            assert [[tuple(r) for r in rows] for rows in read] == [
                [tuple(r) for r in rows] for rows in expected
            ]
    finally:
        reads.close()


@contextlib.contextmanager
def own_reads(settings: Settings, **options: Any) -> Iterator[Reads]:
    """Reads of the settings' database through a Database of their own, closed after."""
    db = Database(settings.database_url)
    reads = Reads(db, **{"pool_size": 1, **options})
    try:
        yield reads
    finally:
        reads.close()
        db.dispose()


_PREPARED_HERE = sa.select(sa.func.count()).select_from(sa.text("pg_prepared_statements"))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_statement_is_prepared_once_per_connection_and_read_again_as_prepared(
    backend: Settings,
) -> None:
    with own_reads(backend) as reads:
        by_id = reads.prepare([queries.trends_statement([1, 2], COLUMNS)])
        for _ in range(3):
            await reads.fetch(by_id)
        # This connection's statements: the read of trends, and the count itself.
        assert await reads.fetch(reads.prepare([_PREPARED_HERE])) == [[(2,)]]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_the_statements_prepared_on_a_connection_are_bounded(backend: Settings) -> None:
    with own_reads(backend, prepared_max=5) as reads:
        for i in range(12):
            rows = await reads.fetch(reads.prepare([sa.select(sa.literal_column(str(i)))]))
            assert rows == [[(i,)]]
        (count,) = (await reads.fetch(reads.prepare([_PREPARED_HERE])))[0][0]
        assert 1 <= count <= 5


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_reading_through_libpq_costs_less_cpu_than_psycopgs_cursor(
    backend: Settings,
) -> None:
    # Why reads go through libpq and psycopg's adapters, not its cursor: the day this fails,
    # the cursor is as cheap, and the code that goes round it should go.
    url = sa.make_url(backend.database_url).set(drivername="postgresql")
    connecting = psycopg.AsyncConnection.connect(
        url.render_as_string(hide_password=False), autocommit=True
    )
    async with await connecting as conn:
        with own_reads(backend) as reads:
            (read,) = prepared = reads.prepare([queries.trends_statement([1, 2], COLUMNS)])

            async def through_the_cursor() -> None:
                cursor = conn.cursor()
                await cursor.execute(read.sql, read.params)
                assert cursor.pgresult is not None
                read.rows(cursor.pgresult, await cursor.fetchall())

            ours, theirs = await _cpu(lambda: reads.fetch(prepared), through_the_cursor)
    assert statistics.median(ours) < statistics.median(theirs), (ours[:20], theirs[:20])


async def _cpu(
    one: Callable[[], Awaitable[object]], other: Callable[[], Awaitable[object]], times: int = 1000
) -> tuple[list[float], list[float]]:
    """The CPU of each of `times` calls of each, one after the other: a busy machine or server
    slows both alike, and a median leaves out the calls a switch of process made slow. This
    thread's only: served apps of earlier tests may still be stopping in others."""
    spent: tuple[list[float], list[float]] = ([], [])
    for _ in range(times):
        for costs, call in zip(spent, (one, other), strict=True):
            started = time.thread_time()
            await call()
            costs.append(time.thread_time() - started)
    return spent
