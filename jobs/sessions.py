"""Session job: the periodic deletion of ended sessions."""

from trends_gql.accounts import sessions
from trends_gql.core.db import open_database, utcnow
from trends_gql.core.settings import get_settings


def prune_sessions() -> int:
    """Delete the sessions that have ended (idle or past their lifetime); how many."""
    settings = get_settings()
    idle = settings.session_idle_seconds
    with open_database(settings) as db:
        return db.call_sync(lambda s: sessions.prune_sessions(s, now=utcnow(), idle_seconds=idle))
