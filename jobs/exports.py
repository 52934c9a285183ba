"""Export job: what an RQ worker runs for one queued export run."""

from trends_gql.core.db import open_database
from trends_gql.core.settings import get_settings
from trends_gql.exports import runs as exports


def export_job(run_id: int) -> dict[str, object]:
    """Carry out export run `run_id` with the configured database and BACKUP_DIR."""
    settings = get_settings()
    with open_database(settings) as db:
        run = exports.execute_export_run(db, settings, run_id)
    return {"run": run.id, "status": run.status.value, "rows": run.row_count, "path": run.path}
