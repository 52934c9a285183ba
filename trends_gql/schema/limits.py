"""Limits on GraphQL documents and batches, and the introspection switch, from the settings."""

import re
from collections.abc import Callable, Iterator
from functools import partial

from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig

from trends_gql.settings import Settings

# Strawberry's limiters report plain errors; their messages tell which limit was hit.
_LIMIT_MESSAGES = (
    (re.compile(r"^Syntax Error: Document contains more than \d+ tokens\b"), "TOO_MANY_TOKENS"),
    (re.compile(r"exceeds maximum operation depth of \d+$"), "QUERY_TOO_DEEP"),
    (re.compile(r"^\d+ aliases found\. Allowed: \d+$"), "TOO_MANY_ALIASES"),
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
                error.extensions["code"] = code


def _limit_code(error: GraphQLError) -> str | None:
    if error.original_error is not None:
        return None
    for pattern, code in _LIMIT_MESSAGES:
        if pattern.search(error.message):
            return code
    return None


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Extension factories enforcing the settings' document limits (and hiding introspection)."""
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_query_aliases),
        LimitErrorCodes,
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return extensions


def schema_config(settings: Settings) -> StrawberryConfig:
    """Batching of up to `max_batch_operations` operations per request (0: no batching)."""
    limit = settings.max_batch_operations
    return StrawberryConfig(batching_config={"max_operations": limit} if limit else None)
