"""Ways in for files: uploads, the media folder scan, the CLI."""

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread

from trends_gql.core import queue
from trends_gql.core.db import Database
from trends_gql.core.models import ImportRun, RunSource, RunStatus, stored_id
from trends_gql.core.settings import Settings
from trends_gql.imports import media, runs
from trends_gql.imports.ingest import ImportReport

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"


async def upload(
    db: Database,
    settings: Settings,
    chunks: AsyncIterator[bytes],
    file_name: str | None,
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
        return await anyio.to_thread.run_sync(
            queue.enqueue_run, db, settings, run, queue.IMPORT_JOB
        )
    except BaseException:
        stored.path.unlink(missing_ok=True)
        raise


def scan(db: Database, settings: Settings, triggered_by: str = SCHEDULER) -> list[ImportRun]:
    """Claim the settled CSV files of the media folder and queue one run each.

    An entry that is not a regular file is moved to failed/ unread and recorded as a failed run.
    First the runs whose worker died are failed, and their files put back.
    """
    runs.sweep_import_runs(db, settings)  # a file whose run died goes back, to be claimed now
    found = []
    for path in media.waiting_files(settings.media_dir, settings.import_settle_seconds):
        claimed = media.claim(path, settings.media_dir)
        if claimed is None:
            continue  # another scan took it
        run = db.call_sync(
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
            found.append(db.call_sync(runs.finish_run, run.id, RunStatus.FAILED, claimed.refused))
            continue
        try:
            found.append(queue.enqueue_run(db, settings, run, queue.IMPORT_JOB))
        except Exception:
            media.release(claimed.path, settings.media_dir)
            raise
        log.info("queued import run %d for %s", run.id, path.name)
    return found


def import_now(
    db: Database, settings: Settings, path: Path, dry_run: bool = False
) -> tuple[ImportRun, ImportReport | None]:
    """Import a file in this process, recorded as a CLI run (the file stays where it is)."""
    run = db.call_sync(
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
    return runs.execute_import_run(db, settings, stored_id(run))
