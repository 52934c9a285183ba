"""index on trend.updated_at, for the updatedSince filter

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from alembic import op


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPDATED_AT_INDEX = "ix_trend_updated_at"


def upgrade() -> None:
    op.create_index(UPDATED_AT_INDEX, "trend", ["updated_at"])


def downgrade() -> None:
    op.drop_index(UPDATED_AT_INDEX, table_name="trend")
