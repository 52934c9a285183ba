"""The short path for plain leaf fields gives graphql-core's answers, errors included."""

import asyncio
import enum
import re
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import strawberry
from strawberry.extensions import SchemaExtension

from trends_gql.schema import TESTED_VERSIONS, execution_context_class, untested_versions
from trends_gql.schema import schema as trends_schema
from trends_gql.schema.execution import _LONG_PATH, ExecutionContext


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


# The fence: the short path is taken, and only with the libraries it is tested with


def test_the_short_path_answers_the_plain_leaves_with_the_schemas_own_context() -> None:
    chosen = trends_schema.execution_context_class
    assert chosen is ExecutionContext  # not fallen back to graphql-core's own
    answered: list[str] = []

    class Counting(chosen):  # type: ignore[misc,valid-type]  # the class the real schema runs
        def _plain_value(self, parent_type: Any, source: Any, node: Any) -> Any:
            value = super()._plain_value(parent_type, source, node)
            if value is not _LONG_PATH:
                answered.append(node.name.value)
            return value

    ROWS[:] = [Thing(name=n, note=None, colour=Colour.RED, at=AT) for n in "ab"]
    counting = strawberry.Schema(Query, execution_context_class=Counting)
    result = counting.execute_sync("{ items { name note colour at upper shout(times: 2) } }")
    assert result.errors is None
    # Every plain leaf of each row, by the short path; `shout` (an argument) by the long one.
    assert answered == ["name", "note", "colour", "at", "upper"] * 2


def test_the_installed_libraries_are_within_the_tested_versions() -> None:
    assert untested_versions() == []


def test_untested_libraries_turn_the_short_path_off_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    installed = {"graphql-core": "3.2.6", "strawberry-graphql": "0.341.2"}
    assert untested_versions(installed) == ["graphql-core 3.2.6"]
    assert execution_context_class(installed) is None
    assert "execution fast path off: it is not tested with graphql-core 3.2.6" in caplog.text
    for beyond in ({"graphql-core": "3.4.0"}, {"strawberry-graphql": "0.342.0"}):
        assert untested_versions({**installed, "graphql-core": "3.3.0", **beyond})
    assert execution_context_class({**installed, "graphql-core": "3.3.0"}) is ExecutionContext


def test_the_tested_versions_are_the_bounds_pyproject_allows() -> None:
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    bounds = {}
    for requirement in project["project"]["dependencies"]:
        found = re.fullmatch(r"([\w-]+)(?:\[[\w,]+\])?>=([\d.]+),<([\d.]+)", requirement)
        if found and found[1] in TESTED_VERSIONS:
            bounds[found[1]] = (found[2], found[3])
    assert bounds == TESTED_VERSIONS
