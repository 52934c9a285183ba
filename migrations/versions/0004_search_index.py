"""trigram index for the trend search (PostgreSQL only)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SEARCH_INDEX = "ix_trend_search"
# The columns `search` matches, each with ILIKE on the bare column (queries.filter_clauses).
SEARCHED_COLUMNS = (
    "megatrend",
    "macrotrend",
    "challenges_and_research_gaps",
    "relevant_industries",
    "real_world_application_and_use_cases",
)


def upgrade() -> None:
    # SQLite has no trigram index: its search scans the table (see README, "Protections").
    if op.get_context().dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension: the database's owner may create it without superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        SEARCH_INDEX,
        "trend",
        list(SEARCHED_COLUMNS),
        postgresql_using="gin",
        postgresql_ops=dict.fromkeys(SEARCHED_COLUMNS, "gin_trgm_ops"),
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.drop_index(SEARCH_INDEX, table_name="trend")
    # The extension stays: other objects of the database may use it, and it costs nothing idle.
