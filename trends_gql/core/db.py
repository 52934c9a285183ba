"""Database engine and sessions for SQLite (embedded default) and PostgreSQL.

A Database knows which tables each transaction wrote (and which rows, where it can tell) and
tells its commit hooks after the commit: the database of the settings (`Database.of`,
`open_database`) bumps the cache's data generation after every committed write to trends, and
publishes the ids of the import runs written (core/changes.py), whatever service made it.
"""

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import psycopg
import psycopg.errors
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from trends_gql.core import changes, generation
from trends_gql.core.errors import QueryTimeout, ServiceUnavailable
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
CommitHook = Callable[[frozenset[str]], None]
RowsHook = Callable[[frozenset[int] | None], object]  # the ids of rows written; None: not known
# In Session.info: the tables the open transaction wrote, each with the ids of the rows it
# wrote (None: rows it cannot tell).
_WRITTEN = "trends_written_rows"
TREND = "trend"  # the table whose writes change what the caches answer
IMPORT_RUN = "import_run"  # the table whose changes live followers hear of


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
    connect_args = postgres_connect_args(url, statement_timeout_ms)
    # No overflow: Database.run and .read never ask for more connections than the pool holds,
    # and overflow connections would be opened and closed per request under load.
    engine = sa.create_engine(
        url, pool_pre_ping=True, pool_size=pool_size, max_overflow=0, connect_args=connect_args
    )
    sa.event.listen(engine, "handle_error", _discard_interrupted)
    return engine


def _discard_interrupted(context: sa.engine.ExceptionContext) -> None:
    """Discard a connection left in the middle of a command, not return it to the pool.

    A signal's exception (RQ's job timeout) can land while psycopg waits for the server: the
    command is still running there, and the connection can neither roll back nor serve anyone.
    """
    conn = context.connection
    if conn is None or conn.invalidated:
        return
    driver = conn.connection.driver_connection
    if isinstance(driver, psycopg.Connection) and (
        driver.pgconn.transaction_status == pq.TransactionStatus.ACTIVE
    ):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False  # the others are sound


def postgres_connect_args(url: str, statement_timeout_ms: int = 0) -> dict[str, Any]:
    """Arguments of each connection to PostgreSQL beyond the URL's: the statement timeout."""
    connect_args: dict[str, Any] = {}
    if statement_timeout_ms:
        # A start-up option of each connection: it holds from the first statement on, pings
        # included, and no statement of ours can be sent without it.
        given = make_url(url).query.get("options") or ()
        options = [given] if isinstance(given, str) else list(given)
        options.append(f"-c statement_timeout={statement_timeout_ms}")
        connect_args["options"] = " ".join(options)  # with the URL's own, which it replaces
    return connect_args


def created_on(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object`: leaves out what the models create on other dialects only."""
    # Such as the trigram index, declared with `.ddl_if(dialect="postgresql")`.

    def include(item: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        condition = getattr(item, "_ddl_if", None)  # what SQLAlchemy's create_all obeys
        return condition is None or condition.dialect in (None, dialect)

    return include


def _cancelled(exc: sa.exc.OperationalError) -> bool:
    return isinstance(exc.orig, psycopg.errors.QueryCanceled)


def mark_written(session: Session, table: str, ids: Iterable[int] | None = None) -> None:
    """Record that the session's transaction wrote to `table` behind SQLAlchemy's back (the
    rows of these `ids`; None: rows not told).

    Statements run through the session, and flushed objects, are recorded by themselves; only
    writes through the raw driver connection (COPY, executemany) need saying.
    """
    written: dict[str, set[int] | None] = session.info.setdefault(_WRITTEN, {})
    if ids is None:
        written[table] = None
    elif table not in written:
        written[table] = set(ids)
    elif (known := written[table]) is not None:
        known.update(ids)


def _ids_in(clause: Any, key: sa.Column[Any]) -> frozenset[int] | None:
    """The ids a WHERE clause limits rows to (`id = x`, `id IN (...)`, alone or ANDed with other
    conditions); None when it does not say."""
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        found = [ids for c in clause.clauses if (ids := _ids_in(c, key)) is not None]
        return frozenset.intersection(*found) if found else None
    if not (isinstance(clause, BinaryExpression) and isinstance(clause.right, BindParameter)):
        return None
    left = clause.left
    if getattr(left, "table", None) is not key.table or getattr(left, "key", None) != key.key:
        return None
    value = clause.right.effective_value
    values = [value] if clause.operator is operators.eq else value
    if clause.operator not in (operators.eq, operators.in_op) or not isinstance(values, list):
        return None
    return frozenset(values) if all(isinstance(v, int) for v in values) else None


def _record_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        keys = list(getattr(table, "primary_key", ()))
        ids = None
        if (state.is_update or state.is_delete) and len(keys) == 1:
            ids = _ids_in(getattr(state.statement, "whereclause", None), keys[0])
        mark_written(state.session, getattr(table, "name", "") or "?", ids)


def _record_flush(session: Session, _context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        mapper = sa.inspect(obj).mapper
        key = mapper.primary_key_from_instance(obj)
        ids = key if len(key) == 1 and isinstance(key[0], int) else None
        mark_written(session, mapper.local_table.name, ids)


def _forget_writes(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:  # the whole transaction is gone, and what it wrote with it
        session.info.pop(_WRITTEN, None)


class Database:
    """An engine and its session factory, shared by one process.

    After each commit of a transaction that wrote, `on_commit` gets the names of the tables it
    wrote, and `row_hooks[table]` the ids of the rows of `table` it wrote, in the committing
    thread (a worker thread when called through `run`).
    """

    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        statement_timeout_ms: int = 0,
        on_commit: CommitHook | None = None,
        row_hooks: Mapping[str, RowsHook] | None = None,
    ) -> None:
        self.engine = create_db_engine(url, pool_size, statement_timeout_ms)
        self.statement_timeout_ms = statement_timeout_ms if self.dialect == "postgresql" else 0
        # At most one thread per pooled connection: the others queue here, not in the pool.
        self.threads = anyio.CapacityLimiter(pool_size)
        self.on_commit = on_commit
        self.row_hooks = dict(row_hooks or {})
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
        """The settings' database: a committed write to trends bumps the cache generation, and
        one to import runs tells their live followers."""

        def invalidate(tables: frozenset[str]) -> None:
            if TREND in tables:
                generation.bump(settings)

        return cls(
            settings.database_url,
            pool_size,
            statement_timeout_ms,
            on_commit=invalidate,
            row_hooks={IMPORT_RUN: partial(changes.publish, settings, IMPORT_RUN)},
        )

    def _committed(self, session: Session) -> None:
        written: dict[str, set[int] | None] | None = session.info.pop(_WRITTEN, None)
        if not written:
            return
        hooks: list[Callable[[], object]] = []
        if self.on_commit is not None:
            hooks.append(partial(self.on_commit, frozenset(written)))
        for table, hook in self.row_hooks.items():
            if table in written:
                ids = written[table]
                hooks.append(partial(hook, None if ids is None else frozenset(ids)))
        for call in hooks:
            try:
                call()
            except Exception:  # the commit stands whatever its hooks do
                log.exception("after the commit of a write to %s", ", ".join(sorted(written)))

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
