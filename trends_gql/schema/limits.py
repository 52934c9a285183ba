"""Limits on GraphQL documents and batches, and the introspection switch, from the settings."""

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
)
from starlette.requests import Request
from strawberry.extensions import (
    DisableIntrospection,
    MaxTokensLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from trends_gql.core.errors import too_many_entries
from trends_gql.core.settings import Settings
from trends_gql.schema.complexity import Figures, measure
from trends_gql.schema.errors import extensions_of

# Documents parsed and validated once per process (per distinct text and rule set).
DOCUMENT_CACHE_SIZE = 512

# graphql-core's token limit reports a plain syntax error; its message tells the limit.
_LIMIT_MESSAGES = (
    (re.compile(r"^Syntax Error: Document contains more than \d+ tokens\b"), "TOO_MANY_TOKENS"),
)


class LimitErrorCodes(SchemaExtension):
    """Give the errors of the document limits codes of their own, before execution."""

    def on_parse(self) -> Iterator[None]:
        yield
        self._code_errors()

    def on_validate(self) -> Iterator[None]:
        yield
        self._code_errors()

    def _code_errors(self) -> None:
        for error in self.execution_context.pre_execution_errors or []:
            code = _limit_code(error)
            if code:
                extensions_of(error)["code"] = code


class CachedParse(SchemaExtension):
    """Parse each distinct document once per process, like Strawberry's ParserCache.

    A document that does not parse is left to Strawberry's own parsing, whose error goes
    through the usual error handling (ParserCache raises from inside its hook instead).
    """

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        with contextlib.suppress(GraphQLError):
            ctx.graphql_document = parse_document(ctx.query, **ctx.parse_options)
        yield


@functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def parse_document(query: str, **options: Any) -> DocumentNode:
    """The parsed document, once per process per distinct text and options (the one parse cache).

    Raises GraphQLError when it does not parse. Pass options by keyword, as Strawberry's
    parse options (`max_tokens`, set by MaxTokensLimiter), so that every caller shares entries.
    """
    return parse(query, **options)


def _limit_code(error: GraphQLError) -> str | None:
    if error.original_error is not None:
        return None
    for pattern, code in _LIMIT_MESSAGES:
        if pattern.search(error.message):
            return code
    return None


class CheckedValidation(ValidationCache):
    """Refuse a document over the size, depth, alias or cost limits, then validate (cached).

    The limits are measured first, in time linear in the document (see complexity), so that a
    document built to explode once its fragments are expanded never reaches validation.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(maxsize=DOCUMENT_CACHE_SIZE)
        self.settings = settings

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        error = _over_limits(ctx, self.settings) if ctx.graphql_document else None
        if error is None:
            yield from super().on_validate()
            return
        ctx.pre_execution_errors = [error]
        yield


def _over_limits(ctx: ExecutionContext, settings: Settings) -> GraphQLError | None:
    """The error of the first limit the document is over, if any."""
    document = ctx.graphql_document
    assert document is not None
    # ExecutionContext.operation_name falls back to the first operation's name; what the client
    # gave is private (tests/test_negotiation.py fails the day this stops working).
    provided = getattr(ctx, "_provided_operation_name", None)
    # Strawberry's own extensions read the GraphQL schema here.
    found = over_limits(ctx.schema._schema, document, provided, ctx.variables, settings)
    if isinstance(found, GraphQLError):
        return found
    return None if found is None else _over_budget(ctx, found, settings.max_query_cost)


def over_limits(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    settings: Settings,
) -> GraphQLError | Figures | None:
    """The error of the first limit, but the cost budget, that the document is over; else the
    figures of the operation that would run (None: validation will say why none)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > 1 and not operation_name:
        # Strawberry would run the first one; GraphQL says which to run is the client's choice.
        return _error(
            "Must provide operation name if query contains multiple operations.",
            "GRAPHQL_VALIDATION_FAILED",
        )
    figures = {
        op: measure(schema, op, fragments, variables, settings.max_page_size) for op in operations
    }
    fields = sum(f.fields for f in figures.values())
    if fields > settings.max_query_fields:
        return _error(
            f"The document asks for {fields} fields once its fragments are expanded; "
            f"at most {settings.max_query_fields} are allowed.",
            "TOO_MANY_FIELDS",
        )
    too_long = next((f.too_long for f in figures.values() if f.too_long), None)
    if too_long is not None:
        refused = too_many_entries(*too_long)
        return GraphQLError(str(refused), extensions=refused.extensions)
    aliases = sum(f.aliases for f in figures.values())
    if aliases > settings.max_query_aliases:
        return _error(
            f"{aliases} aliases found. Allowed: {settings.max_query_aliases}", "TOO_MANY_ALIASES"
        )
    for op, found in figures.items():
        if found.depth > settings.max_query_depth:
            name = op.name.value if op.name else "anonymous"
            return _error(
                f"'{name}' exceeds maximum operation depth of {settings.max_query_depth}",
                "QUERY_TOO_DEEP",
            )
    return _chosen(figures, operation_name)


def _chosen(figures: dict[OperationDefinitionNode, Figures], name: str | None) -> Figures | None:
    """The figures of the operation that would run (None: validation will say why none)."""
    if name is None:
        return next(iter(figures.values())) if len(figures) == 1 else None
    return next((f for op, f in figures.items() if op.name and op.name.value == name), None)


def _over_budget(ctx: ExecutionContext, figures: Figures, limit: int) -> GraphQLError | None:
    """Charge the operation's cost to its request: the operations of a batch share one budget.

    Over a WebSocket each operation has a budget of its own: the connection is no one request.
    """
    request = getattr(ctx.context, "request", None)
    state = request.state if isinstance(request, Request) else None
    spent = (getattr(state, "query_cost", 0) if state is not None else 0) + figures.cost
    if spent > limit:
        return _error(
            f"The request would cost {spent} (rows and values it may return, see the README); "
            f"at most {limit} is allowed. Ask for smaller pages or fewer fields.",
            "QUERY_TOO_COSTLY",
        )
    if state is not None:
        state.query_cost = spent
    return None


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Extension factories enforcing the settings' document limits (and hiding introspection).

    Parsing and validation are cached, so that a repeated document costs one measuring pass.
    """
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        CachedParse,
        partial(CheckedValidation, settings),
        LimitErrorCodes,
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return extensions


def schema_config(settings: Settings) -> StrawberryConfig:
    """Batching of up to `max_batch_operations` operations per request (0: no batching)."""
    limit = settings.max_batch_operations
    return StrawberryConfig(batching_config={"max_operations": limit} if limit else None)
