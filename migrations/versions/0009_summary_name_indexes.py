"""indexes on trend_summary's megatrend and macrotrend, whatever their case

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_trend_summary_megatrend": "lower(megatrend)",
    "ix_trend_summary_macrotrend": "lower(macrotrend)",
}


def upgrade() -> None:
    for name, expression in INDEXES.items():
        op.create_index(name, "trend_summary", [sa.text(expression)])


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="trend_summary")
