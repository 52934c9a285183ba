"""The life cycle every run shares (import and export runs): queued, running, then an outcome.

A run is recorded QUEUED and its job queued; the job starts it (RUNNING, only from QUEUED) and
records how it ended (SUCCEEDED or FAILED, a message, the finish time, what it produced). A run
whose worker died (or whose job was lost) is failed by a sweep, which asks RQ how its job ended
and whether the process carrying it out is alive: queue.dead_job.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import redis
import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from trends_gql.core import queue
from trends_gql.core.db import Database, utcnow
from trends_gql.core.errors import NotFound
from trends_gql.core.models import ExportRun, ImportRun, RunStatus, table_of
from trends_gql.core.pagination import RecordPage, newest_first
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

RunT = TypeVar("RunT", ImportRun, ExportRun)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
# How a run is named in messages and logs.
NOUNS: dict[type[Any], str] = {ImportRun: "import run", ExportRun: "export run"}


def get_run(session: Session, model: type[RunT], run_id: int) -> RunT | None:
    """One run, or None."""
    return session.get(model, run_id)


def list_runs(
    session: Session, model: type[RunT], first: int = 20, after: str | None = None
) -> RecordPage[RunT]:
    """Runs, newest first, in pages."""
    return newest_first(session, model, first, after)


def active_runs(session: Session, model: type[RunT]) -> list[RunT]:
    """Runs queued or running."""
    status = table_of(model).c.status
    return list(session.scalars(sa.select(model).where(status.in_(ACTIVE))))


def start_run(session: Session, model: type[RunT], run_id: int) -> tuple[RunT, bool]:
    """Mark a queued run running: (the run, True); (the run, False) when it is not queued."""
    run = session.get(model, run_id)
    if run is None:
        raise NotFound(f"no {NOUNS[model]} {run_id}")
    if run.status is not RunStatus.QUEUED:
        return run, False
    run.status, run.started_at = RunStatus.RUNNING, utcnow()
    session.commit()
    return run, True


def finish_run(
    session: Session,
    model: type[RunT],
    run_id: int,
    status: RunStatus,
    message: str | None = None,
    **outcome: Any,
) -> RunT:
    """Record a run's outcome: its status, message and finish time, and the model's `outcome`."""
    run = session.get(model, run_id)
    assert run is not None
    run.status, run.message, run.finished_at = status, message, utcnow()
    for name, value in outcome.items():
        setattr(run, name, value)
    session.commit()
    return run


def _fail_if_active(
    session: Session,
    model: type[RunT],
    run_id: int,
    why: str,
    release: Callable[[RunT], dict[str, Any]] | None,
) -> RunT | None:
    # One conditional update, so that a run that ended meanwhile keeps its outcome and only one
    # of several sweeps releases what it held.
    table = table_of(model)
    update = (
        sa.update(table)
        .where(table.c.id == run_id, table.c.status.in_(ACTIVE))
        .values(status=RunStatus.FAILED, message=why, finished_at=utcnow())
    )
    # An UPDATE's result is a CursorResult; Session.execute is typed for any statement.
    failed = cast(CursorResult[Any], session.execute(update))
    if failed.rowcount != 1:
        session.rollback()
        return None
    run = session.get(model, run_id, populate_existing=True)
    assert run is not None
    for name, value in (release(run) if release else {}).items():
        setattr(run, name, value)
    session.commit()
    return run


def abandoned_message(model: type[Any], state: str, was_running: bool, consequence: str) -> str:
    """Why a run whose job died failed, in words its reader can act on."""
    noun = NOUNS[model].removesuffix(" run")
    if was_running:
        return (
            f"the worker running this {noun} stopped before it ended (killed or crashed; "
            f"its job is {state}): {consequence}"
        )
    if state == "lost":
        return (
            f"the job of this {noun} was lost from the queue before a worker took it (Redis "
            f"restarted without its data?): {consequence}"
        )
    return (
        f"the worker that took this {noun} stopped before starting it (its job is {state}; "
        f"see the worker's log): {consequence}"
    )


def sweep(
    db: Database,
    settings: Settings,
    model: type[RunT],
    release: Callable[[RunT], dict[str, Any]] | None = None,
    consequence: str = "nothing was done",
) -> list[RunT]:
    """Fail the active runs whose job died with its worker (or was lost); the runs failed.

    `release` undoes what a failed run held and returns the outcome fields to record with its
    failure. Without Redis nothing can be told: nothing is failed then.
    """
    ended: list[RunT] = []
    connection = queue.connect(settings, timeout=1.0)
    try:
        for run in db.call_sync(active_runs, model):
            running = run.status is RunStatus.RUNNING
            if not run.job_id or not (state := queue.dead_job(connection, run.job_id, running)):
                continue
            why = abandoned_message(model, state, running, consequence)
            try:
                failed = db.call_sync(_fail_if_active, model, run.id, why, release)
            except OSError as exc:  # what it held could not be released: left for the next sweep
                log.error("%s %d is abandoned but stays: %s", NOUNS[model], run.id, exc)
                continue
            if failed is not None:
                log.warning("%s %d failed: %s", NOUNS[model], run.id, why)
                ended.append(failed)
    except redis.RedisError as exc:
        log.warning("cannot tell whether %ss were abandoned: Redis: %s", NOUNS[model], exc)
    finally:
        connection.close()
    return ended


def log_outcome(
    logger: logging.Logger, run: ImportRun | ExportRun, began: datetime, seconds: float, counts: str
) -> None:
    """One line for a run a job carried out: its outcome, `counts`, time, and why it failed.

    RQ's "Job OK" does not tell it (the job ends normally when the run failed); a run that was
    already finished (elsewhere) before the job began is not logged again.
    """
    if run.finished_at is None or run.finished_at < began:
        return
    logger.log(
        logging.INFO if run.status is RunStatus.SUCCEEDED else logging.WARNING,
        "%s %d %s: %s in %.2f s%s",
        NOUNS[type(run)],
        run.id,
        run.status.value.lower(),
        counts,
        seconds,
        f": {run.message}" if run.message else "",
    )
