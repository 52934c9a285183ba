"""Filters on trend records: what a TrendFilter may say, and the WHERE terms it makes.

The same terms filter pages (trends/queries.py), counts (trends/counts.py), facets
(trends/aggregates.py) and exports; applied to trend_summary, they filter its keys.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trends_gql.core import fields
from trends_gql.core.errors import BadUserInput, too_many_entries
from trends_gql.core.fields import ImpactStrength, Steepl, TechnologyReadinessLevel
from trends_gql.core.models import TREND_TABLE

# The most values a list of a filter (megatrendIn, steeplIn, ...) takes.
MAX_FILTER_VALUES = 100


@dataclass(frozen=True)
class TrendFilter:
    """Conditions that all hold (AND); text matches ignore case.

    A list (`*_in`) matches any of its values, and nothing when empty; count bounds are
    inclusive and match no trend without that count. Each enum field has `<name>_in`, each count
    field `<short>_min` and `<short>_max` (core/fields.py CHOICES and COUNTS).
    """

    megatrend: str | None = None
    macrotrend: str | None = None
    technology_readiness_level: TechnologyReadinessLevel | None = None
    impact_strength: ImpactStrength | None = None
    steepl: Steepl | None = None
    search: str | None = None
    megatrend_in: tuple[str, ...] | None = None
    technology_readiness_level_in: tuple[TechnologyReadinessLevel, ...] | None = None
    impact_strength_in: tuple[ImpactStrength, ...] | None = None
    steepl_in: tuple[Steepl, ...] | None = None
    publications_min: int | None = None
    publications_max: int | None = None
    patents_min: int | None = None
    patents_max: int | None = None
    updated_since: datetime | None = None  # timezone-aware


def text_argument(value: str, field: str) -> str:
    """A text argument without its outer spaces; BadUserInput when it holds a NUL character."""
    # PostgreSQL refuses NUL in text parameters, and no stored record contains one.
    if "\x00" in value:
        raise BadUserInput(f"{field} must not contain a NUL character", field=field)
    return value.strip()


def _values(f: TrendFilter, name: str) -> tuple[str, Sequence[Any] | None]:
    """The API name of the list `name` of a filter, and its values within MAX_FILTER_VALUES."""
    api_name = fields.api_name(name)
    values: Sequence[Any] | None = getattr(f, name)
    if values is not None and len(values) > MAX_FILTER_VALUES:
        raise too_many_entries(api_name, MAX_FILTER_VALUES, len(values))
    return api_name, values


def _one_of(column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    # An empty list matches nothing, as Hasura's `_in: []` (SQL has no empty IN list).
    return column.in_(values) if values else sa.false()


def count_bounds(f: TrendFilter, short: str) -> tuple[int | None, int | None]:
    """The bounds of a count, each 0 or more and the lower one not above the upper one."""
    low, high = getattr(f, f"{short}_min"), getattr(f, f"{short}_max")
    for end, bound in (("Min", low), ("Max", high)):
        if bound is not None and bound < 0:
            name = f"{short}{end}"
            raise BadUserInput(f"{name} must be 0 or more, got {bound}", field=name)
    if low is not None and high is not None and low > high:
        raise BadUserInput(
            f"{short}Min ({low}) is greater than {short}Max ({high}): nothing can match",
            field=f"{short}Min",
        )
    return low, high


def _since(moment: datetime) -> datetime:
    """A timezone-aware moment; BadUserInput for a naive one, whose zone the API cannot know."""
    if moment.utcoffset() is None:
        raise BadUserInput(
            "updatedSince needs a time zone offset, e.g. 2026-01-31T00:00:00Z",
            field="updatedSince",
        )
    return moment


def found_in(term: str, table: sa.TableClause, names: Iterable[str]) -> sa.ColumnElement[bool]:
    """Whether any of the columns `names` of `table` holds `term`, ignoring case."""
    return sa.or_(*(table.c[name].icontains(term, autoescape=True) for name in names))


def filter_clauses(
    f: TrendFilter | None, table: sa.TableClause = TREND_TABLE
) -> list[sa.ColumnElement[bool]]:
    """WHERE terms for a filter on trends (or on the summary, for a filter `summarised` says it
    answers); BadUserInput, naming the argument, when the filter cannot be used."""
    # megatrend(_in) and macrotrend use the lower() indexes, updated_since ix_trend_updated_at.
    if f is None:
        return []
    c = table.c
    clauses: list[sa.ColumnElement[bool]] = []
    if f.megatrend is not None:
        megatrend = text_argument(f.megatrend, "megatrend")
        clauses.append(sa.func.lower(c.megatrend) == sa.func.lower(megatrend))
    api_name, megatrends = _values(f, "megatrend_in")
    if megatrends is not None:
        lowered = [sa.func.lower(text_argument(m, api_name)) for m in megatrends]
        clauses.append(_one_of(sa.func.lower(c.megatrend), lowered))
    if f.macrotrend is not None:
        macrotrend = text_argument(f.macrotrend, "macrotrend")
        clauses.append(sa.func.lower(c.macrotrend) == sa.func.lower(macrotrend))
    for name in fields.CHOICES:
        if (value := getattr(f, name)) is not None:
            clauses.append(c[name] == value)
        _, values = _values(f, f"{name}_in")
        if values is not None:
            clauses.append(_one_of(c[name], values))
    for short, name in fields.COUNTS.items():
        low, high = count_bounds(f, short)
        if low is not None:
            clauses.append(c[name] >= low)
        if high is not None:
            clauses.append(c[name] <= high)
    if f.updated_since is not None:
        clauses.append(c.updated_at >= _since(f.updated_since))
    term = text_argument(f.search or "", "search")
    if term:
        clauses.append(found_in(term, table, fields.SEARCHED))
    return clauses
