"""Export files: the trends of a filter, as CSV (the import format) or JSON, complete or absent."""

import enum
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.core.fields import FIELDS
from trends_gql.core.models import TREND_TABLE
from trends_gql.imports.csvio import write_csv
from trends_gql.trends.filters import TrendFilter, filter_clauses

FileFormat = Literal["csv", "json"]


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
    fmt: FileFormat = "csv",
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
