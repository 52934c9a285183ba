"""Statements compiled once and read as often as needed, without a worker thread on PostgreSQL.

Database.read runs a service in a worker thread through SQLAlchemy's session: each read pays a
thread hop, a pool ping and SQLAlchemy's execution, several times the cost of the statement
itself for a small one. A read repeated as is (the same document with the same variables) is
instead compiled once by SQLAlchemy (`Reads.prepare`: its final SQL text, its parameters as
bound, its columns' result processors) and then run by `Reads.fetch` on psycopg's asynchronous
connections, autocommit as the reads of Database.read and with the engine's statement timeout.
SQLite has no asynchronous driver here: there the same statements go through Database.read.

The rows are tuples readable as SQLAlchemy's rows are by the callers (by column key as
attributes, `_mapping`, by position), with the values SQLAlchemy's types would give.

A read is sent through libpq itself (psycopg.pq), as a statement prepared once per connection,
and its result waited for with one reader callback of the event loop: psycopg's asynchronous
cursor costs about twice as much CPU for a small read (its generators and waits), as much as
the rest of a request by id. psycopg's own adapters still dump the parameters and load the rows.
"""

import asyncio
import contextlib
import re
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.errors
import sqlalchemy as sa
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import TransactionStatus

from trends_gql.core.db import Database, postgres_connect_args

Processor = Any  # SQLAlchemy's result processor of a column: value -> value


def _row_class(keys: Sequence[str]) -> Callable[..., Any]:
    """A tuple type readable as SQLAlchemy's Row: `row.key`, `row._mapping`, `row[i]`."""
    base = namedtuple("Row", keys, rename=True)  # type: ignore[misc]  # keys known at run time

    class Row(base):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(keys, self, strict=True))

    return Row


# SQLAlchemy's placeholders for psycopg (pyformat), and its escaped percent sign.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def _numbered(sql: str) -> tuple[bytes, list[str]]:
    """SQL with pyformat placeholders as libpq takes it ($1, $2...), and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql).encode(), names


@dataclass
class CompiledRead:
    """One statement as libpq takes it, and how its rows come back."""

    sql: str
    params: dict[str, Any]
    types: list[sa.types.TypeEngine[Any]]  # of the selected columns, in order
    dialect: sa.Dialect
    # From the columns the server describes (names and types, as SQLAlchemy reads them): the
    # row type and each column's result processor, made on first use.
    reading: tuple[Callable[..., Any], list[tuple[int, Processor]]] | None = field(default=None)
    query: bytes = field(init=False)  # `sql` with numbered placeholders
    values: list[Any] = field(init=False)  # `params` in their placeholders' order

    def __post_init__(self) -> None:
        self.query, names = _numbered(self.sql)
        self.values = [self.params[name] for name in names]

    def rows(self, result: pq.abc.PGresult, found: list[tuple[Any, ...]]) -> list[Any]:
        """The rows of a result, their values converted as SQLAlchemy's column types convert."""
        if self.reading is None:
            self.reading = self._reading(result)
        row, processors = self.reading
        make = row._make  # type: ignore[attr-defined]
        if not processors:
            return [make(values) for values in found]
        converted = []
        for values in found:
            listed = list(values)
            for i, process in processors:
                if listed[i] is not None:
                    listed[i] = process(listed[i])
            converted.append(make(listed))
        return converted

    def _reading(
        self, result: pq.abc.PGresult
    ) -> tuple[Callable[..., Any], list[tuple[int, Processor]]]:
        dialect = self.dialect
        names, oids = [], []
        for i in range(result.nfields):
            names.append((result.fname(i) or b"").decode())
            oids.append(result.ftype(i))
        processors = []
        for i, (type_, oid) in enumerate(zip(self.types, oids, strict=True)):
            process = type_.dialect_impl(dialect).result_processor(dialect, oid)
            if process is not None:
                processors.append((i, process))
        return _row_class(names), processors


def compile_read(statement: sa.Select[Any], dialect: sa.Dialect) -> CompiledRead:
    """A statement compiled for psycopg, with its parameters bound as SQLAlchemy binds them."""
    compiled = statement.compile(dialect=dialect)
    expanded = compiled.construct_expanded_state()
    processors = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect)
        for bind, name in compiled.bind_names.items()
    }
    processors.update(expanded.processors)
    params = {}
    for name, value in expanded.parameters.items():
        process = processors.get(name)
        params[name] = value if process is None or value is None else process(value)
    types = [column.type for column in statement.selected_columns]
    return CompiledRead(expanded.statement, params, types, dialect)


# Per connection: (statement, parameter types) -> the name it is prepared under.
_Prepared = dict[tuple[bytes, tuple[int, ...]], bytes]


class _Pool:
    """Connections of one event loop: at most `size` in use, idle ones kept for the next read.

    A connection is opened when none is idle (so a server that is down fails the read at once,
    rather than after a pool's wait), and dropped after any error that leaves it unusable.
    """

    def __init__(self, connect: Callable[[], Any], size: int, prepared_max: int) -> None:
        self.connect = connect
        self.slots = asyncio.Semaphore(size)
        self.prepared_max = prepared_max
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.prepared: dict[psycopg.AsyncConnection[Any], _Prepared] = {}

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self.slots:
            conn = self.idle.pop() if self.idle else await self.connect()
            try:
                yield conn
            finally:
                if conn.info.transaction_status is TransactionStatus.IDLE:
                    self.idle.append(conn)
                else:  # broken, closed, or left inside a statement by a cancellation
                    self.prepared.pop(conn, None)
                    if conn.info.transaction_status is TransactionStatus.ACTIVE:
                        with contextlib.suppress(Exception):  # the server stops the statement
                            await conn.cancel_safe(timeout=5)
                    conn.pgconn.finish()

    def close(self) -> None:
        """Close the idle connections."""
        while self.idle:
            conn = self.idle.pop()  # held here: deleted while open, psycopg would complain
            conn.pgconn.finish()
        self.prepared = {}

    async def read(self, conn: psycopg.AsyncConnection[Any], read: CompiledRead) -> list[Any]:
        """The rows of `read` on `conn`, prepared there on first use."""
        pgconn = conn.pgconn
        adapt = Transformer(conn)
        params = adapt.dump_sequence(read.values, [PyFormat.AUTO] * len(read.values))
        statements = self.prepared.setdefault(conn, {})
        key = (read.query, tuple(adapt.types or ()))
        name = statements.get(key)
        if name is None:
            if len(statements) >= self.prepared_max:  # each holds memory in its server process
                pgconn.send_query(b"DEALLOCATE ALL")
                _checked(conn, await _results(pgconn), pq.ExecStatus.COMMAND_OK)
                statements.clear()
            name = f"trends_read_{len(statements)}".encode()
            pgconn.send_prepare(name, read.query, param_types=adapt.types)
            _checked(conn, await _results(pgconn), pq.ExecStatus.COMMAND_OK)
            statements[key] = name
        pgconn.send_query_prepared(name, params, param_formats=adapt.formats)
        result = _checked(conn, await _results(pgconn), pq.ExecStatus.TUPLES_OK)
        adapt.set_pgresult(result)
        return read.rows(result, adapt.load_rows(0, result.ntuples, tuple))


async def _results(pgconn: pq.abc.PGconn) -> list[pq.abc.PGresult]:
    """The results of the command sent on `pgconn`, waited for on the running event loop."""
    loop = asyncio.get_running_loop()
    fd = pgconn.socket
    while pgconn.flush():  # what the socket did not take yet
        await _ready(loop.add_writer, loop.remove_writer, fd)
    results: list[pq.abc.PGresult] = []
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                return results
            results.append(result)
        await _ready(loop.add_reader, loop.remove_reader, fd)


async def _ready(add: Callable[..., Any], remove: Callable[[int], Any], fd: int) -> None:
    """Wait until the event loop finds `fd` ready (to read or to write: `add`'s)."""
    waiter = asyncio.get_running_loop().create_future()

    def ready() -> None:
        if not waiter.done():  # the callback may come again before the waiter resumes
            waiter.set_result(None)

    add(fd, ready)
    try:
        await waiter
    finally:
        remove(fd)


def _checked(
    conn: psycopg.AsyncConnection[Any], results: list[pq.abc.PGresult], status: pq.ExecStatus
) -> pq.abc.PGresult:
    """The one result of a command, if it has `status`; the server's error raised if not."""
    (result,) = results
    if result.status != status:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        raise psycopg.InterfaceError(f"unexpected result: {pq.ExecStatus(result.status).name}")
    return result


class Reads:
    """Compile statements once (`prepare`), read them as often as needed (`fetch`)."""

    def __init__(self, db: Database, pool_size: int, prepared_max: int = 200) -> None:
        self.db = db
        self.prepared_max = prepared_max  # statements prepared on each connection, at most
        self.dialect = db.engine.dialect
        self.asynchronous = db.dialect == "postgresql"
        # The dialect whose database renders JSON (schema/rendering.py): PostgreSQL's.
        self.rendering = self.dialect if self.asynchronous else None
        self.pool_size = pool_size
        self.pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
        # Called with the SQL of each statement read asynchronously, as SQLAlchemy's
        # before_cursor_execute is with those of the engine (which tests count).
        self.observers: list[Callable[[str], object]] = []

    def prepare(self, statements: Sequence[sa.Select[Any]]) -> Sequence[Any]:
        """What `fetch` reads: the statements, compiled where they are read asynchronously."""
        if not self.asynchronous:
            return list(statements)
        return [compile_read(s, self.dialect) for s in statements]

    async def fetch(self, prepared: Sequence[Any]) -> list[list[Any]]:
        """The rows of each prepared statement, read in order on one connection."""
        if not self.asynchronous:
            return await self.db.read(lambda s: [list(s.execute(st)) for st in prepared])
        pool = self._pool()
        async with pool.connection() as conn:
            results = []
            for read in prepared:
                for observe in self.observers:
                    observe(read.sql)
                results.append(await pool.read(conn, read))
            return results

    def _pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        pool = self.pools.get(loop)
        if pool is None:
            for other in self.pools.values():  # loops of apps served before (tests)
                other.close()
            self.pools = {loop: (pool := _Pool(self._connect, self.pool_size, self.prepared_max))}
        return pool

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        engine = self.db.engine
        args, kwargs = self.dialect.create_connect_args(engine.url)
        extra = postgres_connect_args(str(engine.url), self.db.statement_timeout_ms)
        return await psycopg.AsyncConnection.connect(*args, **{**kwargs, **extra}, autocommit=True)

    def close(self) -> None:
        """Close the idle connections."""
        for pool in self.pools.values():
            pool.close()
        self.pools = {}
