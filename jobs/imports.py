"""Import job: the entry point an RQ worker runs for one CSV file."""

from dataclasses import asdict
from pathlib import Path
from typing import Any

from trends_gql.db import Database
from trends_gql.ingest import import_trends
from trends_gql.settings import get_settings


def import_file(path: str, dry_run: bool = False) -> dict[str, Any]:
    """Import one CSV file with the configured database; return the report as a dict."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            report = import_trends(
                session,
                Path(path),
                dry_run=dry_run,
                batch_size=settings.import_batch_size,
                max_errors=settings.import_max_errors,
            )
    finally:
        db.dispose()
    return asdict(report)
