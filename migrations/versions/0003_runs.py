"""import_run and export_run tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from trends_gql.core.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _times() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "import_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("stored_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", _enum("run_source", "UPLOAD", "MEDIA", "CLI"), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", _enum("run_status", *STATUSES), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_processed", sa.Integer(), nullable=False),
        sa.Column("rows_created", sa.Integer(), nullable=False),
        sa.Column("rows_skipped", sa.Integer(), nullable=False),
        sa.Column("rows_invalid", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("triggered_by", sa.String(254), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        *_times(),
    )
    op.create_index("ix_import_run_sha256", "import_run", ["sha256"])
    op.create_table(
        "export_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("format", _enum("export_format", "CSV", "JSON"), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=True),
        sa.Column("status", _enum("run_status", *STATUSES), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("triggered_by", sa.String(254), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        *_times(),
    )


def downgrade() -> None:
    op.drop_table("export_run")
    op.drop_table("import_run")
