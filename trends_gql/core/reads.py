"""Statements compiled once and read as often as needed, without a worker thread on PostgreSQL.

Database.read runs a service in a worker thread through SQLAlchemy's session: each read pays a
thread hop, a pool ping and SQLAlchemy's execution, several times the cost of the statement
itself for a small one. A read repeated as is (the same document with the same variables) is
instead compiled once by SQLAlchemy (`Reads.prepare`: its final SQL text, its parameters as
bound, its columns' result processors) and then run by `Reads.fetch` on psycopg's asynchronous
connections, autocommit as the reads of Database.read and with the engine's statement timeout.
SQLite has no asynchronous driver here: there the same statements go through Database.read.
A statement built again for other values is not compiled again (core/compiled.py).

A read is sent through libpq itself (psycopg.pq), as a statement prepared once per connection,
and its result waited for with one reader callback of the event loop: psycopg's asynchronous
cursor costs about twice as much CPU for a small read (its generators and waits), as much as
the rest of a request by id. psycopg's own adapters still dump the parameters and load the rows.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.abc
import psycopg.errors
import sqlalchemy as sa
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import TransactionStatus
from sqlalchemy.orm import Session

from trends_gql.core.compiled import Compilations, CompiledRead
from trends_gql.core.db import Database, postgres_connect_args

# Whether a statement is read, given the rows of those read before it (Reads.fetch).
Wanted = Callable[[list[list[Any]]], bool]


@dataclass
class _Kept:
    """What a connection keeps between reads."""

    adapt: psycopg.abc.Transformer  # its adapters, with the loaders of the types they met
    # (statement, parameter types) -> the name it is prepared under.
    statements: dict[tuple[bytes, tuple[int, ...]], bytes] = field(default_factory=dict)


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
        self.kept: dict[psycopg.AsyncConnection[Any], _Kept] = {}

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        """A connection to read on, to give back with `release` (plain calls rather than a
        context manager: each read pays for it)."""
        await self.slots.acquire()
        try:
            return self.idle.pop() if self.idle else await self.connect()
        except BaseException:
            self.slots.release()
            raise

    async def release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Keep `conn` for the next read if it is usable; drop it otherwise."""
        try:
            if conn.info.transaction_status is TransactionStatus.IDLE:
                self.idle.append(conn)
                return
            # Broken, closed, or left inside a statement by a cancellation.
            self.kept.pop(conn, None)
            if conn.info.transaction_status is TransactionStatus.ACTIVE:
                with contextlib.suppress(Exception):  # the server stops the statement
                    await conn.cancel_safe(timeout=5)
            conn.pgconn.finish()
        finally:
            self.slots.release()

    def close(self) -> None:
        """Close the idle connections."""
        while self.idle:
            conn = self.idle.pop()  # held here: deleted while open, psycopg would complain
            conn.pgconn.finish()
        self.kept = {}

    async def read(self, conn: psycopg.AsyncConnection[Any], read: CompiledRead) -> list[Any]:
        """The rows of `read` on `conn`, prepared there on first use."""
        pgconn = conn.pgconn
        kept = self.kept.get(conn)
        if kept is None:
            kept = self.kept[conn] = _Kept(Transformer(conn))
        adapt, statements = kept.adapt, kept.statements
        params = adapt.dump_sequence(read.values, [PyFormat.AUTO] * len(read.values))
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
        self.compilations = Compilations(self.dialect)
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
        return [self.compilations.read(s) for s in statements]

    async def fetch(
        self, prepared: Sequence[Any], wanted: Sequence[Wanted | None] = ()
    ) -> list[list[Any]]:
        """The rows of each prepared statement, read in order on one connection; no rows for a
        statement whose condition in `wanted` (given the rows read before it) is false."""
        conditions = list(wanted) or [None] * len(prepared)
        if not self.asynchronous:

            def read_all(session: Session) -> list[list[Any]]:
                results: list[list[Any]] = []
                for statement, condition in zip(prepared, conditions, strict=True):
                    skipped = condition is not None and not condition(results)
                    results.append([] if skipped else list(session.execute(statement)))
                return results

            return await self.db.read(read_all)
        pool = self._pool()
        conn = await pool.acquire()
        try:
            results: list[list[Any]] = []
            for read, condition in zip(prepared, conditions, strict=True):
                if condition is not None and not condition(results):
                    results.append([])
                    continue
                for observe in self.observers:
                    observe(read.sql)
                results.append(await pool.read(conn, read))
            return results
        finally:
            await pool.release(conn)

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
