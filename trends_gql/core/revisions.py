"""Migration state: the Alembic revision this code needs and the one a database is at."""

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

# The repository's migrations/ folder, shipped as this package (alembic.ini names it too).
MIGRATIONS = "trends_gql.migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(database_url: str) -> "Config":
    """Alembic configuration of the shipped migrations for the database at `database_url`."""
    from alembic.config import Config  # imported here: it doubles the start-up time of the CLI

    config = Config()
    config.set_main_option("script_location", str(resources.files(MIGRATIONS)))
    config.attributes["database_url"] = database_url
    return config


@dataclass(frozen=True)
class Revisions:
    """The shipped migrations: the head and every revision known to this code."""

    head: str
    known: frozenset[str]


@lru_cache
def shipped_revisions() -> Revisions:
    """The head revision and the known ones, read once from the migrations folder."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(""))
    head = script.get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return Revisions(head, frozenset(r.revision for r in script.walk_revisions()))


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def describe(current: str | None, shipped: Revisions) -> tuple[str, bool]:
    """How the database's revision compares with the code's, and whether the code can use it.

    A revision this code does not know comes from a newer release, migrated before this
    process was replaced: reported, not refused, so that a deploy does not take the old
    release's processes out of service before the new ones start.
    """
    if current == shipped.head:
        return f"{current} (head)", True
    if current is None:
        return f"not migrated, head {shipped.head}", False
    if current in shipped.known:
        return f"behind: {current}, head {shipped.head}", False
    return f"ahead: {current}, head {shipped.head}", True
