"""Import runs: their records, and carrying one out from queued file to filed-away outcome."""

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.cache import store as cache
from trends_gql.core.db import Database, utcnow
from trends_gql.core.errors import NotFound
from trends_gql.core.models import ImportRun, RunSource, RunStatus
from trends_gql.core.pagination import RecordPage, newest_first
from trends_gql.core.settings import Settings
from trends_gql.imports import media
from trends_gql.imports.csvio import CsvFormatError
from trends_gql.imports.ingest import ImportReport, import_trends

log = logging.getLogger(__name__)
R = ImportRun.__table__.c  # type: ignore[attr-defined]
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def create_import_run(
    session: Session,
    *,
    file_name: str,
    path: Path,
    sha256: str,
    source: RunSource,
    triggered_by: str,
    dry_run: bool = False,
) -> ImportRun:
    """Record a queued run of one file."""
    run = ImportRun(
        file_name=media.display_name(file_name),
        stored_path=str(path),
        sha256=sha256,
        source=source,
        dry_run=dry_run,
        triggered_by=triggered_by,
        created_at=utcnow(),
    )
    session.add(run)
    session.commit()
    return run


def get_import_run(session: Session, run_id: int) -> ImportRun | None:
    """One run, or None."""
    return session.get(ImportRun, run_id)


def list_import_runs(
    session: Session, first: int = 20, after: str | None = None
) -> RecordPage[ImportRun]:
    """Runs, newest first, in pages."""
    return newest_first(session, ImportRun, first, after)


def active_runs(session: Session) -> Sequence[ImportRun]:
    """Runs queued or running."""
    return session.scalars(sa.select(ImportRun).where(R.status.in_(ACTIVE))).all()


def _previous_success(session: Session, run: ImportRun) -> ImportRun | None:
    stmt = (
        sa.select(ImportRun)
        .where(R.sha256 == run.sha256, R.status == RunStatus.SUCCEEDED, ~R.dry_run, R.id != run.id)
        .order_by(R.id)
    )
    return session.scalars(stmt).first()


def _start(session: Session, run_id: int) -> ImportRun:
    run = session.get(ImportRun, run_id)
    if run is None:
        raise NotFound(f"no import run {run_id}")
    run.status, run.started_at = RunStatus.RUNNING, utcnow()
    session.commit()
    return run


def _progress(session: Session, run_id: int, report: ImportReport) -> None:
    session.execute(
        sa.update(ImportRun)
        .where(R.id == run_id)
        .values(
            rows_processed=report.total, rows_created=report.created, rows_skipped=report.skipped
        )
    )
    session.commit()


def finish_run(
    session: Session,
    run_id: int,
    status: RunStatus,
    message: str | None = None,
    report: ImportReport | None = None,
    path: Path | None = None,
) -> ImportRun:
    """Record a run's outcome (and where its file went)."""
    run = session.get(ImportRun, run_id)
    assert run is not None
    run.status, run.message, run.finished_at = status, message, utcnow()
    if report is not None:
        run.rows_total = run.rows_processed = report.total
        run.rows_created, run.rows_skipped = report.created, report.skipped
        run.rows_invalid = report.invalid
        run.errors = [asdict(e) for e in report.errors]
    if path is not None:
        run.stored_path = str(path)
    session.commit()
    return run


def _import(
    db: Database, settings: Settings, run: ImportRun
) -> tuple[RunStatus, str | None, ImportReport | None]:
    previous = None if run.dry_run else db.call(_previous_success, run)
    if previous is not None:
        report = ImportReport(
            file=run.file_name, total=previous.rows_total, skipped=previous.rows_total
        )
        return (
            RunStatus.SUCCEEDED,
            f"the same file was imported by run {previous.id}: not read again",
            report,
        )
    # SQLite has one writer at a time: progress writes would wait for the import's transaction.
    record = None if db.dialect == "sqlite" else (lambda r: db.call(_progress, run.id, r))
    try:
        with db.session() as session:
            report = import_trends(
                session,
                Path(run.stored_path),
                dry_run=run.dry_run,
                batch_size=settings.import_batch_size,
                max_errors=settings.import_max_errors,
                on_progress=record,
            )
    except CsvFormatError as exc:
        return RunStatus.FAILED, str(exc), None
    except FileNotFoundError:
        return RunStatus.FAILED, "the file is gone", None
    if not report.ok:
        return RunStatus.FAILED, f"{report.invalid} invalid rows: nothing was imported", report
    return RunStatus.SUCCEEDED, None, report


def _file_away(
    settings: Settings,
    run: ImportRun,
    status: RunStatus,
    message: str | None,
    report: ImportReport | None,
) -> Path:
    path = Path(run.stored_path)
    if run.source is RunSource.CLI or not os.path.lexists(path):
        return path
    details = {
        "file_name": run.file_name,
        "message": message,
        "errors": [asdict(e) for e in report.errors] if report else [],
    }
    return media.file_away(path, settings.media_dir, status is RunStatus.SUCCEEDED, details)


def execute_import_run(
    db: Database, settings: Settings, run_id: int
) -> tuple[ImportRun, ImportReport | None]:
    """Carry out a queued run: import its file, record the outcome, file the file away."""
    run = db.call(_start, run_id)
    try:
        status, message, report = _import(db, settings, run)
    except Exception as exc:
        message = f"internal error: {type(exc).__name__}"
        path = _file_away(settings, run, RunStatus.FAILED, message, None)
        db.call(finish_run, run_id, RunStatus.FAILED, message, None, path)
        raise
    path = _file_away(settings, run, status, message, report)
    run = db.call(finish_run, run_id, status, message, report, path)
    if run.rows_created and not run.dry_run:
        cache.invalidate(settings)
    log.info(
        "import run %d (%s) %s: %d created, %d skipped, %d invalid%s",
        run.id,
        run.file_name,
        status.value,
        run.rows_created,
        run.rows_skipped,
        run.rows_invalid,
        f" ({message})" if message else "",
    )
    return run, report


def fail_abandoned_run(db: Database, settings: Settings, run_id: int, why: str) -> ImportRun | None:
    """End a run whose worker died; put its file back in the media folder for the next scan."""
    run = db.call(get_import_run, run_id)
    if run is None or run.status not in ACTIVE:
        return None  # it ended meanwhile
    path = Path(run.stored_path)
    moved = None
    if run.source is not RunSource.CLI and os.path.lexists(path):
        moved = media.release(path, settings.media_dir)
    log.warning("import run %d (%s) failed: %s", run.id, run.file_name, why)
    return db.call(finish_run, run.id, RunStatus.FAILED, why, None, moved)
