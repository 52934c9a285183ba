"""persisted_operation table: the operations PERSISTED_QUERIES_ONLY lets run

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from trends_gql.core.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "persisted_operation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ux_persisted_operation_key", "persisted_operation", ["key"], unique=True)
    op.create_index("ix_persisted_operation_body_sha256", "persisted_operation", ["body_sha256"])


def downgrade() -> None:
    op.drop_table("persisted_operation")
