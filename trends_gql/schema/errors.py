"""Error codes on every GraphQL error, and masking of unexpected ones."""

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import InvalidOperationTypeError

from trends_gql.core.errors import TrendsError

log = logging.getLogger("trends_gql.errors")

MASKED_MESSAGE = "Internal server error"


def extensions_of(error: GraphQLError) -> dict[str, Any]:
    """The error's extensions, to change in place (GraphQLError makes them a dict)."""
    if error.extensions is None:
        error.extensions = {}
    return error.extensions


def _about_the_request(error: GraphQLError) -> bool:
    """graphql-core's complaint about the variables or arguments, not about our results."""
    original = error.original_error
    if not isinstance(original, GraphQLError):
        return False
    # Variables are coerced before any field runs; a bad argument points at the document, while
    # a result that cannot be serialised (our bug) points at nothing.
    return error.path is None or bool(original.nodes)


def is_unexpected(error: GraphQLError, executing: bool) -> bool:
    """An error that wraps an exception of ours is expected; so are GraphQL's own, and the
    refusal of an operation type (a query over a WebSocket)."""
    original = error.original_error
    if isinstance(original, TrendsError | InvalidOperationTypeError) or _about_the_request(error):
        return False
    if original is not None:
        return True
    # Without an exception: parse, validation or variable errors, unless during field execution.
    return executing and error.path is not None


def _code(error: GraphQLError, executing: bool) -> str:
    if not executing:
        if error.message.startswith("Syntax Error"):
            return "GRAPHQL_PARSE_FAILED"
        return "GRAPHQL_VALIDATION_FAILED"
    return "BAD_USER_INPUT"


class ErrorCodes(SchemaExtension):
    """Give every error an `extensions.code`; hide the details of unexpected ones."""

    def on_operation(self) -> Iterator[None]:
        self.executing = False
        self.streamed = False
        yield
        result = self.execution_context.result
        if self.streamed or result is None or not result.errors:
            return
        result.errors = [self._process(e) for e in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """The same for each result of a subscription, before it is sent."""
        self.streamed = True
        if getattr(result, "errors", None):
            result.errors = [self._process(e) for e in result.errors]
        yield

    def on_execute(self) -> Iterator[None]:
        self.executing = True
        yield

    def _process(self, error: GraphQLError) -> GraphQLError:
        if is_unexpected(error, self.executing):
            return GraphQLError(
                MASKED_MESSAGE,
                nodes=error.nodes,
                path=error.path,
                extensions={"code": "INTERNAL_SERVER_ERROR"},
            )
        extensions = extensions_of(error)
        if "code" not in extensions:
            extensions["code"] = _code(error, self.executing)
        return error
