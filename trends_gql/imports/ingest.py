"""Import of trend CSV files (strict, streaming, batched, deduplicated) and export."""

import contextlib
import enum
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import psycopg
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.orm import Session

from trends_gql.core.db import utcnow
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.validation import FIELDS, field_values, fingerprint_of
from trends_gql.imports.csvio import RowError, TrendCsvReader, write_csv
from trends_gql.trends.queries import TrendFilter, filter_clauses

log = logging.getLogger(__name__)

ExportFormat = Literal["csv", "json"]
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
    """Inserts batches of rows, skipping known fingerprints; counts what it created."""

    in_flight = 0  # rows sent whose insert has not been counted yet

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        """Insert `rows`; the rows created by the inserts that have finished since last asked."""
        raise NotImplementedError

    def finish(self) -> int:
        """Wait for inserts still running; the rows they created."""
        return 0


class _PostgresWriter(BatchWriter):
    """COPY into a scratch table, then one set-based insert that skips known fingerprints.

    The insert is sent without waiting for it: PostgreSQL maintains the indexes while we read
    and validate the next batch, and its count is collected before the next COPY.
    """

    def __init__(self, session: Session) -> None:
        self.conn = session.connection().connection.driver_connection
        self.cur = self.conn.cursor()
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
        return created


_INSERT_AND_EMPTY = (
    f"INSERT INTO trend ({_INSERT_COLUMNS}) SELECT {_INSERT_COLUMNS} FROM trend_import "
    "ON CONFLICT (fingerprint) DO NOTHING; TRUNCATE trend_import"
).encode()


class _SqliteWriter(BatchWriter):
    def __init__(self, session: Session) -> None:
        self.raw = session.connection().connection.driver_connection
        marks = ", ".join("?" for _ in _COLUMNS)
        self.sql = (
            f"INSERT INTO trend ({_INSERT_COLUMNS}) VALUES ({marks}) "
            "ON CONFLICT (fingerprint) DO NOTHING"
        )

    def write(self, rows: list[tuple[Any, ...]]) -> int:
        before = self.raw.total_changes
        self.raw.executemany(self.sql, rows)
        return int(self.raw.total_changes - before)


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
            writer.finish()
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


def iter_trends(
    session: Session, trend_filter: TrendFilter | None = None
) -> Iterator[dict[str, Any]]:
    """Every trend matching the filter, in id order, streamed from the database."""
    t = TREND_TABLE.c
    stmt = sa.select(t.id, *(t[f] for f in FIELDS), t.uploaded_at, t.updated_at).order_by(t.id)
    if trend_filter:
        stmt = stmt.where(*filter_clauses(trend_filter))
    result = session.execute(stmt.execution_options(yield_per=2000))
    for row in result.mappings():
        yield dict(row)


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError


def _write_json(records: Iterator[dict[str, Any]], out: Any) -> int:
    count = 0
    out.write("[")
    for record in records:
        out.write(",\n" if count else "\n")
        out.write(orjson.dumps(record, default=_json_default).decode())
        count += 1
    out.write("\n]\n")
    return count


def export_trends(
    session: Session,
    path: Path,
    fmt: ExportFormat = "csv",
    trend_filter: TrendFilter | None = None,
) -> int:
    """Write matching trends to `path` (CSV in the import format, or JSON); return the count.

    The file appears complete or not at all: it is written aside and renamed into place.
    """
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown export format {fmt!r}: csv or json")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            records = iter_trends(session, trend_filter)
            count = write_csv(records, out) if fmt == "csv" else _write_json(records, out)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; an export is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
