"""The periodic scan of the media folder."""

from trends_gql.core.db import Database
from trends_gql.core.settings import get_settings
from trends_gql.imports import intake


def scan_media() -> list[int]:
    """Queue an import of each settled CSV file in the media folder; fail runs of dead workers.

    Entries that are not regular files are moved to failed/ unread, as failed runs.
    """
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        return [run.id for run in intake.scan(db, settings)]
    finally:
        db.dispose()
