"""trend_count_bucket: trends per bucket of 100 publications or patents, kept by triggers

PostgreSQL only: on SQLite the table is created and stays empty (core/summary.py says why).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

WIDTH = 100
COUNTS = {"publications": "total_count_of_publications", "patents": "total_count_of_patents"}
KEY = "count_name, bucket"


def _deltas(rows: str, n: int) -> str:
    return " UNION ALL ".join(
        f"SELECT '{short}' AS count_name, {name} / {WIDTH} AS bucket, {n} AS n "
        f"FROM {rows} WHERE {name} IS NOT NULL"
        for short, name in COUNTS.items()
    )


def _append(deltas: str) -> str:
    # A statement's counts per bucket, for the fold at commit; the transaction's first is marked.
    return f"""INSERT INTO trend_count_bucket_change (txid, {KEY}, trend_count, first)
    SELECT txid_current(), {KEY}, sum(n), row_number() OVER () = 1 AND NOT EXISTS
      (SELECT FROM trend_count_bucket_change WHERE txid = txid_current())
    FROM ({deltas}) AS d GROUP BY {KEY} HAVING sum(n) <> 0"""


ADDED, REMOVED = _deltas("new_rows", 1), _deltas("old_rows", -1)
POSTGRESQL_FUNCTIONS = (
    f"""CREATE FUNCTION trend_count_bucket_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM trend_count_bucket;
    DELETE FROM trend_count_bucket_change WHERE txid = txid_current();
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
    # At commit, in key order, as trend_summary's fold (0008).
    f"""CREATE FUNCTION trend_count_bucket_fold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  emptied integer[];
BEGIN
  WITH change AS (
    DELETE FROM trend_count_bucket_change WHERE txid = NEW.txid RETURNING {KEY}, trend_count
  ), folded AS (
    INSERT INTO trend_count_bucket AS s ({KEY}, trend_count)
    SELECT {KEY}, sum(trend_count) FROM change GROUP BY {KEY} HAVING sum(trend_count) <> 0
    ORDER BY {KEY}
    ON CONFLICT ({KEY}) DO UPDATE SET trend_count = s.trend_count + excluded.trend_count
    RETURNING s.id, s.trend_count
  )
  SELECT array_agg(id) INTO emptied FROM folded WHERE trend_count <= 0;
  DELETE FROM trend_count_bucket WHERE id = ANY (emptied);
  RETURN NULL;
END
$$""",
)
_EVENTS = {
    "insert": "INSERT ON trend REFERENCING NEW TABLE AS new_rows",
    "update": "UPDATE ON trend REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "DELETE ON trend REFERENCING OLD TABLE AS old_rows",
    "truncate": "TRUNCATE ON trend",
}
POSTGRESQL_TRIGGERS = {
    **{
        f"trend_count_bucket_{event}": f"TRIGGER trend_count_bucket_{event} AFTER {when}"
        " FOR EACH STATEMENT EXECUTE FUNCTION trend_count_bucket_apply()"
        for event, when in _EVENTS.items()
    },
    "trend_count_bucket_fold": "CONSTRAINT TRIGGER trend_count_bucket_fold"
    " AFTER INSERT ON trend_count_bucket_change DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
    " WHEN (NEW.first) EXECUTE FUNCTION trend_count_bucket_fold()",
}


def _counts() -> list[sa.Column]:
    """The key and count columns of trend_count_bucket and its change table."""
    return [
        sa.Column("count_name", sa.String(16), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("trend_count", sa.Integer(), nullable=False),
    ]


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table("trend_count_bucket", sa.Column("id", sa.Integer(), primary_key=True), *_counts())
    op.create_index(
        "ux_trend_count_bucket_key", "trend_count_bucket", ["count_name", "bucket"], unique=True
    )
    op.create_table(
        "trend_count_bucket_change",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_counts(),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("first", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_trend_count_bucket_change_txid", "trend_count_bucket_change", ["txid"])
    if not _postgresql():
        return
    # The triggers first: creating them locks out writes to trend until the buckets are filled
    # and committed.
    for function in POSTGRESQL_FUNCTIONS:
        op.execute(function)
    for trigger in POSTGRESQL_TRIGGERS.values():
        op.execute(f"CREATE {trigger}")
    counted = _deltas("trend", 1)
    op.execute(
        f"INSERT INTO trend_count_bucket ({KEY}, trend_count) "
        f"SELECT {KEY}, count(*) FROM ({counted}) AS d GROUP BY {KEY} ORDER BY {KEY}"
    )


def downgrade() -> None:
    if _postgresql():
        for name in POSTGRESQL_TRIGGERS:
            table = "trend_count_bucket_change" if name.endswith("_fold") else "trend"
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION trend_count_bucket_fold()")
        op.execute("DROP FUNCTION trend_count_bucket_apply()")
    op.drop_table("trend_count_bucket_change")
    op.drop_table("trend_count_bucket")
