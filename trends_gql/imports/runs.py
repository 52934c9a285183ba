"""Import runs: their records, and carrying one out from queued file to filed-away outcome.

The life cycle (queued, running, succeeded or failed; the sweep of dead workers' runs) is the
one every run shares: core/runs.py.
"""

import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.core import queue
from trends_gql.core import runs as life_cycle
from trends_gql.core.db import Database, utcnow
from trends_gql.core.models import ImportRun, RunSource, RunStatus, table_of
from trends_gql.core.settings import Settings
from trends_gql.imports import media
from trends_gql.imports.csvio import CsvFormatError, TrendCsvReader
from trends_gql.imports.ingest import ImportReport, import_trends

log = logging.getLogger(__name__)
R = table_of(ImportRun).c
# A failed import was rolled back: it created and skipped nothing. How far it got
# (rows_processed) stays, to show where it stopped.
ROLLED_BACK = {"rows_created": 0, "rows_skipped": 0}


def create_import_run(
    session: Session,
    *,
    file_name: str | None,
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


def _previous_success(session: Session, run: ImportRun) -> ImportRun | None:
    stmt = (
        sa.select(ImportRun)
        .where(R.sha256 == run.sha256, R.status == RunStatus.SUCCEEDED, ~R.dry_run, R.id != run.id)
        .order_by(R.id)
    )
    return session.scalars(stmt).first()


def _total(session: Session, run_id: int, rows: int) -> None:
    # Known before the first batch, so that progress reads as "n of total" from the start.
    session.execute(
        sa.update(ImportRun)
        .where(R.id == run_id, R.status == RunStatus.RUNNING)
        .values(rows_total=rows)
    )
    session.commit()


def _progress(session: Session, run_id: int, report: ImportReport) -> None:
    # Only how far it got: what it created is not in the table until its transaction commits,
    # so created and skipped are recorded with the outcome.
    session.execute(
        sa.update(ImportRun)
        .where(R.id == run_id, R.status == RunStatus.RUNNING)  # not over a failure recorded
        .values(rows_processed=report.total)
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
    """Record a run's outcome (and where its file went); a failed run created nothing."""
    outcome = _outcome(report, path)
    if status is RunStatus.FAILED:
        outcome.update(ROLLED_BACK)
    return life_cycle.finish_run(session, ImportRun, run_id, status, message, **outcome)


def _outcome(report: ImportReport | None, path: Path | None) -> dict[str, Any]:
    """The run's fields that record what the import did and where its file is."""
    outcome: dict[str, Any] = {}
    if report is not None:
        outcome.update(
            rows_total=report.total,
            rows_processed=report.total,
            rows_created=report.created,
            rows_skipped=report.skipped,
            rows_invalid=report.invalid,
            errors=[asdict(e) for e in report.errors],
        )
    if path is not None:
        outcome["stored_path"] = str(path)
    return outcome


def _import(
    db: Database, settings: Settings, run: ImportRun
) -> tuple[RunStatus, str | None, ImportReport | None]:
    previous = None if run.dry_run else db.call_sync(_previous_success, run)
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
    record = db.dialect != "sqlite"
    past_timeout = queue.deadline_check()

    def progress(report: ImportReport) -> None:
        past_timeout()
        if record:
            db.call_sync(_progress, run.id, report)

    try:
        if record:
            db.call_sync(_total, run.id, TrendCsvReader(Path(run.stored_path)).count_rows())
        with db.session() as session:
            report = import_trends(
                session,
                Path(run.stored_path),
                dry_run=run.dry_run,
                batch_size=settings.import_batch_size,
                max_errors=settings.import_max_errors,
                on_progress=progress,
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
    """Carry out a queued run: import its file, record the outcome, file the file away.

    A run that is not queued (another job took it, or it was failed meanwhile) is left as it is.
    """
    queue.note_process()  # before it runs: a sweep can then tell at once when it dies
    run, started = db.call_sync(life_cycle.start_run, ImportRun, run_id)
    if not started:
        log.warning("import run %d is %s, not queued: left as it is", run_id, run.status.value)
        return run, None
    try:
        status, message, report = _import(db, settings, run)
    except BaseException as exc:
        message = _failure(settings, exc)
        path = _file_away(settings, run, RunStatus.FAILED, message, None)
        db.call_sync(finish_run, run_id, RunStatus.FAILED, message, None, path)
        raise
    path = _file_away(settings, run, status, message, report)
    run = db.call_sync(finish_run, run_id, status, message, report, path)
    return run, report  # the caller logs the outcome (the worker's job, with its duration)


def _failure(settings: Settings, exc: BaseException) -> str:
    """Why an import that raised failed (its transaction was rolled back)."""
    if isinstance(exc, queue.JobTimeout):
        limit = f"JOB_TIMEOUT ({queue.current_timeout(settings.job_timeout)} s)"
        return f"the import ran longer than {limit} and was stopped: nothing was imported"
    if isinstance(exc, Exception):
        return f"internal error: {type(exc).__name__}: nothing was imported"
    return f"stopped before it ended ({type(exc).__name__}): nothing was imported"


def sweep_import_runs(db: Database, settings: Settings) -> list[ImportRun]:
    """Fail the runs whose job died with its worker (they created nothing: the import's
    transaction died with it); put their files back in the media folder."""

    def release(run: ImportRun) -> dict[str, Any]:
        path = Path(run.stored_path)
        if run.source is RunSource.CLI or not os.path.lexists(path):
            return dict(ROLLED_BACK)
        return {**ROLLED_BACK, **_outcome(None, media.release(path, settings.media_dir))}

    return life_cycle.sweep(db, settings, ImportRun, release, "nothing was imported")
