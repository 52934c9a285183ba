"""The root fields prepared reads answer: for each, the statements its resolver's service would
run for the same arguments and selection, and the value their rows make (what the resolver
returns, for schema/completion.py to complete).

Query.trends' `nodes` may come as JSON that PostgreSQL writes beside each row of the page
(schema/rendering.py): they are then answered from that text, not completed in Python.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from graphql import FieldNode, GraphQLField, GraphQLObjectType, get_named_type

from trends_gql.core.pagination import decode_id
from trends_gql.core.settings import Settings
from trends_gql.schema.completion import Complete, Fallback, Fragments, collect
from trends_gql.schema.query import page_arguments
from trends_gql.schema.rendering import PAGE, read_columns, rendered_sql
from trends_gql.schema.types import TREND_COLUMNS, TrendConnection, TrendFacets
from trends_gql.trends import aggregates, counts, queries

Rows = list[list[Any]]  # the rows of each of a field's statements


@dataclass(frozen=True)
class Rendering:
    """A JSON column PostgreSQL writes beside each row of a page (schema/rendering.py)."""

    columns: set[str]  # the keys of the columns it reads
    sql: str  # over the page's subquery (rendering.PAGE)


# The label of each JSON column of a rendered response key -> its rendering.
Rendered = Mapping[str, Rendering]


@dataclass(frozen=True)
class FieldRead:
    """The statements of a root field's value, and the value their rows make."""

    statements: list[sa.Select[Any]]
    source: Callable[[Rows], Any]
    # Whether its last statement is read, from the rows of those before it (None: always).
    last_wanted: Callable[[Rows], bool] | None = None


@dataclass(frozen=True)
class RootCall:
    """What a root field's read is made of."""

    field: GraphQLField
    nodes: list[FieldNode]
    fragments: Fragments
    args: dict[str, Any]  # converted as Strawberry converts them for the resolver
    settings: Settings
    rendered: Rendered  # JSON columns PostgreSQL writes for it (rendered_nodes)
    dialect: str  # of the database it reads


RootRead = Callable[[RootCall], FieldRead]


def _selected(
    parent: GraphQLObjectType, nodes: list[FieldNode], fragments: Fragments
) -> dict[str, list[FieldNode]]:
    """The fields selected below `nodes` (of the type `parent`) by response key."""
    return collect(parent, [node.selection_set for node in nodes if node.selection_set], fragments)


def _named(groups: Mapping[str, list[FieldNode]], name: str) -> list[FieldNode]:
    return [node for group in groups.values() for node in group if node.name.value == name]


def _columns(trend: GraphQLObjectType, nodes: list[FieldNode], fragments: Fragments) -> set[str]:
    """The columns the Trend fields selected below `nodes` read, as the resolvers choose them."""
    names = {group[0].name.value for group in _selected(trend, nodes, fragments).values()}
    return {TREND_COLUMNS[name] for name in names if name in TREND_COLUMNS}


def _object(field: GraphQLField) -> GraphQLObjectType:
    """The object type of a field, under its non-null and list wrappers."""
    type_ = get_named_type(field.type)
    assert isinstance(type_, GraphQLObjectType), f"{field} is not of an object type"
    return type_


def _trends(call: RootCall) -> FieldRead:
    """Query.trends: one page, and its count when totalCount is selected."""
    field, nodes, fragments, rendered = call.field, call.nodes, call.fragments, call.rendered
    connection = _object(field)
    groups = _selected(connection, nodes, fragments)
    completed = {key: group for key, group in groups.items() if _label(key) not in rendered}
    edges = _selected(_object(connection.fields["edges"]), _named(groups, "edges"), fragments)
    trend = _object(connection.fields["nodes"])
    columns = _columns(trend, _named(completed, "nodes") + _named(edges, "node"), fragments)
    read = set(columns).union(*(r.columns for r in rendered.values()))
    with_total = bool(_named(groups, "totalCount"))
    arguments = page_arguments(**call.args)
    page_size = call.settings.max_page_size
    query = queries.page_query(
        **arguments, columns=read, max_page_size=page_size, with_total=with_total
    )
    statement = query.statement
    if rendered:  # the page's rows, and their JSON beside the columns Python still reads
        page = statement.subquery(PAGE)
        kept = {"id", *columns, *(column.key for column, _ in query.keyset.columns)}
        if query.counted:
            kept.add(queries.TOTAL)
        jsons = [sa.literal_column(r.sql, sa.Text).label(k) for k, r in rendered.items()]
        statement = sa.select(*(c for k, c in page.c.items() if k in kept), *jsons).order_by(
            *query.keyset.order_by(page.c)
        )
    if not with_total or query.counted:
        return FieldRead([statement], lambda rows: TrendConnection(page=query.page(rows[0])))

    def counted(rows: Rows) -> bool:
        return not query.page(rows[0]).holds_every_match

    def source(rows: Rows) -> TrendConnection:
        page = query.page(rows[0])
        page.count_matches(lambda: int(rows[1][0][0]))
        return TrendConnection(page=page)

    count = counts.count_statement(arguments["trend_filter"], call.dialect)
    return FieldRead([statement, count], source, last_wanted=counted)


def _trend(call: RootCall) -> FieldRead:
    """Query.trend: the row of its id, or null."""
    pk = decode_id(call.args["id"])
    columns = _columns(_object(call.field), call.nodes, call.fragments)
    statement = queries.trends_statement([pk], columns)
    return FieldRead([statement], lambda rows: next(iter(rows[0]), None))


def _readiness(call: RootCall) -> FieldRead:
    """Query.macrotrendReadiness: one row per macrotrend."""
    statement = aggregates.readiness_statement(call.args["megatrend"])
    made = aggregates.MacrotrendReadiness
    return FieldRead([statement], lambda rows: [made(*row) for row in rows[0]])


def _megatrends(call: RootCall) -> FieldRead:
    """Query.megatrends: one row per megatrend."""
    made = aggregates.MegatrendSummary
    return FieldRead([aggregates.MEGATRENDS], lambda rows: [made(*row) for row in rows[0]])


def _facets(call: RootCall) -> FieldRead:
    """Query.trendFacets: (facet, value, count) rows, under the filter."""
    found = call.args.get("filter")
    statement = aggregates.facets_statement(found.to_query() if found else None)
    return FieldRead(
        [statement], lambda rows: TrendFacets.from_facets(aggregates.facets_of(rows[0]))
    )


# The root fields read here, by name: what each reads for its converted arguments.
ROOTS: dict[str, RootRead] = {
    "trends": _trends,
    "trend": _trend,
    "macrotrendReadiness": _readiness,
    "megatrends": _megatrends,
    "trendFacets": _facets,
}


def _label(key: str) -> str:
    """The label of the JSON column of a rendered response key (no column has it)."""
    return f"json_of_{key}"


def rendered_nodes(
    name: str,
    field: GraphQLField,
    nodes: list[FieldNode],
    fragments: Fragments,
    dialect: sa.Dialect,
) -> tuple[dict[str, Complete], Rendered]:
    """For Query.trends, its `nodes` that PostgreSQL can render: their answers (from the rows'
    JSON), and each JSON column's rendering (in `dialect`'s SQL)."""
    if name != "trends":
        return {}, {}
    connection = _object(field)
    trend = _object(connection.fields["nodes"])
    answers: dict[str, Complete] = {}
    rendered: dict[str, Rendering] = {}
    for key, group in _selected(connection, nodes, fragments).items():
        if group[0].name.value != "nodes":
            continue
        sql = rendered_sql(trend, group, fragments, dialect)
        if sql is not None:
            rendered[_label(key)] = Rendering(read_columns(trend, group, fragments), sql)
            answers[key] = _answer(_label(key))
    return answers, rendered


def _answer(label: str) -> Complete:
    def nodes(connection: TrendConnection) -> orjson.Fragment:
        texts = [getattr(row, label) for row in connection.page.rows]
        if None in texts:  # a value the rendering has no text for
            raise Fallback
        return orjson.Fragment("[" + ",".join(texts) + "]")

    return nodes
