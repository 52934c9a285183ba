"""Database helpers: UTC times, and reads that share a bounded pool."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.db import Database, UTCDateTime
from trends_gql.settings import Settings

_table = sa.Table("moments", sa.MetaData(), sa.Column("at", UTCDateTime))


@pytest.fixture
def moments(db: Database) -> Iterator[Database]:
    _table.drop(db.engine, checkfirst=True)
    _table.create(db.engine)
    yield db
    _table.drop(db.engine)


def test_times_come_back_timezone_aware_in_utc(moments: Database) -> None:
    paris = timezone(timedelta(hours=1))
    with moments.engine.begin() as conn:
        conn.execute(_table.insert(), {"at": datetime(2026, 1, 1, 13, 0, tzinfo=paris)})
        stored = conn.execute(sa.select(_table.c.at)).scalar_one()
    assert stored == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert stored.utcoffset() == timedelta(0)


def test_naive_times_are_refused(moments: Database) -> None:
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime"),
        moments.engine.begin() as conn,
    ):
        conn.execute(_table.insert(), {"at": datetime(2026, 1, 1, 12, 0)})


def test_ping_answers_for_a_live_database(db: Database) -> None:
    db.ping()


def test_ping_raises_for_an_unreachable_database() -> None:
    dead = Database("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(sa.exc.OperationalError):
        dead.ping()


def test_reads_beyond_the_pool_wait_their_turn_and_all_answer(backend: Settings) -> None:
    small = Database(backend.database_url, pool_size=2)
    running: list[int] = []
    most = 0
    lock = threading.Lock()

    def hold_and_read(session: Session) -> int:
        nonlocal most
        with lock:
            running.append(1)
            most = max(most, len(running))
        time.sleep(0.05)  # so that the reads overlap
        try:
            return int(session.execute(sa.text("SELECT 1")).scalar_one())
        finally:
            with lock:
                running.pop()

    async def many() -> list[int]:
        results: list[int] = []

        async def one() -> None:
            results.append(await small.read(hold_and_read))

        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(one)
        return results

    try:
        assert anyio.run(many) == [1] * 12
        assert most == 2  # as many at once as there are connections, no more
        assert small.engine.pool.checkedout() == 0
    finally:
        small.dispose()


def test_reads_see_a_write_committed_by_another_session(db: Database) -> None:
    with db.session() as session:
        session.execute(sa.text("CREATE TABLE IF NOT EXISTS seen (n INTEGER)"))
        session.execute(sa.text("DELETE FROM seen"))
        session.commit()
    count = "SELECT count(*) FROM seen"
    try:
        assert anyio.run(db.read, lambda s: s.execute(sa.text(count)).scalar_one()) == 0
        with db.session() as session:
            session.execute(sa.text("INSERT INTO seen VALUES (1)"))
            session.commit()
        assert anyio.run(db.read, lambda s: s.execute(sa.text(count)).scalar_one()) == 1
    finally:
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE seen"))
