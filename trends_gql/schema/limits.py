"""Limits on GraphQL documents and batches, and the introspection switch, from the settings."""

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    SchemaExtension,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)
from strawberry.schema.config import StrawberryConfig

from trends_gql.settings import Settings

# Documents parsed and validated once per process (per distinct text and rule set).
DOCUMENT_CACHE_SIZE = 512

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


class CachedParse(SchemaExtension):
    """Parse each distinct document once per process, like Strawberry's ParserCache.

    A document that does not parse is left to Strawberry's own parsing, whose error goes
    through the usual error handling (ParserCache raises from inside its hook instead).
    """

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        with contextlib.suppress(GraphQLError):
            ctx.graphql_document = _parse(ctx.query, **ctx.parse_options)
        yield


@functools.lru_cache(maxsize=DOCUMENT_CACHE_SIZE)
def _parse(query: str, **options: Any) -> DocumentNode:
    return parse(query, **options)


def _limit_code(error: GraphQLError) -> str | None:
    if error.original_error is not None:
        return None
    for pattern, code in _LIMIT_MESSAGES:
        if pattern.search(error.message):
            return code
    return None


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Extension factories enforcing the settings' document limits (and hiding introspection).

    Parsing and validation are cached: the rule classes are made once here rather than by
    Strawberry's limiter extensions per request, so that a repeated document is a cache hit.
    """
    rules = [
        query_depth_limiter.create_validator(settings.max_query_depth, None),
        max_aliases.create_validator(settings.max_query_aliases),
    ]
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        partial(AddValidationRules, rules),
        CachedParse,
        partial(ValidationCache, maxsize=DOCUMENT_CACHE_SIZE),
        LimitErrorCodes,
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return extensions


def schema_config(settings: Settings) -> StrawberryConfig:
    """Batching of up to `max_batch_operations` operations per request (0: no batching)."""
    limit = settings.max_batch_operations
    return StrawberryConfig(batching_config={"max_operations": limit} if limit else None)
