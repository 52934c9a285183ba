"""The upkeep of the summaries of trend: triggers that apply each write in the write's transaction.

Two summaries count trends without reading them: trend_summary per megatrend, macrotrend, TRL,
impact and STEEPL, and (on PostgreSQL) trend_count_bucket per count (publications, patents) and
bucket of BUCKET_WIDTH of its values (0-99, 100-199, ...), which a bound on that count sums
instead of reading every trend within it. Every write to trend (imports, staff edits, restores,
any SQL) changes them within the same transaction, so that they are exact after every commit
and are rolled back with the rows. A key whose count reaches zero is removed.

PostgreSQL: statement triggers read the statement's transition tables and append its counts
per key to the summary's change table (an import's batch of 5,000 rows is one grouped insert);
the first change of a transaction queues a deferred trigger that folds them all into the
summary at its commit, in key order. Writers neither wait for one another in between (a long
import does not hold up a staff edit, two imports cannot deadlock), nor update one summary row
again and again: measured on 200,000 rows, updating trend_summary directly on each batch spent
30 % of the insert time in the trigger, appending and folding 5 %. Before the commit, a
transaction's own reads of a summary do not see its writes yet.

SQLite has row triggers only, and one writer at a time: they change trend_summary directly.
Its trend_count_bucket stays empty: the buckets pay only with an index on each count to read
the cut buckets' trends with, which SQLite does not have (core/models.py), and keeping them
there made a 100,000-row import 17 % slower.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trends_gql.core.fields import COUNTS

# trend_summary's key: the columns that counts, facets and the aggregates group or filter by.
KEY = ("megatrend", "macrotrend", "technology_readiness_level", "impact_strength", "steepl")
# What its unique index holds, and an upsert names as its conflict target: a plain unique index
# would take two rows without a TRL for different keys (NULLs are distinct), on both backends.
KEY_INDEX = ("megatrend", "macrotrend", "coalesce(technology_readiness_level, '')", *KEY[3:])
# trend_count_bucket's key: the count's short name (COUNTS) and its value // BUCKET_WIDTH. At
# 1,000,000 trends of the generator's data, a bucket of patents holds about 2,250 of them.
BUCKET_KEY = ("count_name", "bucket")
BUCKET_WIDTH = 100


def buckets_kept(dialect: str) -> bool:
    """Whether trend_count_bucket is kept on a database of `dialect`."""
    return dialect == "postgresql"


def _by_key(rows: str, n: int) -> str:
    return f"SELECT {', '.join(KEY)}, {n} AS n FROM {rows}"


def _by_bucket(rows: str, n: int) -> str:
    return " UNION ALL ".join(
        f"SELECT '{short}' AS count_name, {name} / {BUCKET_WIDTH} AS bucket, {n} AS n "
        f"FROM {rows} WHERE {name} IS NOT NULL"
        for short, name in COUNTS.items()
    )


@dataclass(frozen=True)
class _Summary:
    """A table of trend counts per key, and how a row of trend counts in it."""

    table: str
    key: tuple[str, ...]
    target: tuple[str, ...]  # its unique index, the upserts' conflict target
    deltas: Callable[[str, int], str]  # each row of a transition table as its keys, counting n

    @property
    def columns(self) -> str:
        return ", ".join(self.key)

    @property
    def conflict(self) -> str:
        return ", ".join(c if c in self.key else f"({c})" for c in self.target)


SUMMARY = _Summary("trend_summary", KEY, KEY_INDEX, _by_key)
BUCKETS = _Summary("trend_count_bucket", BUCKET_KEY, BUCKET_KEY, _by_bucket)


def _append(s: _Summary, deltas: str) -> str:
    """Append the statement's counts per key (`deltas`: the key and `n`, per row)."""
    # The first change of the transaction is marked: its insert queues the fold.
    return (
        f"INSERT INTO {s.table}_change (txid, {s.columns}, trend_count, first) "
        f"SELECT txid_current(), {s.columns}, sum(n), row_number() OVER () = 1 AND NOT EXISTS "
        f"(SELECT FROM {s.table}_change WHERE txid = txid_current()) "
        f"FROM ({deltas}) AS d GROUP BY {s.columns} HAVING sum(n) <> 0"
    )


def _apply(s: _Summary) -> str:
    added, removed = s.deltas("new_rows", 1), s.deltas("old_rows", -1)
    return f"""CREATE FUNCTION {s.table}_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM {s.table};
    DELETE FROM {s.table}_change WHERE txid = txid_current();
  ELSIF TG_OP = 'INSERT' THEN
    {_append(s, added)};
  ELSIF TG_OP = 'UPDATE' THEN
    {_append(s, f"{added} UNION ALL {removed}")};
  ELSE
    {_append(s, removed)};
  END IF;
  RETURN NULL;
END
$$"""


def _fold(s: _Summary) -> str:
    # Only the keys the fold emptied are deleted: not a scan of the whole summary at every commit.
    return f"""CREATE FUNCTION {s.table}_fold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  emptied integer[];
BEGIN
  WITH change AS (
    DELETE FROM {s.table}_change WHERE txid = NEW.txid RETURNING {s.columns}, trend_count
  ), folded AS (
    INSERT INTO {s.table} AS s ({s.columns}, trend_count)
    SELECT {s.columns}, sum(trend_count) FROM change
    GROUP BY {s.columns} HAVING sum(trend_count) <> 0 ORDER BY {s.columns}
    ON CONFLICT ({s.conflict}) DO UPDATE SET trend_count = s.trend_count + excluded.trend_count
    RETURNING s.id, s.trend_count
  )
  SELECT array_agg(id) INTO emptied FROM folded WHERE trend_count <= 0;
  DELETE FROM {s.table} WHERE id = ANY (emptied);
  RETURN NULL;
END
$$"""


# Transition tables need a trigger of one event each.
_TABLES = {
    "insert": "AFTER INSERT ON trend REFERENCING NEW TABLE AS new_rows",
    "update": "AFTER UPDATE ON trend REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "AFTER DELETE ON trend REFERENCING OLD TABLE AS old_rows",
    "truncate": "AFTER TRUNCATE ON trend",
}


def _postgresql(s: _Summary) -> tuple[str, ...]:
    return (
        _apply(s),
        _fold(s),
        *(
            f"CREATE TRIGGER {s.table}_{event} {when} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {s.table}_apply()"
            for event, when in _TABLES.items()
        ),
        f"CREATE CONSTRAINT TRIGGER {s.table}_fold AFTER INSERT ON {s.table}_change "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.first) "
        f"EXECUTE FUNCTION {s.table}_fold()",
    )


def _same_key(row: str) -> str:
    return " AND ".join(
        f"coalesce({c}, '') = coalesce({row}.{c}, '')" if c == KEY[2] else f"{c} = {row}.{c}"
        for c in KEY
    )


_SQLITE_ADD = (
    f"INSERT INTO trend_summary ({SUMMARY.columns}, trend_count) "
    f"VALUES ({', '.join(f'NEW.{c}' for c in KEY)}, 1) "
    f"ON CONFLICT ({SUMMARY.conflict}) DO UPDATE SET trend_count = trend_count + 1;"
)
_SQLITE_REMOVE = (
    f"UPDATE trend_summary SET trend_count = trend_count - 1 WHERE {_same_key('OLD')}; "
    f"DELETE FROM trend_summary WHERE {_same_key('OLD')} AND trend_count <= 0;"
)


SQLITE = (
    f"CREATE TRIGGER trend_summary_insert AFTER INSERT ON trend BEGIN {_SQLITE_ADD} END",
    f"CREATE TRIGGER trend_summary_update AFTER UPDATE OF {SUMMARY.columns} ON trend "
    f"BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD} END",
    f"CREATE TRIGGER trend_summary_delete AFTER DELETE ON trend BEGIN {_SQLITE_REMOVE} END",
)
POSTGRESQL = (*_postgresql(SUMMARY), *_postgresql(BUCKETS))


def triggers(dialect: str) -> Sequence[str]:
    """The statements that create the summaries' triggers (and functions) on `dialect`."""
    return POSTGRESQL if dialect == "postgresql" else SQLITE
