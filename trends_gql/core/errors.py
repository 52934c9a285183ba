"""Errors a client may see, each with the code it carries in `extensions.code`."""

import math
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


class TrendsError(Exception):
    """An expected failure whose message is safe to show to the client."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.extensions: dict[str, Any] = {"code": self.code, **extra}
        if field:
            self.extensions["field"] = field


class BadUserInput(TrendsError):
    code = "BAD_USER_INPUT"


def too_many_entries(field: str, limit: int, got: int) -> BadUserInput:
    """The error of a list argument with more entries than it takes."""
    return BadUserInput(f"{field} takes at most {limit} entries, got {got}", field=field)


class NotFound(TrendsError):
    code = "NOT_FOUND"


class Unauthenticated(TrendsError):
    code = "UNAUTHENTICATED"


class Forbidden(TrendsError):
    code = "FORBIDDEN"


class TooManyRequests(TrendsError):
    code = "TOO_MANY_REQUESTS"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, retryAfter=max(1, math.ceil(retry_after)))


class ServiceUnavailable(TrendsError):
    code = "SERVICE_UNAVAILABLE"


class QueryTimeout(TrendsError):
    """The database stopped a statement at the web's time limit (DB_STATEMENT_TIMEOUT_MS)."""

    code = "QUERY_TIMEOUT"


def error_response(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An HTTP answer in the shape of GraphQL errors: {"errors": [{"message", "extensions"}]}."""
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    return Response(body, status_code=status, headers=headers, media_type="application/json")
