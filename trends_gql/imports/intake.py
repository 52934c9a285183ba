"""Ways in for files: uploads, the media folder scan, the CLI; and the sweep of dead runs."""

import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread
import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker import Worker

from trends_gql.core import queue
from trends_gql.core.db import Database
from trends_gql.core.models import ImportRun, RunSource, RunStatus
from trends_gql.core.settings import Settings
from trends_gql.exports import runs as exports
from trends_gql.imports import media, runs
from trends_gql.imports.ingest import ImportReport

log = logging.getLogger(__name__)

IMPORT_JOB = "jobs.imports.import_run_job"
SCHEDULER = "scheduler"


async def upload(
    db: Database,
    settings: Settings,
    chunks: AsyncIterator[bytes],
    file_name: str,
    triggered_by: str,
    dry_run: bool = False,
) -> ImportRun:
    """Store an uploaded file under incoming/ and queue its import; nothing stays on failure."""
    stored = await media.store_upload(chunks, settings.media_dir, settings.upload_max_bytes)
    try:
        run = await db.run(
            lambda s: runs.create_import_run(
                s,
                file_name=file_name,
                path=stored.path,
                sha256=stored.sha256,
                source=RunSource.UPLOAD,
                triggered_by=triggered_by,
                dry_run=dry_run,
            )
        )
        return await anyio.to_thread.run_sync(queue.enqueue_run, db, settings, run, IMPORT_JOB)
    except BaseException:
        stored.path.unlink(missing_ok=True)
        raise


def scan(db: Database, settings: Settings, triggered_by: str = SCHEDULER) -> list[ImportRun]:
    """Claim the settled CSV files of the media folder and queue one run each.

    An entry that is not a regular file is moved to failed/ unread and recorded as a failed run.
    """
    sweep(db, settings)
    found = []
    for path in media.waiting_files(settings.media_dir, settings.import_settle_seconds):
        claimed = media.claim(path, settings.media_dir)
        if claimed is None:
            continue  # another scan took it
        run = db.call(
            lambda s, c=claimed, p=path: runs.create_import_run(
                s,
                file_name=p.name,
                path=c.path,
                sha256=c.sha256,
                source=RunSource.MEDIA,
                triggered_by=triggered_by,
            )
        )
        if claimed.refused:
            log.warning("import run %d for %r: %s", run.id, path.name, claimed.refused)
            found.append(db.call(runs.finish_run, run.id, RunStatus.FAILED, claimed.refused))
            continue
        try:
            found.append(queue.enqueue_run(db, settings, run, IMPORT_JOB))
        except Exception:
            media.release(claimed.path, settings.media_dir)
            raise
        log.info("queued import run %d for %s", run.id, path.name)
    return found


def import_now(
    db: Database, settings: Settings, path: Path, dry_run: bool = False
) -> tuple[ImportRun, ImportReport | None]:
    """Import a file in this process, recorded as a CLI run (the file stays where it is)."""
    run = db.call(
        lambda s: runs.create_import_run(
            s,
            file_name=path.name,
            path=path.resolve(),
            sha256=media.sha256_file(path),
            source=RunSource.CLI,
            triggered_by=f"cli:{os.environ.get('USER', 'unknown')}",
            dry_run=dry_run,
        )
    )
    return runs.execute_import_run(db, settings, run.id)


def _worker_alive(connection: redis.Redis, name: str | None) -> bool:
    if not name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
    if worker is None:
        return False
    if worker.hostname == socket.gethostname() and worker.pid:
        try:
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def _dead_job(connection: redis.Redis, job_id: str) -> str | None:
    """How a job ended without its run being told (None while it may still finish)."""
    try:
        job = Job.fetch(job_id, connection=connection)
        status = job.get_status()
    except NoSuchJobError:
        return "lost"
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.FINISHED):
        return None  # waiting, or it recorded the outcome itself
    if status == JobStatus.STARTED and _worker_alive(connection, job.worker_name):
        return None
    return status.value if status else "lost"


def sweep(db: Database, settings: Settings) -> list[ImportRun]:
    """Fail the runs whose job died with its worker; put import files back in the media folder."""
    connection = queue.connect(settings)
    ended = []
    for run in db.call(runs.active_runs):
        if run.job_id and (state := _dead_job(connection, run.job_id)):
            why = f"the worker stopped before the run ended (its job is {state})"
            if ended_run := runs.fail_abandoned_run(db, settings, run.id, why):
                ended.append(ended_run)
    for export in db.call(exports.active_export_runs):
        if export.job_id and (state := _dead_job(connection, export.job_id)):
            why = f"the worker stopped before the export ended (its job is {state})"
            exports.fail_abandoned_export(db, export.id, why)
    return ended
