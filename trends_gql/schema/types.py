"""Strawberry types of the public read API."""

import dataclasses
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, cast

import strawberry
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from trends_gql.accounts import sessions
from trends_gql.core import fields, models
from trends_gql.core.pagination import RecordPage, encode_id
from trends_gql.schema.complexity import MAX_ITEMS
from trends_gql.trends import aggregates, filters, queries

TechnologyReadinessLevel = fields.TechnologyReadinessLevel
ImpactStrength = fields.ImpactStrength
Steepl = fields.Steepl
TrendOrderField = queries.TrendOrderField
SortDirection = queries.SortDirection
# strawberry.enum marks each class as a GraphQL enum in place (and returns it): called on its own,
# so that the names above stay type aliases of the classes for type checkers.
for _enum in (TechnologyReadinessLevel, ImpactStrength, Steepl, TrendOrderField, SortDirection):
    strawberry.enum(_enum)


class _Stored(Protocol):
    @property
    def id(self) -> int: ...


def root_id(root: object) -> int:
    """The primary key of the database row a resolver was given as the root of a type."""
    return cast(_Stored, root).id


# Trend, TrendInput and TrendPatch spell out the fields of core/fields.py (Strawberry and type
# checkers read static annotations); tests/test_schema.py checks that they agree.
@strawberry.type(
    description="A trend record. Resolvers pass database rows as its root, not copies."
)
class Trend:
    megatrend: str
    macrotrend: str
    challenges_and_research_gaps: str
    total_count_of_publications: int | None
    total_count_of_patents: int | None
    technology_readiness_level: TechnologyReadinessLevel | None
    impact_strength: ImpactStrength
    steepl: Steepl
    relevant_industries: str | None
    real_world_application_and_use_cases: str | None
    uploaded_at: datetime
    updated_at: datetime

    @strawberry.field(description="Opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id(root_id(self)))


# GraphQL field name -> column key, for loading only the selected columns.
TREND_COLUMNS: dict[str, str] = {
    to_camel_case(f.python_name): f.python_name
    for f in get_object_definition(Trend, strict=True).fields
    if f.python_name != "id"
}


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, cursors: list[str], has_next: bool, has_previous: bool) -> "PageInfo":
        """The page info of a page whose rows have these cursors."""
        return cls(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


@strawberry.type
class TrendEdge:
    cursor: str
    node: Trend


@strawberry.type
class TrendConnection:
    page: strawberry.Private[queries.TrendPage]

    @strawberry.field
    def total_count(self) -> int:
        assert self.page.total is not None, "the resolver counts when totalCount is selected"
        return self.page.total

    @strawberry.field
    def edges(self) -> list[TrendEdge]:
        cursor = self.page.keyset.cursor
        return [TrendEdge(cursor=cursor(row), node=row) for row in self.page.rows]

    @strawberry.field
    def nodes(self) -> list[Trend]:
        return self.page.rows

    @strawberry.field
    def page_info(self) -> PageInfo:
        rows, cursor = self.page.rows, self.page.keyset.cursor
        ends = [cursor(rows[0]), cursor(rows[-1])] if rows else []
        return PageInfo.of(ends, self.page.has_next, self.page.has_previous)


@strawberry.type
class MegatrendSummary:
    name: str
    trend_count: int
    macrotrend_count: int


@strawberry.type
class MacrotrendReadiness:
    macrotrend: str
    trend_count: int
    rated_count: int
    average_trl_score: float | None


@strawberry.type
class Count:
    value: str
    count: int


@strawberry.type
class TrendFacets:
    total: int
    technology_readiness_level: list[Count]
    impact_strength: list[Count]
    steepl: list[Count]
    megatrend: list[Count]

    @classmethod
    def from_facets(cls, facets: aggregates.Facets) -> "TrendFacets":
        def counts(pairs: list[tuple[str, int]]) -> list[Count]:
            return [Count(value=v, count=c) for v, c in pairs]

        return cls(
            total=facets.total,
            technology_readiness_level=counts(facets.technology_readiness_level),
            impact_strength=counts(facets.impact_strength),
            steepl=counts(facets.steepl),
            megatrend=counts(facets.megatrend),
        )


# A longer list is refused while the document is measured, before its entries are converted.
_LIST = {MAX_ITEMS: filters.MAX_FILTER_VALUES}
_ANY = f"[] matches nothing; at most {filters.MAX_FILTER_VALUES} values."


def _bound(count: str, test: str, rule: str = "0 or more") -> str:
    return f"{count} {test} this: {rule}. A trend without the count does not match."


@strawberry.input(description="Conditions that must all hold; null or absent ones are ignored.")
class TrendFilter:
    megatrend: str | None = strawberry.field(default=None, description="Exact, ignoring case.")
    macrotrend: str | None = strawberry.field(default=None, description="Exact, ignoring case.")
    technology_readiness_level: TechnologyReadinessLevel | None = None
    impact_strength: ImpactStrength | None = None
    steepl: Steepl | None = None
    search: str | None = strawberry.field(
        default=None,
        description="Substring, ignoring case, of megatrend, macrotrend, challenges, "
        "industries or use cases.",
    )
    # The lists and bounds of core/fields.py CHOICES and COUNTS; tests/test_schema.py checks them.
    megatrend_in: list[str] | None = strawberry.field(
        default=None, description=f"Any of these, exact, ignoring case. {_ANY}", metadata=_LIST
    )
    technology_readiness_level_in: list[TechnologyReadinessLevel] | None = strawberry.field(
        default=None,
        description=f"Any of these (a trend without a level matches none). {_ANY}",
        metadata=_LIST,
    )
    impact_strength_in: list[ImpactStrength] | None = strawberry.field(
        default=None, description=f"Any of these. {_ANY}", metadata=_LIST
    )
    steepl_in: list[Steepl] | None = strawberry.field(
        default=None, description=f"Any of these. {_ANY}", metadata=_LIST
    )
    publications_min: int | None = strawberry.field(
        default=None,
        description=_bound("totalCountOfPublications", ">=", "0 to publicationsMax"),
    )
    publications_max: int | None = strawberry.field(
        default=None, description=_bound("totalCountOfPublications", "<=")
    )
    patents_min: int | None = strawberry.field(
        default=None, description=_bound("totalCountOfPatents", ">=", "0 to patentsMax")
    )
    patents_max: int | None = strawberry.field(
        default=None, description=_bound("totalCountOfPatents", "<=")
    )
    updated_since: datetime | None = strawberry.field(
        default=None,
        description="updatedAt >= this: what changed since a sync. With a time zone offset "
        "(e.g. 2026-01-31T00:00:00Z); a time without one is refused.",
    )

    def to_query(self) -> filters.TrendFilter:
        """The service's filter: the same fields, lists as tuples."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values[f.name] = tuple(value) if isinstance(value, list) else value
        return filters.TrendFilter(**values)


@strawberry.input
class TrendOrder:
    field: TrendOrderField
    direction: SortDirection = SortDirection.ASC

    def to_query(self) -> queries.TrendOrder:
        return queries.TrendOrder(self.field, self.direction)


@strawberry.type(description="A signed-in person. Resolvers pass the account itself as its root.")
class User:
    email: str
    is_staff: bool
    is_superuser: bool
    last_login: datetime | None

    @strawberry.field(description="Opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id(root_id(self), "User"))


@strawberry.type(description="A signed-in session of the user: where and when it was used.")
class Session:
    pk: strawberry.Private[int]
    created_at: datetime
    last_seen_at: datetime = strawberry.field(description="Updated at most once a minute.")
    expires_at: datetime = strawberry.field(
        description="When it ends unless used again: idle timeout or absolute lifetime, first."
    )
    client_address: str | None
    user_agent: str | None
    current: bool = strawberry.field(description="The session of this request.")

    @strawberry.field(description="Opaque id (not the cookie's secret).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_id(self.pk, "Session"))

    @classmethod
    def of(cls, row: models.UserSession, idle_seconds: int, current_id: int | None) -> "Session":
        """The session a stored row describes."""
        assert row.id is not None, "a stored row"
        return cls(
            pk=row.id,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=sessions.idle_end(row, idle_seconds),
            client_address=row.client_address,
            user_agent=row.user_agent,
            current=row.id == current_id,
        )


@strawberry.input(description="A new trend; validated like a CSV row.")
class TrendInput:
    megatrend: str
    macrotrend: str
    challenges_and_research_gaps: str
    total_count_of_publications: int | None = None
    total_count_of_patents: int | None = None
    technology_readiness_level: TechnologyReadinessLevel | None = None
    impact_strength: ImpactStrength = ImpactStrength.LOW
    steepl: Steepl = Steepl.S
    relevant_industries: str | None = None
    real_world_application_and_use_cases: str | None = None


@strawberry.input(description="Changes to a trend: only the fields given change.")
class TrendPatch:
    megatrend: str | None = strawberry.UNSET
    macrotrend: str | None = strawberry.UNSET
    challenges_and_research_gaps: str | None = strawberry.UNSET
    total_count_of_publications: int | None = strawberry.UNSET
    total_count_of_patents: int | None = strawberry.UNSET
    technology_readiness_level: TechnologyReadinessLevel | None = strawberry.UNSET
    impact_strength: ImpactStrength | None = strawberry.UNSET
    steepl: Steepl | None = strawberry.UNSET
    relevant_industries: str | None = strawberry.UNSET
    real_world_application_and_use_cases: str | None = strawberry.UNSET


N = TypeVar("N")


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type(description="A page of records, newest first.")
class Connection(Generic[N]):
    page: strawberry.Private[RecordPage[Any]]

    @strawberry.field
    def edges(self) -> list[Edge[N]]:
        pairs = zip(self.page.cursors, self.page.records, strict=True)
        return [Edge(cursor=c, node=r) for c, r in pairs]

    @strawberry.field
    def nodes(self) -> list[N]:
        return self.page.records

    @strawberry.field
    def page_info(self) -> PageInfo:
        return PageInfo.of(self.page.cursors, self.page.has_next, self.page.has_previous)
