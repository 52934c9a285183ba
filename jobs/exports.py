"""Export job: what an RQ worker runs for one queued export run."""

import logging
import time

from trends_gql.core import runs as life_cycle
from trends_gql.core.db import open_database, utcnow
from trends_gql.core.settings import get_settings
from trends_gql.exports import runs as exports

log = logging.getLogger(__name__)


def export_job(run_id: int) -> dict[str, object]:
    """Carry out export run `run_id` with the configured database and BACKUP_DIR."""
    settings = get_settings()
    began, started = utcnow(), time.perf_counter()
    with open_database(settings) as db:
        run = exports.execute_export_run(db, settings, run_id)
    seconds = time.perf_counter() - started
    life_cycle.log_outcome(log, run, began, seconds, f"{run.row_count or 0} trends written")
    return {"run": run.id, "status": run.status.value, "rows": run.row_count, "path": run.path}
