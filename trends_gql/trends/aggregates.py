"""SQL aggregates of trends: megatrend summaries, readiness per macrotrend, facet counts.

They read trend_summary (core/summary.py), and facets under a filter that names other columns
than the summary's read the matching trends (grouped once).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.core import fields, summary
from trends_gql.core.models import TREND_SUMMARY_TABLE, TREND_TABLE, TRL_SCORES
from trends_gql.trends.counts import SplitSearch, summarised
from trends_gql.trends.filters import TrendFilter, filter_clauses, text_argument

T = TREND_TABLE.c
S = TREND_SUMMARY_TABLE.c


@dataclass(frozen=True)
class MegatrendSummary:
    name: str
    trend_count: int
    macrotrend_count: int


def _total(counts: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    # A sum of counts is NUMERIC on PostgreSQL: cast back to a whole number.
    return sa.cast(sa.func.sum(counts), sa.Integer)


def _megatrends() -> sa.Select[Any]:
    """The statement of megatrend_summaries: one row of its fields per megatrend."""
    # Grouped by megatrend and macrotrend first, then by megatrend, counting the groups: a
    # count of distinct macrotrends would sort each megatrend's keys (1.5 times the time).
    megatrend = sa.func.lower(S.megatrend)
    pairs = (
        sa.select(
            megatrend.label("key"),
            sa.func.min(S.megatrend).label("name"),
            sa.func.sum(S.trend_count).label("trend_count"),
        )
        .group_by(megatrend, sa.func.lower(S.macrotrend))
        .subquery("pairs")
    )
    name = sa.func.min(pairs.c.name)
    stmt = (
        sa.select(name, _total(pairs.c.trend_count), sa.func.count())
        .group_by(pairs.c.key)
        .order_by(name)
    )
    return cast(sa.Select[Any], stmt)


MEGATRENDS = _megatrends()


def megatrend_summaries(session: Session) -> list[MegatrendSummary]:
    """Each megatrend (case-insensitively) with its trend and distinct macrotrend counts."""
    return [MegatrendSummary(*row) for row in session.execute(MEGATRENDS)]


@dataclass(frozen=True)
class MacrotrendReadiness:
    macrotrend: str
    trend_count: int
    rated_count: int
    average_trl_score: float | None


def _readiness() -> sa.Select[Any]:
    """The statement of macrotrend_readiness: one row of its fields per macrotrend."""
    trl = S.technology_readiness_level
    score = sa.case({level.value: s for level, s in TRL_SCORES.items()}, value=trl, else_=0)
    rated = _total(sa.case((trl.is_not(None), S.trend_count), else_=0))
    name = sa.func.min(S.macrotrend)
    # The mean over rated trends, divided as floats: exact to the last bit on both databases.
    mean = sa.cast(sa.func.sum(score * S.trend_count), sa.Float) / sa.func.nullif(rated, 0)
    megatrend = sa.bindparam("megatrend", type_=sa.String)
    stmt = (
        sa.select(name, _total(S.trend_count), rated, mean)
        .where(sa.func.lower(S.megatrend) == sa.func.lower(megatrend))
        .group_by(sa.func.lower(S.macrotrend))
        .order_by(name)
    )
    return cast(sa.Select[Any], stmt)


# Built once: building it took as long as running it on a small table.
READINESS = _readiness()


def readiness_statement(megatrend: str) -> sa.Select[Any]:
    """The statement of macrotrend_readiness for one megatrend, its value bound."""
    return READINESS.params(megatrend=text_argument(megatrend, "megatrend"))


def macrotrend_readiness(session: Session, megatrend: str) -> list[MacrotrendReadiness]:
    """Mean TRL score (Pilot=2, Development=5, Deploy=8) per macrotrend of a megatrend."""
    parameters = {"megatrend": text_argument(megatrend, "megatrend")}
    return [MacrotrendReadiness(*row) for row in session.execute(READINESS, parameters)]


@dataclass
class Facets:
    total: int = 0
    technology_readiness_level: list[tuple[str, int]] = field(default_factory=list)
    impact_strength: list[tuple[str, int]] = field(default_factory=list)
    steepl: list[tuple[str, int]] = field(default_factory=list)
    megatrend: list[tuple[str, int]] = field(default_factory=list)


def _counts(trend_filter: TrendFilter | None) -> sa.Subquery:
    """Trend counts per key of trend_summary under the filter: the summary's own rows when the
    filter names only its columns, the matching trends grouped so otherwise, or both for a
    search that SplitSearch splits."""
    key = [T[name] for name in summary.KEY]
    kept = [S[name] for name in summary.KEY]
    if summarised(trend_filter):
        where = filter_clauses(trend_filter, TREND_SUMMARY_TABLE)
        return sa.select(*kept, S.trend_count).where(*where).subquery("counts")
    grouped = sa.select(*key, sa.func.count().label("trend_count")).group_by(*key)
    if split := SplitSearch.of(trend_filter):
        in_names = sa.select(*kept, S.trend_count).where(*split.in_names())
        return sa.union_all(in_names, grouped.where(*split.elsewhere())).subquery("counts")
    return grouped.where(*filter_clauses(trend_filter)).subquery("counts")


# Each value of each facet but the megatrend, in the order of facets_statement's columns after
# the megatrend and its count: the members, and None where the column may be null.
_VALUES: list[tuple[str, StrEnum | None]] = [
    (name, value)
    for name, members in fields.CHOICES.items()
    for value in [*members, *([None] if T[name].nullable else [])]
]


def facets_statement(trend_filter: TrendFilter | None) -> sa.Select[Any]:
    """The statement of trend_facets, one pass over the counts: per megatrend (whatever its
    case), its name, its count, and its count for each value of each other facet."""
    c = _counts(trend_filter).c
    per_value = [
        _total(
            sa.case(
                (c[name].is_(None) if value is None else c[name] == value.value, c.trend_count),
                else_=0,
            )
        )
        for name, value in _VALUES
    ]
    stmt = sa.select(sa.func.min(c.megatrend), _total(c.trend_count), *per_value)
    return cast(sa.Select[Any], stmt.group_by(sa.func.lower(c.megatrend)))


def facets_of(rows: Iterable[Any]) -> Facets:
    """The facets of facets_statement's rows (values without trends left out)."""
    facets = Facets()
    sums: dict[tuple[str, StrEnum | None], int] = dict.fromkeys(_VALUES, 0)
    for megatrend, count, *counts in cast(Iterable[tuple[Any, ...]], rows):
        facets.megatrend.append((megatrend, count))
        for facet_value, n in zip(_VALUES, counts, strict=True):
            sums[facet_value] += n
    for (name, value), n in sums.items():
        if n:
            getattr(facets, name).append(("NONE" if value is None else value.name, n))
    for name in (*fields.CHOICES, "megatrend"):
        getattr(facets, name).sort(key=lambda vc: (-vc[1], vc[0]))
    facets.total = sum(count for _, count in facets.megatrend)
    return facets


def trend_facets(session: Session, trend_filter: TrendFilter | None = None) -> Facets:
    """Row counts per value of each enum and per megatrend, in one SQL statement."""
    return facets_of(session.execute(facets_statement(trend_filter)))
