"""Backup job: what an RQ worker runs after imports that created rows, and periodically."""

import logging

from trends_gql.core.db import open_database
from trends_gql.core.settings import get_settings
from trends_gql.exports import backups

log = logging.getLogger(__name__)


def backup_database() -> dict[str, object]:
    """Back the configured database up to BACKUP_DIR, then keep only the newest BACKUP_KEEP.

    Nothing is written when the newest backup holds the data as it is (no write since), so
    that backups of unchanged data never push older, different ones out of the kept ones.
    """
    settings = get_settings()
    with open_database(settings) as db:
        same = db.call_sync(backups.unchanged_since, settings)
        if same is not None:
            log.info("no backup needed: the data has not changed since %s", same)
            return {"path": None, "unchanged_since": str(same), "pruned": []}
        path = db.call_sync(backups.create_backup, settings)
    pruned = backups.prune_backups(settings)
    return {"path": str(path), "pruned": [str(p) for p in pruned]}
