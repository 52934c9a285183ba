"""Backups: every trend to a JSON file, pruning old ones, restoring one into an empty database.

A backup is one JSON document laid out a line at a time, so that it is written and read back
as a stream: the header with a `"trends": [` opening on the first line, one trend per line, and
`]}` on the last.
"""

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trends_gql.core.db import utcnow
from trends_gql.core.fields import FIELDS
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.settings import Settings
from trends_gql.core.validation import InvalidTrend, fingerprint, validate_trend

log = logging.getLogger(__name__)
T = TREND_TABLE.c

FORMAT = "trends-backup"
VERSION = 1
PREFIX = "trends_backup_"
NAME = re.compile(r"trends_backup_(\d{8}T\d{6}Z)(?:_(\d+))?\.json")
_OPEN = b',"trends":['
_CLOSE = b"]}"
_KEYS = frozenset({"id", *FIELDS, "fingerprint", "uploaded_at", "updated_at"})
_BATCH = 1000


class BackupError(ValueError):
    """A file that is not a usable backup, or a database a backup cannot go into."""


def _records(session: Session) -> Iterator[dict[str, Any]]:
    # The total comes with every row of one statement: one snapshot, on SQLite as on PostgreSQL.
    total = sa.func.count().over().label("total")
    stmt = sa.select(
        T.id, *(T[f] for f in FIELDS), T.fingerprint, T.uploaded_at, T.updated_at, total
    ).order_by(T.id)
    for row in session.execute(stmt.execution_options(yield_per=2000)).mappings():
        yield dict(row)


def data_state(session: Session) -> dict[str, Any]:
    """A summary of the trend table that every write changes: its count, the sum and largest of
    its ids, its latest upload and update. One aggregate query."""
    count, id_sum, max_id, uploaded, updated = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(T.id), 0),
            sa.func.max(T.id),
            sa.func.max(T.uploaded_at),
            sa.func.max(T.updated_at),
        )
    ).one()
    return {
        "count": count,
        "id_sum": int(id_sum),
        "max_id": max_id,
        "last_uploaded_at": uploaded.isoformat() if uploaded else None,
        "last_updated_at": updated.isoformat() if updated else None,
    }


def _write_backup(session: Session, out: IO[bytes], created_at: datetime) -> int:
    header = {"format": FORMAT, "version": VERSION, "created_at": created_at.isoformat()}
    # Read before the rows: a write in between makes the next backup see a change, never miss one.
    header["state"] = data_state(session)
    count = 0
    for record in _records(session):
        if count == 0:
            header["count"] = record["total"]
            out.write(orjson.dumps(header)[:-1] + _OPEN + b"\n")
        else:
            out.write(b",\n")
        del record["total"]
        record["fingerprint"] = record["fingerprint"].hex()
        out.write(orjson.dumps(record))
        count += 1
    if count == 0:
        header["count"] = 0
        out.write(orjson.dumps(header)[:-1] + _OPEN + b"\n")
    else:
        out.write(b"\n")
    out.write(_CLOSE + b"\n")
    return count


def _claim_name(folder: Path, tmp: Path, stamp: str) -> Path:
    """Link the finished file to the first free name of its second; the name appears complete."""
    seq = 0
    while True:
        path = folder / f"{PREFIX}{stamp}{f'_{seq}' if seq else ''}.json"
        try:
            os.link(tmp, path)
            return path
        except FileExistsError:
            seq += 1


def create_backup(session: Session, settings: Settings) -> Path:
    """Write every trend to BACKUP_DIR/trends_backup_<UTC time>.json; return its path."""
    folder = settings.backup_dir
    folder.mkdir(parents=True, exist_ok=True)
    created_at = utcnow()
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{PREFIX}", suffix=".part")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            count = _write_backup(session, out, created_at)
            out.flush()
            os.fsync(out.fileno())
        path = _claim_name(folder, tmp, created_at.strftime("%Y%m%dT%H%M%SZ"))
    finally:
        tmp.unlink(missing_ok=True)
    log.info("backup of %d trends written to %s", count, path)
    return path


def unchanged_since(session: Session, settings: Settings) -> Path | None:
    """The newest backup, when it holds the data as it is now; None when there was a write
    since, or when it cannot tell (an unreadable backup, one of a release that did not record
    the state)."""
    newest = list_backups(settings)[-1:]
    if not newest:
        return None
    try:
        with newest[0].open("rb") as lines:
            state = _header(next(lines, b"")).get("state")
    except (OSError, BackupError):
        return None
    return newest[0] if state is not None and state == data_state(session) else None


def list_backups(settings: Settings) -> list[Path]:
    """The backups of BACKUP_DIR, oldest first (by the time and sequence in their names)."""
    if not settings.backup_dir.is_dir():
        return []
    found = []
    for path in settings.backup_dir.iterdir():
        match = NAME.fullmatch(path.name)
        if match and path.is_file():
            found.append(((match[1], int(match[2] or 0)), path))
    return [path for _, path in sorted(found)]


def prune_backups(settings: Settings) -> list[Path]:
    """Delete all but the newest BACKUP_KEEP backups (no other file); return the deleted."""
    backups = list_backups(settings)
    old = backups[: max(len(backups) - settings.backup_keep, 0)]
    for path in old:
        path.unlink(missing_ok=True)
        log.info("old backup %s deleted", path)
    return old


def _header(line: bytes) -> dict[str, Any]:
    if not line.rstrip(b"\r\n").endswith(_OPEN):
        raise BackupError("not a trends backup: the first line is not a backup header")
    try:
        header = orjson.loads(line.rstrip(b"\r\n")[: -len(_OPEN)] + b"}")
    except orjson.JSONDecodeError:
        raise BackupError("not a trends backup: the header is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError("not a trends backup: the header names another format")
    if header.get("version") != VERSION:
        raise BackupError(f"unsupported backup version {header.get('version')!r}")
    if not isinstance(header.get("count"), int) or header["count"] < 0:
        raise BackupError("corrupt backup: the header has no valid count")
    return header


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment


def _row(line: bytes, number: int) -> dict[str, Any]:
    """The trend table row of one record line; BackupError when it is not a valid trend."""
    try:
        record = orjson.loads(line.rstrip(b"\r\n").removesuffix(b","))
        if not isinstance(record, dict) or set(record) != _KEYS:
            raise ValueError("unexpected fields")
        values = validate_trend({f: record[f] for f in FIELDS})
        values["fingerprint"] = fingerprint(values)
        if values["fingerprint"].hex() != record["fingerprint"]:
            raise ValueError("the fingerprint does not match the fields")
        if not isinstance(record["id"], int) or isinstance(record["id"], bool):
            raise ValueError("the id is not an integer")
        times = {k: _moment(record[k]) for k in ("uploaded_at", "updated_at")}
    except (orjson.JSONDecodeError, InvalidTrend, ValueError, TypeError) as exc:
        raise BackupError(f"corrupt backup: line {number}: {exc}") from None
    return {"id": record["id"], **values, **times}


def _rows(lines: Iterator[bytes], expected: int) -> Iterator[dict[str, Any]]:
    # Line 1 is the header; trends start on line 2.
    for number, line in enumerate(lines, start=2):
        if line.rstrip(b"\r\n") == _CLOSE:
            if any(rest.strip() for rest in lines):
                raise BackupError(f"corrupt backup: data after the end, line {number}")
            if number - 2 != expected:
                raise BackupError(
                    f"corrupt backup: {number - 2} trends, the header says {expected}"
                )
            return
        yield _row(line, number)
    raise BackupError("corrupt backup: the file ends before its last line (truncated?)")


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    try:
        session.execute(sa.insert(TREND_TABLE), rows)
    except IntegrityError as exc:
        raise BackupError(f"corrupt backup: duplicate trends or ids ({exc.orig})") from None


def restore_backup(session: Session, path: Path) -> int:
    """Load a backup into an empty trend table in one transaction; return the trend count."""
    bind = session.get_bind()
    if not sa.inspect(bind).has_table(TREND_TABLE.name):
        raise BackupError("the database has no trend table: run `trends migrate` first")
    try:
        if bind.dialect.name == "postgresql":
            # Nothing may slip in between the emptiness check and the commit.
            session.execute(sa.text("LOCK TABLE trend IN SHARE ROW EXCLUSIVE MODE"))
        if session.execute(sa.select(T.id).limit(1)).first() is not None:
            raise BackupError("the database already holds trends: restore needs an empty one")
        with path.open("rb") as lines:
            header = _header(next(lines, b""))
            count, batch = 0, []
            for row in _rows(lines, header["count"]):
                batch.append(row)
                if len(batch) >= _BATCH:
                    _insert(session, batch)
                    count, batch = count + len(batch), []
            if batch:
                _insert(session, batch)
                count += len(batch)
        if count and bind.dialect.name == "postgresql":
            # Ids were given, not drawn: move the sequence past them for later inserts.
            session.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('trend', 'id'), max(id)) FROM trend")
            )
    except BaseException:
        session.rollback()
        raise
    session.commit()
    log.info("restored %d trends from %s (backup of %s)", count, path, header["created_at"])
    return count
