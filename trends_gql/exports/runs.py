"""Export runs: their records, queueing one, and carrying it out to a file under BACKUP_DIR."""

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.core import queue
from trends_gql.core.db import Database, utcnow
from trends_gql.core.errors import NotFound
from trends_gql.core.models import (
    ExportFormat,
    ExportRun,
    ImpactStrength,
    RunStatus,
    Steepl,
    TechnologyReadinessLevel,
)
from trends_gql.core.pagination import RecordPage, newest_first
from trends_gql.core.settings import Settings
from trends_gql.imports.ingest import export_trends
from trends_gql.trends.queries import TrendFilter, filter_clauses

log = logging.getLogger(__name__)
R = ExportRun.__table__.c  # type: ignore[attr-defined]

EXPORT_JOB = "jobs.exports.export_job"
EXPORTS_FOLDER = "exports"
MEDIA_TYPES = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.JSON: "application/json"}
_ENUMS: dict[str, Any] = {
    "technology_readiness_level": TechnologyReadinessLevel,
    "impact_strength": ImpactStrength,
    "steepl": Steepl,
}


def filter_to_json(trend_filter: TrendFilter | None) -> dict[str, Any] | None:
    """The filter's conditions as plain JSON (enum values by their value); None when empty."""
    if trend_filter is None:
        return None
    conditions = {k: v for k, v in vars(trend_filter).items() if v is not None}
    return {k: getattr(v, "value", v) for k, v in conditions.items()} or None


def filter_from_json(data: dict[str, Any] | None) -> TrendFilter | None:
    """The filter stored by `filter_to_json`."""
    if not data:
        return None
    return TrendFilter(**{k: _ENUMS[k](v) if k in _ENUMS else v for k, v in data.items()})


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
        db, settings, db.call(create_export_run, fmt, trend_filter, triggered_by), EXPORT_JOB
    )
    log.info("queued export run %d (%s) for %s", run.id, fmt.value, triggered_by)
    return run


def get_export_run(session: Session, run_id: int) -> ExportRun | None:
    """One run, or None."""
    return session.get(ExportRun, run_id)


def list_export_runs(
    session: Session, first: int = 20, after: str | None = None
) -> RecordPage[ExportRun]:
    """Runs, newest first, in pages."""
    return newest_first(session, ExportRun, first, after)


def download_path(run: ExportRun | None) -> Path | None:
    """The file of a finished export, or None when there is none (yet, or any more)."""
    if run is None or run.status is not RunStatus.SUCCEEDED or not run.path:
        return None
    path = Path(run.path)
    return path if path.is_file() else None


def _start(session: Session, run_id: int) -> tuple[ExportRun, bool]:
    run = session.get(ExportRun, run_id)
    if run is None:
        raise NotFound(f"no export run {run_id}")
    if run.status is not RunStatus.QUEUED:
        return run, False
    run.status, run.started_at = RunStatus.RUNNING, utcnow()
    session.commit()
    return run, True


def _finish(
    session: Session,
    run_id: int,
    status: RunStatus,
    message: str | None = None,
    row_count: int | None = None,
    path: Path | None = None,
) -> ExportRun:
    run = session.get(ExportRun, run_id)
    assert run is not None
    run.status, run.message, run.finished_at = status, message, utcnow()
    run.row_count, run.path = row_count, str(path) if path else None
    session.commit()
    return run


def export_file(settings: Settings, run: ExportRun) -> Path:
    """Where a run's file goes: BACKUP_DIR/exports/trends_export_<id>_<UTC time>.<csv|json>."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    name = f"trends_export_{run.id}_{stamp}.{run.format.value.lower()}"
    return (settings.backup_dir / EXPORTS_FOLDER / name).resolve()


def execute_export_run(db: Database, settings: Settings, run_id: int) -> ExportRun:
    """Carry out a queued run: write its file and record the outcome."""
    run, started = db.call(_start, run_id)
    if not started:
        log.warning("export run %d is %s, not queued: left as it is", run_id, run.status.value)
        return run
    path = export_file(settings, run)
    fmt = "csv" if run.format is ExportFormat.CSV else "json"
    try:
        with db.session() as session:
            count = export_trends(session, path, fmt, filter_from_json(run.filter))
    except OSError as exc:
        log.error("export run %d failed: cannot write %s: %s", run_id, path, exc)
        return db.call(
            _finish, run_id, RunStatus.FAILED, f"cannot write the file: {exc.strerror or exc}"
        )
    except Exception as exc:
        db.call(_finish, run_id, RunStatus.FAILED, f"internal error: {type(exc).__name__}")
        raise
    log.info("export run %d: %d trends written to %s", run_id, count, path)
    return db.call(_finish, run_id, RunStatus.SUCCEEDED, None, count, path)


def active_export_runs(session: Session) -> list[ExportRun]:
    """Export runs queued or running."""
    stmt = sa.select(ExportRun).where(
        ExportRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING))  # type: ignore[attr-defined]
    )
    return list(session.scalars(stmt))


def fail_abandoned_export(db: Database, run_id: int, why: str) -> ExportRun | None:
    """End an export run whose worker died (its partial file was never renamed into place)."""
    run = db.call(get_export_run, run_id)
    if run is None or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return None
    log.warning("export run %d failed: %s", run_id, why)
    return db.call(_finish, run_id, RunStatus.FAILED, why)
