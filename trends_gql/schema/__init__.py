"""The assembled Strawberry schema."""

import logging

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from trends_gql.core.settings import Settings
from trends_gql.schema import execution
from trends_gql.schema.context import Context
from trends_gql.schema.errors import ErrorCodes, is_unexpected
from trends_gql.schema.exports import ExportMutation, ExportQuery
from trends_gql.schema.imports import ImportMutation, ImportQuery
from trends_gql.schema.limits import limit_extensions, schema_config
from trends_gql.schema.mutation import Mutation
from trends_gql.schema.query import Query

log = logging.getLogger("trends_gql.errors")


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


def build_schema(settings: Settings) -> TrendsSchema:
    """The schema with the settings' limits; the SDL does not depend on them."""
    return TrendsSchema(
        query=merge_types("Query", (Query, ImportQuery, ExportQuery)),
        mutation=merge_types("Mutation", (Mutation, ImportMutation, ExportMutation)),
        extensions=[ErrorCodes, *limit_extensions(settings)],
        config=schema_config(settings),
        execution_context_class=execution.ExecutionContext,
    )


# For `strawberry export-schema` and tests: the default limits, whatever the environment says.
schema = build_schema(Settings.model_construct())

__all__ = ["Context", "build_schema", "schema"]
