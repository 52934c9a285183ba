"""Counts of the trends that match a filter, read without counting them where that can be.

A count reads trend_summary (counts per megatrend, macrotrend, TRL, impact and STEEPL, kept
exact by triggers: core/summary.py) whenever the filter names only those columns, and the
matching trends otherwise; the aggregates are in trends/aggregates.py. A search under such a
filter is counted in two parts (SplitSearch): its matches in megatrend or macrotrend from
trend_summary, and only the other trends from the trends themselves. On PostgreSQL, a filter
that only bounds one count (publications or patents) sums trend_count_bucket's buckets (Bounds).
"""

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.core import fields, summary
from trends_gql.core.models import TREND_COUNT_BUCKET_TABLE, TREND_SUMMARY_TABLE, TREND_TABLE
from trends_gql.trends.filters import (
    TrendFilter,
    count_bounds,
    filter_clauses,
    found_in,
    text_argument,
)

T = TREND_TABLE.c
S = TREND_SUMMARY_TABLE.c
B = TREND_COUNT_BUCKET_TABLE.c
# The searched columns that trend_summary holds too, and the others. Each is matched on its own,
# as the trigram index ix_trend_search holds it: a term never spans two columns.
NAMES = tuple(name for name in fields.SEARCHED if name in summary.KEY)
TEXTS = tuple(name for name in fields.SEARCHED if name not in summary.KEY)


def summarised(f: TrendFilter | None) -> bool:
    """Whether trend_summary answers counts under the filter: it names only the summary's
    columns (megatrend, macrotrend and the enums), or nothing."""
    if f is None:
        return True
    bounds = (getattr(f, f"{short}_{end}") for short in fields.COUNTS for end in ("min", "max"))
    searched = bool((f.search or "").strip())
    return not searched and f.updated_since is None and all(b is None for b in bounds)


@dataclass(frozen=True)
class SplitSearch:
    """A search under a filter that trend_summary answers otherwise, counted in two parts.

    A term common in megatrend or macrotrend names matches a large share of the trends, which
    a count would read one by one. Those matches are summed over trend_summary's keys instead,
    and only the trends whose names do not hold the term are read, through the trigram index:
    for a term found in names only, none (at 1,000,000 rows: 2.5 ms instead of 141). A count
    whose term no name under the filter holds counts the matching trends as a whole instead,
    which PostgreSQL plans better for a term common in the other columns (a scan of the table).
    """

    rest: TrendFilter  # the filter without its search
    term: str

    @classmethod
    def of(cls, f: TrendFilter | None) -> "SplitSearch | None":
        """The filter's search split so, when it has one and the rest is summarised."""
        if f is None or not (term := text_argument(f.search or "", "search")):
            return None
        rest = dataclasses.replace(f, search=None)
        return cls(rest, term) if summarised(rest) else None

    def in_names(self) -> list[sa.ColumnElement[bool]]:
        """WHERE terms on trend_summary: its keys whose names hold the term."""
        return [
            *filter_clauses(self.rest, TREND_SUMMARY_TABLE),
            found_in(self.term, TREND_SUMMARY_TABLE, NAMES),
        ]

    def elsewhere(self) -> list[sa.ColumnElement[bool]]:
        """WHERE terms on trend: the other matches, whose names do not hold the term."""
        return [
            *filter_clauses(self.rest),
            # Not NOT (...): PostgreSQL would split it into one test per name and run those
            # first, on every row, before the filter's own terms.
            found_in(self.term, TREND_TABLE, NAMES).is_not(sa.true()),
            found_in(self.term, TREND_TABLE, TEXTS),
        ]


@dataclass(frozen=True)
class Bounds:
    """The bounds of a filter that bounds one count (publications or patents) and nothing else.

    Its count sums trend_count_bucket's buckets within the bounds and reads only the trends of
    the bucket each bound cuts, through the count's index: at 1,000,000 trends, a bound that
    matches 180,000 of them reads at most two buckets' trends instead of all 180,000.
    """

    short: str  # the count's short name: a key of fields.COUNTS
    low: int | None
    high: int | None

    @classmethod
    def of(cls, f: TrendFilter | None) -> "Bounds | None":
        """The filter's bounds, when they are all it names and they are of one count."""
        if f is None:
            return None
        bounded = [(short, count_bounds(f, short)) for short in fields.COUNTS]
        bounded = [(short, ends) for short, ends in bounded if ends != (None, None)]
        if len(bounded) != 1:
            return None
        [(short, (low, high))] = bounded
        rest = {f"{short}_min": None, f"{short}_max": None, "search": None}
        if dataclasses.replace(f, **rest) != TrendFilter() or (f.search or "").strip():
            return None
        return cls(short, low, high)

    def count(self) -> sa.Select[Any]:
        """The statement counting the trends within the bounds."""
        width, column = summary.BUCKET_WIDTH, T[fields.COUNTS[self.short]]
        first = None if self.low is None else self.low // width  # the buckets the bounds cut
        last = None if self.high is None else self.high // width
        within = [B.count_name == self.short]
        if first is not None:
            within.append(B.bucket > first)
        if last is not None:
            within.append(B.bucket < last)
        within_sum = sa.select(sa.func.sum(B.trend_count)).where(*within).scalar_subquery()
        total: sa.ColumnElement[Any] = sa.func.coalesce(within_sum, 0)
        # Each cut bucket's trends within the bounds, read once when both bounds cut the same.
        for bucket in sorted({b for b in (first, last) if b is not None}):
            start, end = max(bucket * width, self.low or 0), (bucket + 1) * width - 1
            if self.high is not None:
                end = min(end, self.high)
            total = total + _counted([column.between(start, end)]).scalar_subquery()
        return sa.select(sa.cast(total, sa.Integer))


# Every trend's count, built once (the usual totalCount): building costs more than running it.
_TOTAL = sa.select(sa.cast(sa.func.coalesce(sa.func.sum(S.trend_count), 0), sa.Integer))


def count_statement(trend_filter: TrendFilter | None, dialect: str) -> sa.Select[Any]:
    """The statement counting the trends that match the filter on a database of `dialect`: a
    sum over trend_summary when the filter names only its columns, in part when it also
    searches (SplitSearch), and over trend_count_bucket, where it is kept, when the filter only
    bounds one count (Bounds)."""
    if summarised(trend_filter):
        return _TOTAL.where(*filter_clauses(trend_filter, TREND_SUMMARY_TABLE))
    if summary.buckets_kept(dialect) and (bounds := Bounds.of(trend_filter)):
        return bounds.count()
    whole = _counted(filter_clauses(trend_filter))
    if split := SplitSearch.of(trend_filter):
        in_names = _TOTAL.where(*split.in_names()).subquery("in_names").c[0]
        elsewhere = _counted(split.elsewhere()).scalar_subquery()
        # Only the count chosen runs (each is an InitPlan, run when first needed).
        chosen = sa.case((in_names > 0, elsewhere), else_=whole.scalar_subquery())
        return sa.select(in_names + chosen)
    return whole


def _counted(where: Iterable[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """The count of the trends that meet every term of `where`."""
    return sa.select(sa.func.count()).select_from(TREND_TABLE).where(*where)


def count_trends(session: Session, trend_filter: TrendFilter | None = None) -> int:
    """How many trends match the filter."""
    dialect = session.get_bind().dialect.name
    return int(session.execute(count_statement(trend_filter, dialect)).scalar_one())
