"""Backup job: what an RQ worker runs after imports that created rows, and periodically."""

from trends_gql.core.db import open_database
from trends_gql.core.settings import get_settings
from trends_gql.exports import backups


def backup_database() -> dict[str, object]:
    """Back the configured database up to BACKUP_DIR, then keep only the newest BACKUP_KEEP."""
    settings = get_settings()
    with open_database(settings) as db:
        path = db.call_sync(backups.create_backup, settings)
    pruned = backups.prune_backups(settings)
    return {"path": str(path), "pruned": [str(p) for p in pruned]}
