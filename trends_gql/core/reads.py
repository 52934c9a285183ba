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
"""

import asyncio
import contextlib
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
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


@dataclass
class CompiledRead:
    """One statement as psycopg takes it, and how its rows come back."""

    sql: str
    params: dict[str, Any]
    types: list[sa.types.TypeEngine[Any]]  # of the selected columns, in order
    dialect: sa.Dialect
    # From the columns the server describes (names and types, as SQLAlchemy reads them): the
    # row type and each column's result processor, made on first use.
    reading: tuple[Callable[..., Any], list[tuple[int, Processor]]] | None = field(default=None)

    def rows(self, cursor: psycopg.AsyncCursor[Any], found: list[tuple[Any, ...]]) -> list[Any]:
        """The rows of a result, their values converted as SQLAlchemy's column types convert."""
        if self.reading is None:
            self.reading = self._reading(cursor)
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
        self, cursor: psycopg.AsyncCursor[Any]
    ) -> tuple[Callable[..., Any], list[tuple[int, Processor]]]:
        dialect = self.dialect
        described = cursor.description or ()
        processors = []
        for i, (type_, column) in enumerate(zip(self.types, described, strict=True)):
            process = type_.dialect_impl(dialect).result_processor(dialect, column.type_code)
            if process is not None:
                processors.append((i, process))
        return _row_class([column.name for column in described]), processors


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


class _Pool:
    """Connections of one event loop: at most `size` in use, idle ones kept for the next read.

    A connection is opened when none is idle (so a server that is down fails the read at once,
    rather than after a pool's wait), and dropped after any error that leaves it unusable.
    """

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        self.connect = connect
        self.slots = asyncio.Semaphore(size)
        self.idle: list[psycopg.AsyncConnection[Any]] = []

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
                    conn.pgconn.finish()

    def close(self) -> None:
        while self.idle:
            conn = self.idle.pop()  # held here: deleted while open, psycopg would complain
            conn.pgconn.finish()


class Reads:
    """Compile statements once (`prepare`), read them as often as needed (`fetch`)."""

    def __init__(self, db: Database, pool_size: int) -> None:
        self.db = db
        self.dialect = db.engine.dialect
        self.asynchronous = db.dialect == "postgresql"
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
        async with self._pool().connection() as conn:
            results = []
            for read in prepared:
                for observe in self.observers:
                    observe(read.sql)
                cursor = conn.cursor()
                await cursor.execute(read.sql, read.params)
                results.append(read.rows(cursor, await cursor.fetchall()))
            return results

    def _pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        pool = self.pools.get(loop)
        if pool is None:
            for other in self.pools.values():  # loops of apps served before (tests)
                other.close()
            self.pools = {loop: (pool := _Pool(self._connect, self.pool_size))}
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
