"""Backup job: what an RQ worker runs after imports that created rows, and periodically."""

from trends_gql.core.db import Database
from trends_gql.core.settings import get_settings
from trends_gql.exports import backups


def backup_database() -> dict[str, object]:
    """Back the configured database up to BACKUP_DIR, then keep only the newest BACKUP_KEEP."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        path = db.call(backups.create_backup, settings)
    finally:
        db.dispose()
    pruned = backups.prune_backups(settings)
    return {"path": str(path), "pruned": [str(p) for p in pruned]}
