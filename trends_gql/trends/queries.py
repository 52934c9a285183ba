"""Reads of trend records: keyset-paginated lists of the trends a filter matches, and by id.

Filters are in trends/filters.py, counts in trends/counts.py, aggregates in trends/aggregates.py.
"""

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trends_gql.core.errors import BadUserInput, too_many_entries
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.pagination import Keyset, check_first
from trends_gql.trends.counts import count_trends
from trends_gql.trends.filters import TrendFilter, filter_clauses

T = TREND_TABLE.c


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
