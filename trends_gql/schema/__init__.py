"""The assembled Strawberry schema."""

import logging

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from trends_gql.schema.errors import ErrorCodes, is_unexpected
from trends_gql.schema.query import Context, Query

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


schema = TrendsSchema(query=Query, extensions=[ErrorCodes])

__all__ = ["Context", "schema"]
