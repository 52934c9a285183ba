"""Database engine and sessions for SQLite (embedded default) and PostgreSQL.

A Database knows which tables each transaction wrote and tells its commit hook after the
commit: the database of the settings (`Database.of`, `open_database`) bumps the cache's data
generation after every committed write to trends, whatever service made it.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import psycopg
import psycopg.errors
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

from trends_gql.core import generation
from trends_gql.core.errors import QueryTimeout, ServiceUnavailable
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
CommitHook = Callable[[frozenset[str]], None]
_WRITTEN = "trends_written_tables"  # in Session.info: the tables the open transaction wrote
TREND = "trend"  # the table whose writes change what the caches answer


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


def create_db_engine(url: str, pool_size: int = 10, statement_timeout_ms: int = 0) -> Engine:
    """An engine for `url`; SQLite files get their folder, WAL and a busy timeout.

    On PostgreSQL the server cancels any statement that runs longer than `statement_timeout_ms`
    (0: no limit); SQLite has no such limit and ignores it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if statement_timeout_ms:
        # A start-up option of each connection: it holds from the first statement on, pings
        # included, and no statement of ours can be sent without it.
        given = parsed.query.get("options") or ()
        options = [given] if isinstance(given, str) else list(given)
        options.append(f"-c statement_timeout={statement_timeout_ms}")
        connect_args["options"] = " ".join(options)  # with the URL's own, which it replaces
    # No overflow: Database.run and .read never ask for more connections than the pool holds,
    # and overflow connections would be opened and closed per request under load.
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=pool_size, max_overflow=0, connect_args=connect_args
    )


def created_on(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object`: leaves out what the models create on other dialects only."""
    # Such as the trigram index, declared with `.ddl_if(dialect="postgresql")`.

    def include(item: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        condition = getattr(item, "_ddl_if", None)  # what SQLAlchemy's create_all obeys
        return condition is None or condition.dialect in (None, dialect)

    return include


def _cancelled(exc: sa.exc.OperationalError) -> bool:
    return isinstance(exc.orig, psycopg.errors.QueryCanceled)


def mark_written(session: Session, table: str) -> None:
    """Record that the session's transaction wrote to `table` behind SQLAlchemy's back.

    Statements run through the session, and flushed objects, are recorded by themselves; only
    writes through the raw driver connection (COPY, executemany) need saying.
    """
    session.info.setdefault(_WRITTEN, set()).add(table)


def _record_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        mark_written(state.session, getattr(table, "name", "") or "?")


def _record_flush(session: Session, _context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        mark_written(session, sa.inspect(obj).mapper.local_table.name)


def _forget_writes(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:  # the whole transaction is gone, and what it wrote with it
        session.info.pop(_WRITTEN, None)


class Database:
    """An engine and its session factory, shared by one process.

    After each commit of a transaction that wrote, `on_commit` gets the names of the tables it
    wrote, in the committing thread (a worker thread when called through `run`).
    """

    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        statement_timeout_ms: int = 0,
        on_commit: CommitHook | None = None,
    ) -> None:
        self.engine = create_db_engine(url, pool_size, statement_timeout_ms)
        self.statement_timeout_ms = statement_timeout_ms if self.dialect == "postgresql" else 0
        # At most one thread per pooled connection: the others queue here, not in the pool.
        self.threads = anyio.CapacityLimiter(pool_size)
        self.on_commit = on_commit
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        sa.event.listen(self.sessions, "do_orm_execute", _record_statement)
        sa.event.listen(self.sessions, "after_flush", _record_flush)
        sa.event.listen(self.sessions, "after_commit", self._committed)
        sa.event.listen(self.sessions, "after_soft_rollback", _forget_writes)
        # Reads need no transaction: without one a read costs one round trip instead of three
        # (BEGIN, the query, ROLLBACK). Each statement sees what was committed when it started,
        # as it would in a READ COMMITTED transaction.
        self.read_sessions = sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @classmethod
    def of(
        cls, settings: Settings, *, pool_size: int = 10, statement_timeout_ms: int = 0
    ) -> "Database":
        """The settings' database; a committed write to trends bumps the cache generation."""

        def invalidate(tables: frozenset[str]) -> None:
            if TREND in tables:
                generation.bump(settings)

        return cls(settings.database_url, pool_size, statement_timeout_ms, on_commit=invalidate)

    def _committed(self, session: Session) -> None:
        tables = session.info.pop(_WRITTEN, None)
        if not tables or self.on_commit is None:
            return
        try:
            self.on_commit(frozenset(tables))
        except Exception:  # the commit stands whatever its hook does
            log.exception("after the commit of a write to %s", ", ".join(sorted(tables)))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that rolls back whatever its caller did not commit."""
        with self.sessions() as session:
            yield session

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(session, *args)` here, blocking this thread; QueryTimeout if a statement ran long."""
        with self._translated_errors(), self.session() as session:
            return fn(session, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(session, *args)` in a worker thread, off the event loop."""
        return await anyio.to_thread.run_sync(self.call_sync, fn, *args, limiter=self.threads)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the read-only `fn(session, *args)` in a worker thread, outside any transaction."""
        return await anyio.to_thread.run_sync(self._read, fn, *args, limiter=self.threads)

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        with self._translated_errors(), self.read_sessions() as session:
            return fn(session, *args)

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        """Turn a statement cancelled at the time limit into QueryTimeout, and a PostgreSQL
        that cannot be reached (refused, gone, shutting down) into ServiceUnavailable."""
        try:
            yield
        except sa.exc.OperationalError as exc:
            if not (self.statement_timeout_ms and _cancelled(exc)):
                if self.dialect == "postgresql" and isinstance(exc.orig, psycopg.OperationalError):
                    log.debug("database unavailable: %s", exc.orig)  # the caller says it once
                    raise ServiceUnavailable(
                        "The database cannot be reached; try again in a moment."
                    ) from exc
                raise
            # Only the statement ended: the session has rolled back and its connection, back in
            # the pool, serves the next request.
            log.warning(
                "statement cancelled after %d ms: %.200s", self.statement_timeout_ms, exc.statement
            )
            raise QueryTimeout(
                f"The query took longer than the {self.statement_timeout_ms} ms this server "
                "allows and was stopped. Narrow it (a longer search term, more filters, fewer "
                "rows or fields) and try again."
            ) from exc

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def open_database(settings: Settings) -> Iterator[Database]:
    """The settings' database for one job or command (no statement timeout), disposed after."""
    db = Database.of(settings)
    try:
        yield db
    finally:
        db.dispose()
