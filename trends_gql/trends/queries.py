"""Reads of trend records: filters, keyset-paginated lists and counts.

A count reads trend_summary (counts per megatrend, macrotrend, TRL, impact and STEEPL, kept
exact by triggers: core/summary.py) whenever the filter names only those columns, and the
matching trends otherwise; the aggregates are in trends/aggregates.py. A search under such a
filter is counted in two parts (SplitSearch): its matches in megatrend or macrotrend from
trend_summary, and only the other trends from the trends themselves.
"""

import dataclasses
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.core import fields, summary
from trends_gql.core.errors import BadUserInput, too_many_entries
from trends_gql.core.fields import ImpactStrength, Steepl, TechnologyReadinessLevel
from trends_gql.core.models import TREND_COUNT_BUCKET_TABLE, TREND_SUMMARY_TABLE, TREND_TABLE
from trends_gql.core.pagination import Keyset, check_first

T = TREND_TABLE.c
S = TREND_SUMMARY_TABLE.c
B = TREND_COUNT_BUCKET_TABLE.c
# The searched columns that trend_summary holds too, and the others. Each is matched on its own,
# as the trigram index ix_trend_search holds it: a term never spans two columns.
NAMES = tuple(name for name in fields.SEARCHED if name in summary.KEY)
TEXTS = tuple(name for name in fields.SEARCHED if name not in summary.KEY)


class TrendOrderField(enum.Enum):
    ID = "id"
    MEGATREND = "megatrend"
    MACROTREND = "macrotrend"
    PUBLICATIONS = "total_count_of_publications"
    PATENTS = "total_count_of_patents"
    UPLOADED_AT = "uploaded_at"
    UPDATED_AT = "updated_at"


class SortDirection(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class TrendOrder:
    field: TrendOrderField
    direction: SortDirection = SortDirection.ASC


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


def _bounds(f: TrendFilter, short: str) -> tuple[int | None, int | None]:
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


def _found(term: str, table: sa.TableClause, names: Iterable[str]) -> sa.ColumnElement[bool]:
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
        low, high = _bounds(f, short)
        if low is not None:
            clauses.append(c[name] >= low)
        if high is not None:
            clauses.append(c[name] <= high)
    if f.updated_since is not None:
        clauses.append(c.updated_at >= _since(f.updated_since))
    term = text_argument(f.search or "", "search")
    if term:
        clauses.append(_found(term, table, fields.SEARCHED))
    return clauses


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
            _found(self.term, TREND_SUMMARY_TABLE, NAMES),
        ]

    def elsewhere(self) -> list[sa.ColumnElement[bool]]:
        """WHERE terms on trend: the other matches, whose names do not hold the term."""
        return [
            *filter_clauses(self.rest),
            # Not NOT (...): PostgreSQL would split it into one test per name and run those
            # first, on every row, before the filter's own terms.
            _found(self.term, TREND_TABLE, NAMES).is_not(sa.true()),
            _found(self.term, TREND_TABLE, TEXTS),
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
        bounded = [(short, _bounds(f, short)) for short in fields.COUNTS]
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
        cut: list[tuple[int, int]] = []  # the ranges of values read from the trends
        if first is not None:
            within.append(B.bucket > first)
            cut.append((first * width, first * width + width - 1))
        if last is not None:
            within.append(B.bucket < last)
            if last != first:
                cut.append((last * width, last * width + width - 1))
        within_sum = sa.select(sa.func.sum(B.trend_count)).where(*within).scalar_subquery()
        total: sa.ColumnElement[Any] = sa.func.coalesce(within_sum, 0)
        low, high = self.low or 0, self.high
        for start, end in cut:
            values = column.between(max(start, low), end if high is None else min(end, high))
            total = total + _counted([values]).scalar_subquery()
        return sa.select(sa.cast(total, sa.Integer))


@dataclass
class TrendPage:
    rows: list[Any]
    keyset: Keyset
    has_next: bool
    has_previous: bool
    total: int | None = None

    @property
    def holds_every_match(self) -> bool:
        """Whether the page is a first page with nothing after it: its rows are every match, and
        their number is the count (no statement needed)."""
        return not self.has_previous and not self.has_next

    def count_matches(self, count: Callable[[], int]) -> None:
        """Set `total` unless the page's statement counted it: the page's own rows when it holds
        every match, `count()` otherwise."""
        if self.total is None:
            self.total = len(self.rows) if self.holds_every_match else count()


# More terms order nothing further (each field once; id breaks ties) and only slow the keyset.
MAX_ORDER_TERMS = 3


def check_order(order: Sequence[TrendOrder] | None) -> list[TrendOrder]:
    """The ordering, when it has at most 3 terms of distinct fields; BadUserInput otherwise."""
    terms = list(order or ())
    if len(terms) > MAX_ORDER_TERMS:
        raise too_many_entries("orderBy", MAX_ORDER_TERMS, len(terms))
    seen: set[TrendOrderField] = set()
    for term in terms:
        if term.field in seen:
            raise BadUserInput(
                f"orderBy names {term.field.name} more than once: give each field once",
                field="orderBy",
            )
        seen.add(term.field)
    return terms


def _keyset(order: Sequence[TrendOrder] | None) -> Keyset:
    terms = [(T[o.field.value], o.direction is SortDirection.DESC) for o in check_order(order)]
    return Keyset(terms, T.id)


def _select(columns: Iterable[str], keyset: Keyset) -> sa.Select[Any]:
    wanted = {"id", *columns, *(col.key for col, _ in keyset.columns)}
    return sa.select(*(c for c in TREND_TABLE.columns if c.key in wanted))


# Every trend's count, built once (the usual totalCount): building costs more than running it.
_TOTAL = sa.select(sa.cast(sa.func.coalesce(sa.func.sum(S.trend_count), 0), sa.Integer))


def count_statement(trend_filter: TrendFilter | None = None) -> sa.Select[Any]:
    """The statement counting the trends that match the filter: a sum over trend_summary when
    the filter names only its columns, in part when it also searches (SplitSearch), and over
    trend_count_bucket when it only bounds one count (Bounds)."""
    if summarised(trend_filter):
        return _TOTAL.where(*filter_clauses(trend_filter, TREND_SUMMARY_TABLE))
    if bounds := Bounds.of(trend_filter):
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
    return int(session.execute(count_statement(trend_filter)).scalar_one())


# The column of a page's rows that holds the count of every match, when the page counts them.
TOTAL = "total_matches"


@dataclass(frozen=True)
class PageQuery:
    """The statement of a page of trends, and how its rows make the page."""

    statement: sa.Select[Any]
    keyset: Keyset
    first: int
    after: str | None
    counted: bool = False  # whether each row holds the count of every match (TOTAL)

    def page(self, rows: Sequence[Any]) -> TrendPage:
        """The page of the statement's rows (it reads one more, to tell whether more follow)."""
        page = TrendPage(
            list(rows[: self.first]),
            self.keyset,
            has_next=len(rows) > self.first,
            has_previous=self.after is not None,
        )
        if self.counted:
            page.total = getattr(rows[0], TOTAL) if rows else 0
        return page


def page_query(
    *,
    trend_filter: TrendFilter | None = None,
    order: Sequence[TrendOrder] | None = None,
    first: int | None = 50,
    after: str | None = None,
    columns: Iterable[str] = (),
    max_page_size: int = 500,
    with_total: bool = False,
) -> PageQuery:
    """The statement of one page of matching trends (`columns`, id and the ordering's); with
    `with_total`, its rows also hold the count of every match when that costs no other read."""
    first = check_first(first, max_page_size)
    keyset = _keyset(order)
    where = filter_clauses(trend_filter)
    if trend_filter and trend_filter.updated_since is not None and len(keyset.columns) == 1:
        # What changed lately is mostly the newest ids (an import's rows come together), which
        # the planner cannot know: walking ids for them would read nearly every trend. The ids
        # of the matches are collected first (by ix_trend_updated_at), then ordered.
        if after is not None:
            where.append(keyset.after(after))
        matching = sa.select(T.id).where(*where).cte("matching")
        matching = matching.prefix_with("MATERIALIZED", dialect="postgresql")
        ids = sa.select(matching.c.id).order_by(*keyset.order_by(matching.c)).limit(first + 1)
        stmt = keyset.page(_select(columns, keyset).where(T.id.in_(ids)), None, first + 1)
        if with_total and after is None:
            # A first page collected every match: counting them again would read them again.
            total = sa.select(sa.func.count()).select_from(matching).scalar_subquery()
            return PageQuery(stmt.add_columns(total.label(TOTAL)), keyset, first, after, True)
    else:
        stmt = keyset.page(_select(columns, keyset).where(*where), after, first + 1)
    return PageQuery(stmt, keyset, first, after)


def list_trends(
    session: Session,
    *,
    trend_filter: TrendFilter | None = None,
    order: Sequence[TrendOrder] | None = None,
    first: int | None = 50,
    after: str | None = None,
    columns: Iterable[str] = (),
    with_total: bool = False,
    max_page_size: int = 500,
) -> TrendPage:
    """One page of matching trends, loading only `columns` (plus id and the ordering)."""
    query = page_query(
        trend_filter=trend_filter,
        order=order,
        first=first,
        after=after,
        columns=columns,
        max_page_size=max_page_size,
        with_total=with_total,
    )
    page = query.page(list(session.execute(query.statement)))
    if with_total:
        page.count_matches(lambda: count_trends(session, trend_filter))
    return page


def get_trend(session: Session, pk: int, columns: Iterable[str] = ()) -> Any | None:
    """The trend with primary key `pk`, or None."""
    return get_trends(session, [pk], columns).get(pk)


def get_trends(session: Session, pks: Iterable[int], columns: Iterable[str] = ()) -> dict[int, Any]:
    """The trends with these primary keys, by key (absent ones are left out)."""
    return {row.id: row for row in session.execute(trends_statement(pks, columns))}


def trends_statement(pks: Iterable[int], columns: Iterable[str] = ()) -> sa.Select[Any]:
    """The statement selecting the trends with these primary keys (`columns` and id)."""
    wanted = {"id", *columns}
    stmt = sa.select(*(c for c in TREND_TABLE.columns if c.key in wanted))
    return stmt.where(T.id.in_(set(pks)))
