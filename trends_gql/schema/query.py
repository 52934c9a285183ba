"""The root Query: thin resolvers over the trends services, cached by name and arguments."""

from collections.abc import Iterable, Iterator
from typing import Annotated, Any, cast

import strawberry
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from trends_gql.accounts import sessions
from trends_gql.accounts.auth import clock_time
from trends_gql.accounts.sessions import request_session
from trends_gql.core.models import stored_id
from trends_gql.core.pagination import decode_id
from trends_gql.schema.complexity import COST, MAX_ITEMS
from trends_gql.schema.context import Context
from trends_gql.schema.types import (
    TREND_COLUMNS,
    MacrotrendReadiness,
    MegatrendSummary,
    Session,
    Trend,
    TrendConnection,
    TrendFacets,
    TrendFilter,
    TrendOrder,
    User,
)
from trends_gql.trends import aggregates, queries

# One SQL aggregate, whatever is selected in it: a fixed cost in the document limits.
AGGREGATE = {COST: 100}


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


def _children(fields: Iterable[Selection], *names: str) -> list[SelectedField]:
    return [child for f in fields for child in _fields(f.selections) if child.name in names]


def _columns(nodes: Iterable[Selection]) -> set[str]:
    """Column keys a selection of Trend fields needs."""
    return {
        TREND_COLUMNS[f.name]
        for f in _fields(s for n in nodes for s in n.selections)
        if f.name in TREND_COLUMNS
    }


def page_arguments(
    filter: TrendFilter | None,
    order_by: list[TrendOrder] | None,
    first: int | None,
    after: str | None,
) -> dict[str, Any]:
    """The service's arguments (list_trends, page_query) for the arguments of Query.trends."""
    # A list longer than MAX_ORDER_TERMS is refused before conversion (MAX_ITEMS); the rest of
    # the rule (each field once) is the service's.
    return {
        "trend_filter": filter.to_query() if filter else None,
        "order": [o.to_query() for o in order_by or ()],
        "first": first,
        "after": after,
    }


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user; null when anonymous.")
    async def me(self, info: Info[Context, None]) -> User | None:
        return cast(User | None, await info.context.user())

    @strawberry.field(description="The signed-in user's sessions, most recently used first.")
    async def my_sessions(self, info: Info[Context, None]) -> list[Session]:
        ctx = info.context
        user_id = stored_id(await ctx.signed_in_user())
        now = clock_time(ctx.clock)
        idle = ctx.settings.session_idle_seconds
        rows = await ctx.db.read(
            lambda s: sessions.list_user_sessions(s, user_id, now=now, idle_seconds=idle)
        )
        current = request_session(ctx.request.scope).row
        return [Session.of(row, idle, current.id if current else None) for row in rows]

    @strawberry.field(description="Trends matching a filter, in pages (cursor pagination).")
    async def trends(
        self,
        info: Info[Context, None],
        filter: TrendFilter | None = None,
        order_by: Annotated[
            list[TrendOrder] | None,
            strawberry.argument(metadata={MAX_ITEMS: queries.MAX_ORDER_TERMS}),
        ] = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> TrendConnection:
        # Every node of the field: repeating it with other subfields merges the selections.
        top = info.selected_fields
        nodes = _children(top, "nodes") + _children(_children(top, "edges"), "node")
        ctx = info.context
        page = await ctx.read(
            queries.list_trends,
            **page_arguments(filter, order_by, first, after),
            columns=_columns(nodes),
            with_total=bool(_children(top, "totalCount")),
            max_page_size=ctx.settings.max_page_size,
        )
        return TrendConnection(page=page)

    @strawberry.field(description="One trend by id; null when there is none.")
    async def trend(self, info: Info[Context, None], id: strawberry.ID) -> Trend | None:
        pk = decode_id(id)
        row = await info.context.trend(pk, frozenset(_columns(info.selected_fields)))
        return cast(Trend | None, row)

    @strawberry.field(
        description="Each megatrend with its trend and macrotrend counts.", metadata=AGGREGATE
    )
    async def megatrends(self, info: Info[Context, None]) -> list[MegatrendSummary]:
        return cast(list[MegatrendSummary], await info.context.read(aggregates.megatrend_summaries))

    @strawberry.field(
        description="Mean TRL score (Pilot=2, Development=5, Deploy=8) per macrotrend.",
        metadata=AGGREGATE,
    )
    async def macrotrend_readiness(
        self, info: Info[Context, None], megatrend: str
    ) -> list[MacrotrendReadiness]:
        rows = await info.context.read(aggregates.macrotrend_readiness, megatrend)
        return cast(list[MacrotrendReadiness], rows)

    @strawberry.field(
        description="Row counts per value (nulls as NONE) under a filter.", metadata=AGGREGATE
    )
    async def trend_facets(
        self, info: Info[Context, None], filter: TrendFilter | None = None
    ) -> TrendFacets:
        facets = await info.context.read(
            aggregates.trend_facets, filter.to_query() if filter else None
        )
        return TrendFacets.from_facets(facets)
