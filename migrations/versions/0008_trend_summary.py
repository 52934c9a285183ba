"""trend_summary table kept by triggers; indexes for deep pages, count bounds and updatedSince

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KEY = "megatrend, macrotrend, technology_readiness_level, impact_strength, steepl"
TARGET = "megatrend, macrotrend, (coalesce(technology_readiness_level, '')), impact_strength, steepl"


def _append(deltas: str) -> str:
    # A statement's counts per key, for the fold at commit; the transaction's first is marked.
    return f"""INSERT INTO trend_summary_change (txid, {KEY}, trend_count, first)
    SELECT txid_current(), {KEY}, sum(n), row_number() OVER () = 1 AND NOT EXISTS
      (SELECT FROM trend_summary_change WHERE txid = txid_current())
    FROM ({deltas}) AS d GROUP BY {KEY} HAVING sum(n) <> 0"""


ADDED = f"SELECT {KEY}, 1 AS n FROM new_rows"
REMOVED = f"SELECT {KEY}, -1 AS n FROM old_rows"
POSTGRESQL_FUNCTIONS = (
    f"""CREATE FUNCTION trend_summary_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM trend_summary;
    DELETE FROM trend_summary_change WHERE txid = txid_current();
  ELSIF TG_OP = 'INSERT' THEN
    {_append(ADDED)};
  ELSIF TG_OP = 'UPDATE' THEN
    {_append(f"{ADDED} UNION ALL {REMOVED}")};
  ELSE
    {_append(REMOVED)};
  END IF;
  RETURN NULL;
END
$$""",
    # At commit, in key order: writers do not wait for each other before. Only the keys it
    # emptied are deleted, not found by a scan of the whole summary.
    f"""CREATE FUNCTION trend_summary_fold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  emptied integer[];
BEGIN
  WITH change AS (
    DELETE FROM trend_summary_change WHERE txid = NEW.txid RETURNING {KEY}, trend_count
  ), folded AS (
    INSERT INTO trend_summary AS s ({KEY}, trend_count)
    SELECT {KEY}, sum(trend_count) FROM change GROUP BY {KEY} HAVING sum(trend_count) <> 0
    ORDER BY {KEY}
    ON CONFLICT ({TARGET}) DO UPDATE SET trend_count = s.trend_count + excluded.trend_count
    RETURNING s.id, s.trend_count
  )
  SELECT array_agg(id) INTO emptied FROM folded WHERE trend_count <= 0;
  DELETE FROM trend_summary WHERE id = ANY (emptied);
  RETURN NULL;
END
$$""",
)
# Statement triggers (transition tables need one event each), and the fold at commit.
POSTGRESQL_TRIGGERS = {
    "trend_summary_insert": "TRIGGER trend_summary_insert AFTER INSERT ON trend"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trend_summary_apply()",
    "trend_summary_update": "TRIGGER trend_summary_update AFTER UPDATE ON trend"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION trend_summary_apply()",
    "trend_summary_delete": "TRIGGER trend_summary_delete AFTER DELETE ON trend"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION trend_summary_apply()",
    "trend_summary_truncate": "TRIGGER trend_summary_truncate AFTER TRUNCATE ON trend"
    " FOR EACH STATEMENT EXECUTE FUNCTION trend_summary_apply()",
    "trend_summary_fold": "CONSTRAINT TRIGGER trend_summary_fold AFTER INSERT ON trend_summary_change"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.first) EXECUTE FUNCTION trend_summary_fold()",
}

SAME_KEY = """megatrend = OLD.megatrend AND macrotrend = OLD.macrotrend
    AND coalesce(technology_readiness_level, '') = coalesce(OLD.technology_readiness_level, '')
    AND impact_strength = OLD.impact_strength AND steepl = OLD.steepl"""
SQLITE_ADD = f"""INSERT INTO trend_summary ({KEY}, trend_count)
    VALUES (NEW.megatrend, NEW.macrotrend, NEW.technology_readiness_level, NEW.impact_strength,
            NEW.steepl, 1)
    ON CONFLICT ({TARGET}) DO UPDATE SET trend_count = trend_count + 1;"""
SQLITE_REMOVE = f"""UPDATE trend_summary SET trend_count = trend_count - 1 WHERE {SAME_KEY};
  DELETE FROM trend_summary WHERE {SAME_KEY} AND trend_count <= 0;"""
# SQLite has row triggers only, and one writer at a time: they write trend_summary directly.
SQLITE_TRIGGERS = {
    "trend_summary_insert": f"TRIGGER trend_summary_insert AFTER INSERT ON trend BEGIN {SQLITE_ADD} END",
    "trend_summary_update": f"TRIGGER trend_summary_update AFTER UPDATE OF {KEY} ON trend"
    f" BEGIN {SQLITE_REMOVE} {SQLITE_ADD} END",
    "trend_summary_delete": f"TRIGGER trend_summary_delete AFTER DELETE ON trend BEGIN {SQLITE_REMOVE} END",
}

COUNT_INDEXES = {
    "ix_trend_publications": "total_count_of_publications",
    "ix_trend_patents": "total_count_of_patents",
}


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def _counts() -> list[sa.Column]:
    """The key and count columns of trend_summary and trend_summary_change."""
    return [
        sa.Column("megatrend", sa.String(150), nullable=False),
        sa.Column("macrotrend", sa.String(200), nullable=False),
        sa.Column(
            "technology_readiness_level",
            _enum("technology_readiness_level", "Pilot", "Development", "Deploy"),
            nullable=True,
        ),
        sa.Column("impact_strength", _enum("impact_strength", "Low", "Medium", "High"), nullable=False),
        sa.Column("steepl", _enum("steepl", "S", "T", "E", "P", "L"), nullable=False),
        sa.Column("trend_count", sa.Integer(), nullable=False),
    ]


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    op.drop_index("ix_trend_megatrend_macrotrend", table_name="trend")
    op.create_index(
        "ix_trend_megatrend_macrotrend", "trend", [sa.text("lower(megatrend)"), "macrotrend", "id"]
    )
    op.drop_index("ix_trend_macrotrend", table_name="trend")
    op.create_index("ix_trend_macrotrend", "trend", [sa.text("lower(macrotrend)"), "id"])
    op.drop_index("ix_trend_updated_at", table_name="trend")
    op.create_index("ix_trend_updated_at", "trend", ["updated_at", "id"])
    if _postgresql():  # SQLite's indexes cannot say NULLS LAST
        for name, column in COUNT_INDEXES.items():
            op.create_index(name, "trend", [sa.text(f"{column} DESC NULLS LAST"), "id"])

    op.create_table("trend_summary", sa.Column("id", sa.Integer(), primary_key=True), *_counts())
    op.create_index(
        "ux_trend_summary_key",
        "trend_summary",
        ["megatrend", "macrotrend", sa.text("coalesce(technology_readiness_level, '')"), "impact_strength", "steepl"],
        unique=True,
    )
    op.create_table(
        "trend_summary_change",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        *_counts(),
        sa.Column("first", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_trend_summary_change_txid", "trend_summary_change", ["txid"])
    # The triggers first: creating them locks out writes to trend until the summary is filled
    # and committed.
    if _postgresql():
        for function in POSTGRESQL_FUNCTIONS:
            op.execute(function)
        for trigger in POSTGRESQL_TRIGGERS.values():
            op.execute(f"CREATE {trigger}")
    else:
        for trigger in SQLITE_TRIGGERS.values():
            op.execute(f"CREATE {trigger}")
    op.execute(
        f"INSERT INTO trend_summary ({KEY}, trend_count) "
        f"SELECT {KEY}, count(*) FROM trend GROUP BY {KEY} ORDER BY {KEY}"
    )


def downgrade() -> None:
    if _postgresql():
        for name in POSTGRESQL_TRIGGERS:
            table = "trend_summary_change" if name == "trend_summary_fold" else "trend"
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION trend_summary_fold()")
        op.execute("DROP FUNCTION trend_summary_apply()")
        for name in COUNT_INDEXES:
            op.drop_index(name, table_name="trend")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("trend_summary_change")
    op.drop_table("trend_summary")
    op.drop_index("ix_trend_updated_at", table_name="trend")
    op.create_index("ix_trend_updated_at", "trend", ["updated_at"])
    op.drop_index("ix_trend_macrotrend", table_name="trend")
    op.create_index("ix_trend_macrotrend", "trend", [sa.text("lower(macrotrend)")])
    op.drop_index("ix_trend_megatrend_macrotrend", table_name="trend")
    op.create_index(
        "ix_trend_megatrend_macrotrend",
        "trend",
        [sa.text("lower(megatrend)"), sa.text("lower(macrotrend)")],
    )
