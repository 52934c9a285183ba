"""Session job: the periodic deletion of ended sessions."""

from trends_gql.accounts import sessions
from trends_gql.core.db import Database, utcnow
from trends_gql.core.settings import get_settings


def prune_sessions() -> int:
    """Delete the sessions that have ended (idle or past their lifetime); how many."""
    settings = get_settings()
    db = Database(settings.database_url)
    idle = settings.session_idle_seconds
    try:
        return db.call(lambda s: sessions.prune_sessions(s, now=utcnow(), idle_seconds=idle))
    finally:
        db.dispose()
