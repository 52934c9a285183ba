"""Export runs: their records, queueing one, and carrying it out to a file under BACKUP_DIR.

The life cycle (queued, running, succeeded or failed; the sweep of dead workers' runs) is the
one every run shares: core/runs.py. The file itself is written by exports/files.py.
"""

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from trends_gql.core import queue
from trends_gql.core import runs as life_cycle
from trends_gql.core.db import Database, utcnow
from trends_gql.core.fields import CHOICES
from trends_gql.core.models import ExportFormat, ExportRun, RunStatus
from trends_gql.core.settings import Settings
from trends_gql.exports.files import FileFormat, export_trends
from trends_gql.trends.filters import TrendFilter, filter_clauses

log = logging.getLogger(__name__)

EXPORTS_FOLDER = "exports"
MEDIA_TYPES = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.JSON: "application/json"}


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return getattr(value, "value", value)  # an enum member by its value


def filter_to_json(trend_filter: TrendFilter | None) -> dict[str, Any] | None:
    """The filter's conditions as plain JSON (enums by value, times in UTC); None without any."""
    if trend_filter is None:
        return None
    # An empty list is a condition (it matches nothing): kept.
    conditions = {k: v for k, v in vars(trend_filter).items() if v is not None}
    return {k: _to_json(v) for k, v in conditions.items()} or None


def _from_json(name: str, value: Any) -> Any:
    listed = name.removesuffix("_in")
    if name in CHOICES:
        return CHOICES[name](value)
    if listed != name:  # megatrend_in, or the list of an enum field
        return tuple(CHOICES[listed](v) for v in value) if listed in CHOICES else tuple(value)
    if name == "updated_since":
        return datetime.fromisoformat(value)
    return value


def filter_from_json(data: dict[str, Any] | None) -> TrendFilter | None:
    """The filter stored by `filter_to_json`."""
    if not data:
        return None
    return TrendFilter(**{k: _from_json(k, v) for k, v in data.items()})


def create_export_run(
    session: Session, fmt: ExportFormat, trend_filter: TrendFilter | None, triggered_by: str
) -> ExportRun:
    """Record a queued export; BadUserInput when the filter cannot be used."""
    filter_clauses(trend_filter)  # refuse a bad filter now rather than fail the job later
    run = ExportRun(
        format=fmt,
        filter=filter_to_json(trend_filter),
        triggered_by=triggered_by,
        created_at=utcnow(),
    )
    session.add(run)
    session.commit()
    return run


def request_export(
    db: Database,
    settings: Settings,
    fmt: ExportFormat,
    trend_filter: TrendFilter | None,
    triggered_by: str,
) -> ExportRun:
    """Record an export and queue its job; on ServiceUnavailable no run is left behind."""
    run = queue.enqueue_run(
        db,
        settings,
        db.call_sync(create_export_run, fmt, trend_filter, triggered_by),
        queue.EXPORT_JOB,
    )
    log.info("queued export run %d (%s) for %s", run.id, fmt.value, triggered_by)
    return run


def download_path(run: ExportRun | None) -> Path | None:
    """The file of a finished export, or None when there is none (yet, or any more)."""
    if run is None or run.status is not RunStatus.SUCCEEDED or not run.path:
        return None
    path = Path(run.path)
    return path if path.is_file() else None


def _finish(
    session: Session,
    run_id: int,
    status: RunStatus,
    message: str | None = None,
    row_count: int | None = None,
    path: Path | None = None,
) -> ExportRun:
    return life_cycle.finish_run(
        session,
        ExportRun,
        run_id,
        status,
        message,
        row_count=row_count,
        path=str(path) if path else None,
    )


def export_file(settings: Settings, run: ExportRun) -> Path:
    """Where a run's file goes: BACKUP_DIR/exports/trends_export_<id>_<UTC time>.<csv|json>."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    name = f"trends_export_{run.id}_{stamp}.{run.format.value.lower()}"
    return (settings.backup_dir / EXPORTS_FOLDER / name).resolve()


def execute_export_run(db: Database, settings: Settings, run_id: int) -> ExportRun:
    """Carry out a queued run: write its file and record the outcome."""
    queue.note_process()  # before it runs: a sweep can then tell at once when it dies
    run, started = db.call_sync(lambda s: life_cycle.start_run(s, ExportRun, run_id))
    if not started:
        log.warning("export run %d is %s, not queued: left as it is", run_id, run.status.value)
        return run
    path = export_file(settings, run)
    fmt: FileFormat = "csv" if run.format is ExportFormat.CSV else "json"
    try:
        with db.session() as session:
            count = export_trends(session, path, fmt, filter_from_json(run.filter))
    except OSError as exc:
        log.error("export run %d failed: cannot write %s: %s", run_id, path, exc)
        return db.call_sync(
            _finish, run_id, RunStatus.FAILED, f"cannot write the file: {exc.strerror or exc}"
        )
    except queue.JobTimeout:
        limit = f"JOB_TIMEOUT ({queue.current_timeout(settings.job_timeout)} s)"
        why = f"the export ran longer than {limit} and was stopped: no file was written"
        db.call_sync(_finish, run_id, RunStatus.FAILED, why)
        raise
    except Exception as exc:
        db.call_sync(_finish, run_id, RunStatus.FAILED, f"internal error: {type(exc).__name__}")
        raise
    log.info("export run %d: %d trends written to %s", run_id, count, path)
    return db.call_sync(_finish, run_id, RunStatus.SUCCEEDED, None, count, path)


def sweep_export_runs(db: Database, settings: Settings) -> list[ExportRun]:
    """Fail the export runs whose job died with its worker (no partial file is ever in place)."""
    return life_cycle.sweep(
        db,
        settings,
        ExportRun,
        lambda _run: {"row_count": None, "path": None},
        "no file was written",
    )
