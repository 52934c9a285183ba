"""Database helpers: timezone-aware UTC times on every backend."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from trends_gql.db import Database, UTCDateTime

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
