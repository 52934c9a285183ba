"""Execution with a short path for plain leaf fields, the bulk of every list of trends."""

from datetime import datetime
from operator import attrgetter
from typing import Any

from graphql import GraphQLField, GraphQLLeafType, GraphQLNonNull, GraphQLObjectType, Undefined
from graphql.execution.executor import FieldDetailsList
from graphql.pyutils import Path
from sqlalchemy.engine import Row
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

_NOT_PLAIN = (None, None, False)


def _plain_leaf(field: GraphQLField) -> tuple[Any, GraphQLLeafType | None, bool]:
    """(attribute getter, leaf type, nullable) of a field that reads a scalar or an enum."""
    found = field.__dict__.get("_trends_plain_leaf")
    if found is None:
        found = _NOT_PLAIN
        nullable = not isinstance(field.type, GraphQLNonNull)
        leaf = field.type if nullable else field.type.of_type  # type: ignore[union-attr]
        # A "basic" Strawberry field has no resolver, extensions or permissions of its own:
        # its value is the attribute, read with the default resolver.
        definition = field.extensions.get("strawberry-definition")
        plain = (
            isinstance(definition, StrawberryField)
            and definition.is_basic_field
            and definition.default_resolver is getattr
            and not field.args
        )
        if plain and isinstance(leaf, GraphQLLeafType):
            found = (attrgetter(definition.python_name), leaf, nullable)  # type: ignore[union-attr]
        field.__dict__["_trends_plain_leaf"] = found
    return found


# Values of leaf fields that are never awaitable (str covers the StrEnum members).
_SYNC_VALUES = (str, int, float, datetime)

# Never awaitable, and costly to ask: a Row answers hasattr(row, "__await__") by raising inside.
_PLAIN_TYPES = frozenset({Row, datetime})


def _is_awaitable(value: Any) -> bool:
    return type(value) not in _PLAIN_TYPES and optimized_is_awaitable(value)


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Plain leaf fields are read and serialised at once, with no resolve info to build.

    Anything else, and any value that is missing where it may not be, or does not serialise,
    takes graphql-core's own path, which reports the error as usual.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_awaitable = _is_awaitable  # type: ignore[assignment]

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        # Strawberry always passes a middleware manager; it is empty unless an extension resolves.
        manager = self.middleware_manager
        if (manager is None or not manager.middlewares) and not node.arguments:
            field = self.schema.get_field(parent_type, node.name.value)
            if field is not None:
                read, leaf, nullable = _plain_leaf(field)
                if leaf is not None:
                    value = read(source)
                    if value is None:
                        if nullable:
                            return None
                    elif isinstance(value, _SYNC_VALUES) or not self.is_awaitable(value):
                        try:
                            serialized = leaf.serialize(value)
                        except Exception:  # graphql-core's path reports it
                            serialized = None
                        if serialized is not None and serialized is not Undefined:
                            return serialized
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
