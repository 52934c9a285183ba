"""The assembled Strawberry schema, and the execution it runs with.

The execution fast path (schema/execution.py) overrides graphql-core internals, so it runs only
with the graphql-core and Strawberry versions it is tested with (TESTED_VERSIONS, pyproject's
bounds); with others the schema runs graphql-core's own execution, and says so in the log.
"""

import importlib.metadata
import logging
import re
from collections.abc import Mapping
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from trends_gql.core.settings import Settings
from trends_gql.schema.context import Context
from trends_gql.schema.errors import ErrorCodes, is_unexpected
from trends_gql.schema.exports import ExportMutation, ExportQuery
from trends_gql.schema.imports import ImportMutation, ImportQuery
from trends_gql.schema.limits import limit_extensions, schema_config
from trends_gql.schema.mutation import Mutation
from trends_gql.schema.query import Query
from trends_gql.schema.subscription import Subscription

log = logging.getLogger("trends_gql.errors")

# Distribution -> (lowest, first untested): the range tests/test_execution.py keeps equal to
# pyproject.toml's bounds.
TESTED_VERSIONS = {"graphql-core": ("3.3.0", "3.4"), "strawberry-graphql": ("0.341.2", "0.342")}


def _release(version: str) -> tuple[tuple[int, ...], int]:
    """A version as (numbers, 1 for a final release or 0 for a pre-release), to compare."""
    found = re.match(r"(\d+(?:\.\d+)*)(.*)", version)
    numbers = tuple(int(n) for n in found[1].split(".")) if found else ()
    pre = bool(found and re.match(r"\.?(a|b|rc|dev)", found[2]))
    return numbers + (0,) * (4 - len(numbers)), 0 if pre else 1


def untested_versions(installed: Mapping[str, str] | None = None) -> list[str]:
    """The installed libraries the fast path is not tested with, as "name version"."""
    found = []
    for name, (lowest, beyond) in TESTED_VERSIONS.items():
        version = installed[name] if installed else importlib.metadata.version(name)
        if not _release(lowest) <= _release(version) < (_release(beyond)[0], 0):
            found.append(f"{name} {version}")
    return found


def execution_context_class(installed: Mapping[str, str] | None = None) -> Any:
    """The fast path's execution context; None (graphql-core's own) with untested libraries."""
    untested = untested_versions(installed)
    if untested:
        logging.getLogger(__name__).warning(
            "execution fast path off: it is not tested with %s", ", ".join(untested)
        )
        return None
    from trends_gql.schema import execution  # imports graphql-core internals: only when tested

    return execution.ExecutionContext


EXECUTION_CONTEXT = execution_context_class()  # checked once, at import


class TrendsSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors with their traceback; expected ones are the client's business."""
        for error in errors:
            if is_unexpected(error, executing=True):
                exc = error.original_error
                log.error(
                    "unexpected error in %s: %s",
                    error.path,
                    error.message,
                    exc_info=(type(exc), exc, exc.__traceback__) if exc else None,
                )

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Queries and mutations: a subscription runs over a WebSocket (`stream`) only."""
        allowed = kwargs.get("allowed_operation_types") or list(OperationType)
        kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        return await super().execute(*args, **kwargs)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        """Subscriptions only, unless the caller says otherwise: over a WebSocket (whose
        transport does not say), queries and mutations are refused, so that they all go over
        HTTP, one request each under its rate limit."""
        kwargs.setdefault("allowed_operation_types", (OperationType.SUBSCRIPTION,))
        return await super().stream(*args, **kwargs)


def build_schema(settings: Settings) -> TrendsSchema:
    """The schema with the settings' limits; the SDL does not depend on them."""
    return TrendsSchema(
        query=merge_types("Query", (Query, ImportQuery, ExportQuery)),
        mutation=merge_types("Mutation", (Mutation, ImportMutation, ExportMutation)),
        subscription=Subscription,
        extensions=[ErrorCodes, *limit_extensions(settings)],
        config=schema_config(settings),
        execution_context_class=EXECUTION_CONTEXT,
    )


# For `strawberry export-schema` and tests: the default limits, whatever the environment says.
schema = build_schema(Settings.model_construct())

__all__ = ["Context", "build_schema", "schema"]
