"""Execution with a short path for plain leaf fields, the bulk of every list of trends."""

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    Undefined,
)
from graphql.pyutils import Path
from sqlalchemy.engine import Row
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from trends_gql.schema.completion import plain_reader

if TYPE_CHECKING:
    from graphql.execution.collect_fields import FieldDetailsList  # graphql-core 3.3 on

_NOT_PLAIN: tuple[Any, GraphQLLeafType | None, bool] = (None, None, False)
_LONG_PATH = object()  # the field needs graphql-core's own execution


def _plain_leaf(field: GraphQLField) -> tuple[Any, GraphQLLeafType | None, bool]:
    """(reader of the value, leaf type, nullable) of a field that reads a scalar or an enum."""
    found = field.__dict__.get("_trends_plain_leaf")
    if found is None:
        found = _NOT_PLAIN
        nullable = not isinstance(field.type, GraphQLNonNull)
        leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        definition = field.extensions.get("strawberry-definition")
        read = plain_reader(definition) if isinstance(definition, StrawberryField) else None
        if read is not None and not field.args and isinstance(leaf, GraphQLLeafType):
            found = (read, leaf, nullable)
        field.__dict__["_trends_plain_leaf"] = found
    return found


# Values of leaf fields that are never awaitable (str covers the StrEnum members).
_SYNC_VALUES = (str, int, float, datetime)

# Never awaitable, and costly to ask: a Row answers hasattr(row, "__await__") by raising inside.
_PLAIN_TYPES = frozenset({Row, datetime})


def _is_awaitable(value: Any) -> TypeGuard[Awaitable[Any]]:
    return type(value) not in _PLAIN_TYPES and optimized_is_awaitable(value)


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Plain leaf fields are read and serialised at once, with no resolve info to build.

    Anything else, and any value that is missing where it may not be, or does not serialise,
    takes graphql-core's own path, which reports the error as usual.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_awaitable = _is_awaitable

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: "FieldDetailsList",
        path: Path,
        position_context: Any,
    ) -> Any:
        value = self._plain_value(parent_type, source, field_details_list[0].node)
        if value is not _LONG_PATH:
            return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _plain_value(self, parent_type: GraphQLObjectType, source: Any, node: FieldNode) -> Any:
        """The serialised value of a plain leaf field; _LONG_PATH for anything else."""
        # Strawberry always passes a middleware manager; it is empty unless an extension resolves.
        manager = self.middleware_manager
        if (manager is not None and manager.middlewares) or node.arguments:
            return _LONG_PATH
        field = self.schema.get_field(parent_type, node.name.value)
        read, leaf, nullable = _NOT_PLAIN if field is None else _plain_leaf(field)
        if leaf is None:
            return _LONG_PATH
        try:
            value = read(source)
            if value is None:
                return None if nullable else _LONG_PATH
            if not isinstance(value, _SYNC_VALUES) and self.is_awaitable(value):
                return _LONG_PATH
            serialized = leaf.serialize(value)
        except Exception:  # graphql-core's path runs it again and reports the error
            return _LONG_PATH
        return _LONG_PATH if serialized is None or serialized is Undefined else serialized
