"""Database engine and sessions for SQLite (embedded default) and PostgreSQL."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def create_db_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine for `url`; SQLite files get their folder, WAL and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No overflow: Database.run and .read never ask for more connections than the pool holds,
    # and overflow connections would be opened and closed per request under load.
    return sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=0)


class Database:
    """An engine and its session factory, shared by one process."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.engine = create_db_engine(url, pool_size)
        # At most one thread per pooled connection: the others queue here, not in the pool.
        self.threads = anyio.CapacityLimiter(pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads need no transaction: without one a read costs one round trip instead of three
        # (BEGIN, the query, ROLLBACK). Each statement sees what was committed when it started,
        # as it would in a READ COMMITTED transaction.
        self.read_sessions = sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that rolls back whatever its caller did not commit."""
        with self.sessions() as session:
            yield session

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(session, *args)` in a new session."""
        with self.session() as session:
            return fn(session, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(session, *args)` in a worker thread, off the event loop."""
        return await anyio.to_thread.run_sync(self.call, fn, *args, limiter=self.threads)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the read-only `fn(session, *args)` in a worker thread, outside any transaction."""
        return await anyio.to_thread.run_sync(self._read, fn, *args, limiter=self.threads)

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self.read_sessions() as session:
            return fn(session, *args)

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
