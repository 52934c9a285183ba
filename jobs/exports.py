"""Export job: what an RQ worker runs for one queued export run."""

import logging
import time

from trends_gql.core.db import open_database, utcnow
from trends_gql.core.models import RunStatus
from trends_gql.core.settings import get_settings
from trends_gql.exports import runs as exports

log = logging.getLogger(__name__)


def export_job(run_id: int) -> dict[str, object]:
    """Carry out export run `run_id` with the configured database and BACKUP_DIR."""
    settings = get_settings()
    began, started = utcnow(), time.perf_counter()
    with open_database(settings) as db:
        run = exports.execute_export_run(db, settings, run_id)
    if run.finished_at is not None and run.finished_at >= began:  # not one ended elsewhere
        log.log(
            logging.INFO if run.status is RunStatus.SUCCEEDED else logging.WARNING,
            "export run %d %s: %d trends written in %.2f s%s",
            run.id,
            run.status.value.lower(),
            run.row_count or 0,
            time.perf_counter() - started,
            f": {run.message}" if run.message else "",
        )
    return {"run": run.id, "status": run.status.value, "rows": run.row_count, "path": run.path}
