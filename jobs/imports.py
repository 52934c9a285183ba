"""Import jobs: what an RQ worker runs for one queued import run."""

import logging
import time

from trends_gql.core import queue
from trends_gql.core import runs as life_cycle
from trends_gql.core.db import open_database, utcnow
from trends_gql.core.errors import ServiceUnavailable
from trends_gql.core.settings import get_settings
from trends_gql.imports import runs

from .backups import backup_database

log = logging.getLogger(__name__)


def import_run_job(run_id: int) -> dict[str, object]:
    """Carry out import run `run_id`; back the database up when it created rows."""
    settings = get_settings()
    began, started = utcnow(), time.perf_counter()
    with open_database(settings) as db:
        run, _ = runs.execute_import_run(db, settings, run_id)
    counts = f"{run.rows_created} created, {run.rows_skipped} skipped, {run.rows_invalid} invalid"
    life_cycle.log_outcome(
        log,
        run,
        began,
        time.perf_counter() - started,
        counts + (" (dry run)" if run.dry_run else ""),
    )
    if run.rows_created and not run.dry_run:
        try:
            queue.enqueue(settings, backup_database)
        except ServiceUnavailable:
            log.warning("import run %d created rows, but no backup could be queued", run.id)
    return {"run": run.id, "status": run.status.value, "created": run.rows_created}
