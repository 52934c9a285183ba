"""The short path for plain leaf fields gives graphql-core's answers, errors included."""

import asyncio
import enum
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import strawberry
from strawberry.extensions import SchemaExtension

from trends_gql.schema.execution import ExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


class Thing:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


@strawberry.type
class Item:
    name: str
    note: str | None
    colour: Colour
    at: datetime

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times

    @strawberry.field
    def upper(self) -> str:
        return self.name.upper()

    @strawberry.field
    def field_name(self, info: strawberry.Info) -> str:
        return info.field_name

    @strawberry.field
    def broken(self) -> int:
        raise ValueError("no number today")

    @strawberry.field
    async def later(self) -> str:
        return self.name + " later"


ROWS: list[Any] = []


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return ROWS


def schemas(*extensions: Callable[[], SchemaExtension]) -> Iterator[strawberry.Schema]:
    """The same schema executed by Strawberry's own context and by ours."""
    yield strawberry.Schema(Query, extensions=list(extensions))
    yield strawberry.Schema(
        Query, extensions=list(extensions), execution_context_class=ExecutionContext
    )


def answers(query: str, *extensions: Callable[[], SchemaExtension]) -> list[Any]:
    results = [s.execute_sync(query) for s in schemas(*extensions)]
    return [(r.data, [(e.message, e.path) for e in r.errors or []]) for r in results]


AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def rows_of(*values: dict[str, Any]) -> list[Any]:
    """SQLAlchemy rows, as the resolvers pass them."""
    with sa.create_engine("sqlite://").connect() as conn:
        selects = [
            sa.select(*(sa.literal(v).label(k) for k, v in value.items())) for value in values
        ]
        return [conn.execute(s).one() for s in selects]


def test_leaves_come_out_as_strawberry_gives_them() -> None:
    ROWS[:] = [
        Thing(name="a", note=None, colour=Colour.RED, at=AT),
        Thing(name="b", note="n", colour=Colour.RED, at=AT),
    ]
    ours, theirs = answers("{ items { name note colour at shout(times: 2) upper fieldName } }")
    assert ours == theirs
    assert ours[0]["items"][0] == {
        "name": "a",
        "note": None,
        "colour": "RED",
        "at": "2026-11-27T12:00:00+00:00",
        "shout": "AA",
        "upper": "A",
        "fieldName": "fieldName",
    }


def test_fields_keep_the_documents_order_around_resolvers_sync_and_async() -> None:
    ROWS[:] = [Thing(name="a", note=None, colour=Colour.RED, at=AT)]
    query = "{ items { shout name later note upper colour } }"
    ours, theirs = (asyncio.run(s.execute(query)) for s in schemas())
    assert ours.errors is theirs.errors is None
    assert ours.data == theirs.data
    assert list(ours.data["items"][0]) == ["shout", "name", "later", "note", "upper", "colour"]
    assert ours.data["items"][0]["later"] == "a later"


def test_sqlalchemy_rows_serve_as_roots() -> None:
    ROWS[:] = rows_of({"name": "r", "note": None, "colour": "x", "at": "y"})
    ours, theirs = answers("{ items { name note } }")
    assert ours == theirs == ({"items": [{"name": "r", "note": None}]}, [])


def test_missing_and_unserialisable_values_are_errors_as_before() -> None:
    ROWS[:] = [
        Thing(name=None, note=None, colour=Colour.RED, at=AT),
        Thing(name="ok", note=None, colour="not a colour", at=AT),
    ]
    ours, theirs = answers("{ items { name colour } }")
    assert ours == theirs
    assert ours[0] is None
    assert ours[1][0][0] == "Cannot return null for non-nullable field Item.name."
    ROWS[:] = [Thing(name="a", note=None, colour=Colour.RED, at=AT)]
    ours, theirs = answers("{ items { name broken } }")
    assert ours == theirs == (None, [("no number today", ["items", 0, "broken"])])


def test_resolve_hooks_of_extensions_still_see_every_field() -> None:
    seen: list[str] = []

    class Watch(SchemaExtension):
        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(info.field_name)
            return _next(root, info, *args, **kwargs)

    ROWS[:] = [Thing(name="a", note=None, colour=Colour.RED, at=AT)]
    ours, theirs = answers("{ items { name note } }", Watch)
    assert ours == theirs
    assert seen == ["items", "name", "note"] * 2
