"""Import jobs: what an RQ worker runs for one queued import run."""

import logging
import time

from trends_gql.core import queue
from trends_gql.core.db import open_database, utcnow
from trends_gql.core.errors import ServiceUnavailable
from trends_gql.core.models import RunStatus
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
    # The outcome, which RQ's "Job OK" does not tell (the job ends normally when the run failed).
    if run.finished_at is not None and run.finished_at >= began:  # not one ended elsewhere
        log.log(
            logging.INFO if run.status is RunStatus.SUCCEEDED else logging.WARNING,
            "import run %d %s: %d created, %d skipped, %d invalid%s in %.2f s%s",
            run.id,
            run.status.value.lower(),
            run.rows_created,
            run.rows_skipped,
            run.rows_invalid,
            " (dry run)" if run.dry_run else "",
            time.perf_counter() - started,
            f": {run.message}" if run.message else "",
        )
    if run.rows_created and not run.dry_run:
        try:
            queue.enqueue(settings, backup_database)
        except ServiceUnavailable:
            log.warning("import run %d created rows, but no backup could be queued", run.id)
    return {"run": run.id, "status": run.status.value, "created": run.rows_created}
