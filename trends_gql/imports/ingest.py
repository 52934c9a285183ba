"""Import of trend CSV files: strict, streaming, batched, deduplicated, all rows or none."""

import contextlib
import logging
import select
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy.orm import Session

from trends_gql.core.db import mark_written, utcnow
from trends_gql.core.fields import FIELDS
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.validation import field_values, fingerprint_of
from trends_gql.imports.csvio import RowError, TrendCsvReader

log = logging.getLogger(__name__)

_COLUMNS = (*FIELDS, "fingerprint", "uploaded_at", "updated_at")
_INSERT_COLUMNS = ", ".join(_COLUMNS)


@dataclass
class ImportReport:
    """What an import did, or in a dry run would do."""

    file: str
    dry_run: bool = False
    encoding: str = ""
    delimiter: str = ""
    by_position: bool = False
    total: int = 0
    created: int = 0
    skipped: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.invalid == 0


class BatchWriter:
    """Inserts batches of rows, skipping known fingerprints; counts what it created.

    The inserts go through the driver's own connection, so a writer that created rows tells
    the session (mark_written): its commit then invalidates the caches.
    """

    in_flight = 0  # rows sent whose insert has not been counted yet

    def __init__(self, session: Session) -> None:
        self.session = session

    def created(self, count: int) -> int:
        """`count`, after noting that the transaction wrote trends if it is not 0."""
        if count:
            mark_written(self.session, TREND_TABLE.name)
        return count

    def begin(self) -> None:
        """Prepare the connection for the batches (after which `abort` can clean up)."""

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        """Insert `rows`; the rows created by the inserts that have finished since last asked."""
        raise NotImplementedError

    def finish(self) -> int:
        """Wait for inserts still running; the rows they created."""
        return 0

    def abort(self) -> None:
        """After a failure: leave the connection able to roll back."""
        with contextlib.suppress(Exception):  # the first failure is the one to report
            self.finish()


class _PostgresWriter(BatchWriter):
    """COPY into a scratch table, then one set-based insert that skips known fingerprints.

    The insert is sent without waiting for it: PostgreSQL maintains the indexes while we read
    and validate the next batch, and its count is collected before the next COPY.
    """

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        conn = session.connection().connection.driver_connection
        assert isinstance(conn, psycopg.Connection), "the postgresql+psycopg dialect"
        self.conn = conn
        self.cur = self.conn.cursor()
        self.types: list[int] = []

    def begin(self) -> None:
        self.cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS trend_import ON COMMIT DROP AS "
            f"SELECT {_INSERT_COLUMNS} FROM trend WITH NO DATA"
        )
        # Binary COPY (a third of text COPY's cost in Python) needs each column's exact type.
        self.cur.execute(f"SELECT {_INSERT_COLUMNS} FROM trend_import LIMIT 0")
        self.types = [column.type_code for column in self.cur.description or ()]

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        created = self.finish()
        statement = f"COPY trend_import ({_INSERT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        with self.cur.copy(statement) as copy:
            copy.set_types(self.types)
            for row in rows:
                copy.write_row(row)
        self.conn.pgconn.send_query(_INSERT_AND_EMPTY)
        self.in_flight = len(rows)
        return created

    def finish(self) -> int:
        if not self.in_flight:
            return 0
        self.in_flight = 0
        created, failed = 0, None
        while (result := self.conn.pgconn.get_result()) is not None:  # every result, then None
            if result.status == pq.ExecStatus.FATAL_ERROR:
                failed = failed or result
            elif result.command_status and result.command_status.startswith(b"INSERT"):
                created = int(result.command_tuples or 0)
        if failed is not None:
            raise psycopg.errors.error_from_result(failed, encoding=self.conn.info.encoding)
        return self.created(created)

    def abort(self) -> None:
        # A failure can come while a statement runs (a job timeout's signal, in between reading
        # its results): cancel it and read what is left, or the rollback would find it busy.
        self.in_flight = 0
        pgconn = self.conn.pgconn
        if pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
            self.conn.cancel_safe()
            while (result := pgconn.get_result()) is not None:
                if result.status == pq.ExecStatus.COPY_IN:
                    # Stopped in the middle of a COPY: the server waits for rows and does not
                    # hear the cancel, and libpq answers COPY_IN until the COPY is ended.
                    pgconn.put_copy_end(b"the import was stopped")
                    while pgconn.flush():  # what the socket did not take yet
                        select.select([], [pgconn.socket], [], 1)


_INSERT_AND_EMPTY = (
    f"INSERT INTO trend ({_INSERT_COLUMNS}) SELECT {_INSERT_COLUMNS} FROM trend_import "
    "ON CONFLICT (fingerprint) DO NOTHING; TRUNCATE trend_import"
).encode()


class _SqliteWriter(BatchWriter):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        raw = session.connection().connection.driver_connection
        assert isinstance(raw, sqlite3.Connection), "the sqlite dialect"
        self.raw = raw
        marks = ", ".join("?" for _ in _COLUMNS)
        self.sql = (
            f"INSERT INTO trend ({_INSERT_COLUMNS}) VALUES ({marks}) "
            "ON CONFLICT (fingerprint) DO NOTHING"
        )

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        # The rows the inserts changed (summed over the batch); not total_changes, which counts
        # what the summary's triggers change too.
        return self.created(self.raw.executemany(self.sql, rows).rowcount)


def _timestamp(session: Session) -> Any:
    """Now, in the form the raw driver stores for a UTCDateTime column."""
    dialect = session.get_bind().dialect
    # The dialect's own type (SQLite's DATETIME formats the text SQLAlchemy compares against);
    # the generic type would hand sqlite3 a datetime, which it stores with a "+00:00" suffix.
    process = TREND_TABLE.c.uploaded_at.type.dialect_impl(dialect).bind_processor(dialect)
    now = utcnow()
    return process(now) if process else now


def import_trends(
    session: Session,
    path: Path,
    *,
    dry_run: bool = False,
    batch_size: int = 5000,
    max_errors: int = 100,
    on_progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import a CSV file in one transaction: all rows, or none when any row is invalid.

    Commits on success; a dry run, or a file with invalid rows, is rolled back, and the
    counts say what would have happened. Raises CsvFormatError when the file is unreadable.
    """
    reader = TrendCsvReader(path)
    report = ImportReport(
        file=str(path), dry_run=dry_run, encoding=reader.encoding_name, delimiter=reader.delimiter
    )
    dialect = session.get_bind().dialect.name
    writer = _PostgresWriter(session) if dialect == "postgresql" else _SqliteWriter(session)
    now = _timestamp(session)
    batch: list[tuple[Any, ...]] = []
    sent = 0

    def count(created: int) -> None:
        report.created += created
        report.skipped = sent - writer.in_flight - report.created

    def flush() -> None:
        nonlocal sent
        sent += len(batch)
        count(writer.write(batch))
        batch.clear()
        if on_progress:
            on_progress(report)

    try:
        writer.begin()  # in here: a job timeout's signal can land in its statements too
        for row in reader:
            if report.total == 0 and reader.header:
                report.by_position = reader.header.by_position
                report.warnings = list(reader.header.warnings)
            report.total += 1
            if row.values is None:
                report.invalid += 1
                room = max_errors - len(report.errors)
                report.errors.extend(row.errors[: max(room, 0)])
                continue
            # Enum members are StrEnums: both drivers store them as their values.
            ordered = field_values(row.values)
            batch.append((*ordered, fingerprint_of(ordered), now, now))
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        count(writer.finish())
    except BaseException:
        with contextlib.suppress(Exception):  # the first failure is the one to report
            writer.abort()
        session.rollback()
        raise
    if dry_run or report.invalid:
        session.rollback()
        if not dry_run:
            report.created = report.skipped = 0
    else:
        session.commit()
    log.info(
        "import %s: %d rows, %d created, %d skipped, %d invalid%s",
        path,
        report.total,
        report.created,
        report.skipped,
        report.invalid,
        " (dry run)" if dry_run else "",
    )
    return report
