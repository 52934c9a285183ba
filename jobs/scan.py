"""The periodic scan of the media folder."""

from trends_gql.core.db import open_database
from trends_gql.core.models import stored_id
from trends_gql.core.settings import get_settings
from trends_gql.exports import runs as exports
from trends_gql.imports import intake


def scan_media() -> list[int]:
    """Queue an import of each settled CSV file in the media folder; fail runs of dead workers.

    Entries that are not regular files are moved to failed/ unread, as failed runs.
    """
    settings = get_settings()
    with open_database(settings) as db:
        exports.sweep_export_runs(db, settings)
        return [stored_id(run) for run in intake.scan(db, settings)]
