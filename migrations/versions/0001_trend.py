"""trend table

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from trends_gql.core.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "trend",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("megatrend", sa.String(150), nullable=False),
        sa.Column("macrotrend", sa.String(200), nullable=False),
        sa.Column("challenges_and_research_gaps", sa.Text(), nullable=False),
        sa.Column("total_count_of_publications", sa.Integer(), nullable=True),
        sa.Column("total_count_of_patents", sa.Integer(), nullable=True),
        sa.Column(
            "technology_readiness_level",
            _enum("technology_readiness_level", "Pilot", "Development", "Deploy"),
            nullable=True,
        ),
        sa.Column("impact_strength", _enum("impact_strength", "Low", "Medium", "High"), nullable=False),
        sa.Column("steepl", _enum("steepl", "S", "T", "E", "P", "L"), nullable=False),
        sa.Column("relevant_industries", sa.Text(), nullable=True),
        sa.Column("real_world_application_and_use_cases", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("total_count_of_publications >= 0", name="ck_trend_publications"),
        sa.CheckConstraint("total_count_of_patents >= 0", name="ck_trend_patents"),
        sa.CheckConstraint("length(trim(megatrend)) > 0", name="ck_trend_megatrend_blank"),
    )
    op.create_index("ux_trend_fingerprint", "trend", ["fingerprint"], unique=True)
    op.create_index(
        "ix_trend_megatrend_macrotrend", "trend", [sa.text("lower(megatrend)"), sa.text("lower(macrotrend)")]
    )
    op.create_index("ix_trend_macrotrend", "trend", [sa.text("lower(macrotrend)")])


def downgrade() -> None:
    op.drop_table("trend")
