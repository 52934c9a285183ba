"""Trends rendered as JSON by PostgreSQL, byte for byte as the API answers them.

A page of 500 trends is 6,500 values to complete and encode in Python; PostgreSQL writes the
same text in a fraction of the time, beside the columns of the page's statement. Each field of a
plain selection of Trend becomes the SQL of its JSON text: strings through to_json (PostgreSQL
escapes them as orjson does), counts as numbers, enums as the names the schema answers, DateTime
as Python's isoformat of the UTC time, the id as encode_id; an object is their concatenation in
the selection's order. A field without such a rendering (or a nullable column behind a non-null
field, whose null graphql-core would report) leaves the selection to Python's completion.
tests/test_prepared.py compares every byte with graphql-core's answers.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import Enum
from functools import reduce
from typing import Any

import sqlalchemy as sa
from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLString,
    get_nullable_type,
)

from trends_gql.core.db import UTCDateTime
from trends_gql.core.models import TREND_TABLE
from trends_gql.schema.completion import TYPENAME, Fragments, collect
from trends_gql.schema.types import TREND_COLUMNS

Text = sa.ColumnElement[str]
Column = sa.ColumnElement[Any]


def _constant(text: str) -> Text:
    """A constant of the statement (written into it, not bound: it never changes)."""
    return sa.literal(text, sa.Text, literal_execute=True)


def _joined(parts: Iterable[Text]) -> Text:
    return reduce(lambda left, right: left.op("||")(right), parts)


def _id(column: Column) -> Text:
    """encode_id's text of a trend's id: base64url of "Trend:<pk>", without padding."""
    raw = sa.func.convert_to(_constant("Trend:").op("||")(sa.cast(column, sa.Text)), "UTF8")
    encoded = sa.func.translate(sa.func.encode(raw, "base64"), "+/", "-_")
    return _joined([_constant('"'), sa.func.rtrim(encoded, "="), _constant('"')])


def _time(column: Column) -> Text:
    """datetime.isoformat() of a UTC time: microseconds only when there are some."""
    utc = sa.func.timezone("UTC", column)
    whole = sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS')
    micro = sa.cast(sa.extract("microseconds", column), sa.Integer) % 1_000_000
    fraction = sa.case((micro == 0, _constant("")), else_=sa.func.to_char(utc, ".US"))
    return _joined([_constant('"'), whole, fraction, _constant('+00:00"')])


def _names(leaf: GraphQLEnumType, column: Column) -> Text | None:
    """The enum's name of the column's value; null for null, and NULL (no JSON: the row goes
    to graphql-core, which reports it) for a value that is no member."""
    members = getattr(leaf, "wrapped_cls", None)  # a Strawberry enum's Python class
    if not isinstance(members, type) or not issubclass(members, Enum):
        return None
    stored = sa.cast(column, sa.Text)
    names = [
        (stored == _constant(m.value), _constant(f'"{leaf.coerce_output_value(m)}"'))
        for m in members
    ]
    return sa.case((column.is_(None), _constant("null")), *names, else_=sa.null())


def _value(field: GraphQLField, stored: sa.Column[Any], column: Column) -> Text | None:
    """The JSON text of a Trend field read from `column`, a copy of its table's `stored`; None
    without a rendering here."""
    non_null = isinstance(field.type, GraphQLNonNull)
    leaf = _type(field)
    if non_null and stored.nullable:
        return None  # a null there is an error, which graphql-core reports
    if isinstance(leaf, GraphQLEnumType) and isinstance(stored.type, sa.Enum):
        return _names(leaf, column)
    text: Text | None = None
    if leaf is GraphQLString:
        text = sa.cast(sa.func.to_json(column), sa.Text)
    elif leaf is GraphQLInt and isinstance(stored.type, sa.Integer):
        text = sa.cast(column, sa.Text)
    elif _isoformat(leaf) and isinstance(stored.type, UTCDateTime):
        text = _time(column)
    if text is None or non_null:
        return text
    return sa.func.coalesce(text, _constant("null"))


def _isoformat(leaf: Any) -> bool:
    """Whether a scalar answers datetimes as their isoformat() (Strawberry's DateTime)."""
    if not isinstance(leaf, GraphQLScalarType) or leaf.name != "DateTime":
        return False
    probe = datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
    return bool(leaf.coerce_output_value(probe) == probe.isoformat())


def _type(field: GraphQLField) -> Any:
    return get_nullable_type(field.type)


def trend_json(
    trend: GraphQLObjectType,
    nodes: list[FieldNode],
    fragments: Fragments,
    columns: Mapping[str, Column] | sa.ColumnCollection[str, Any] = TREND_TABLE.c,
) -> Text | None:
    """The JSON text of each row's Trend for a plain selection (`nodes`), from `columns` (the
    table's, or a subquery's of them, by key); None when a field of it has no rendering here.

    It reads the columns `read_columns` names.
    """
    sets = [node.selection_set for node in nodes if node.selection_set]
    parts: list[Text] = []
    for key, group in collect(trend, sets, fragments).items():
        name = group[0].name.value
        if name == TYPENAME:
            value: Text | None = _constant(f'"{trend.name}"')
        elif name == "id" and _type(trend.fields[name]) is GraphQLID:
            value = _id(columns["id"])
        elif name in TREND_COLUMNS:
            stored = TREND_TABLE.c[TREND_COLUMNS[name]]
            value = _value(trend.fields[name], stored, columns[stored.key])
        else:
            value = None
        if value is None:
            return None
        parts += [_constant(("," if parts else "{") + f'"{key}":'), value]
    return _joined([*parts, _constant("}")]) if parts else None


def read_columns(
    trend: GraphQLObjectType, nodes: list[FieldNode], fragments: Fragments
) -> set[str]:
    """The keys of the columns `trend_json` reads for a selection."""
    sets = [node.selection_set for node in nodes if node.selection_set]
    names = {group[0].name.value for group in collect(trend, sets, fragments).values()}
    return {"id"} | {TREND_COLUMNS[name] for name in names if name in TREND_COLUMNS}


# The name of the page's subquery that rendered SQL reads its columns from.
PAGE = "page"


def rendered_sql(
    trend: GraphQLObjectType, nodes: list[FieldNode], fragments: Fragments, dialect: sa.Dialect
) -> str | None:
    """`trend_json`'s SQL over the columns of a subquery named PAGE, its constants written in;
    None when a field has no rendering here.

    Building and compiling it costs several milliseconds: it is done once per document, not for
    each request's variables."""
    rendering = trend_json(trend, nodes, fragments, TREND_TABLE.alias(PAGE).c)
    if rendering is None:
        return None
    sql = str(rendering.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    # A dialect of pyformat parameters (psycopg's) doubles each percent sign of the text, and
    # doubles it again where the text is written into a statement (sa.literal_column).
    return sql.replace("%%", "%") if dialect.paramstyle == "pyformat" else sql
