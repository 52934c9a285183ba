"""The view side of the response cache: which requests it answers, and how."""

import hashlib
from functools import cached_property, lru_cache
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, OperationType, Visitor, get_operation_ast, parse, visit
from starlette.requests import Request
from starlette.responses import Response
from strawberry.types.unset import UNSET

from trends_gql.accounts.auth import current_user
from trends_gql.cache.store import ResponseCache
from trends_gql.core.db import Database
from trends_gql.core.settings import Settings

CACHE_HEADER = "X-Trends-Cache"  # hit, miss, or bypass (the cache is off or unreachable)


class _FieldNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        self.names.add(node.name.value)


# Fields whose answer depends on who asks beyond the role: never in a shared response.
PERSONAL_FIELDS = frozenset({"me", "mySessions"})


@lru_cache(maxsize=512)  # a pure function of the text: each distinct document is parsed once here
def cacheable(query: str, operation_name: str | None) -> bool:
    """Whether a document is a read-only operation whose answer is the same for a whole role."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    fields = _FieldNames()
    visit(document, fields)
    return not fields.names & PERSONAL_FIELDS


class CachedResponses:
    """Mixin for the Strawberry view: answer repeated read-only operations from the cache.

    Anonymous callers and signed-in non-staff share responses. Staff are never served from it,
    nor is what they get stored: their fields (import and export runs) change as jobs run.
    """

    cache: ResponseCache
    db: Database
    settings: Settings
    schema: Any

    @cached_property
    def variant(self) -> str:
        """What else shapes an answer: the schema, and settings that limit or hide parts of it."""
        s = self.settings
        shape = (
            str(self.schema),
            s.introspection_enabled,
            s.max_query_depth,
            s.max_query_tokens,
            s.max_query_aliases,
            s.max_query_fields,
            s.max_query_cost,
            s.max_page_size,
        )
        return hashlib.sha256(repr(shape).encode()).hexdigest()[:16]

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        run = super().run  # type: ignore[misc]
        parts = await _request_parts(request) if self.cache.enabled else None
        if parts is None:
            return await run(request, context, root_value)
        user = await current_user(request, self.db)
        if user is not None and user.is_staff:
            return _mark(await run(request, context, root_value), "bypass")
        generation = await self.cache.generation()
        if generation is None:
            return _mark(await run(request, context, root_value), "bypass")
        request.state.cache_generation = generation  # the resolvers' cache needs no second look
        key = self.cache.key(generation, "response:public", (self.variant, parts))
        cached = await self.cache.get(key)
        if cached is None:

            async def compute() -> tuple[bytes | None, Response]:
                response = await run(request, context, root_value)
                ok = response.status_code == 200 and b'"errors"' not in response.body
                return (response.body if ok and cacheable(parts[0], parts[2]) else None), response

            cached, response = await self.cache.get_or_compute(key, compute)
            if cached is None:
                return _mark(response, "miss")
        return _mark(Response(cached, media_type="application/json"), "hit")


def _mark(response: Response, outcome: str) -> Response:
    response.headers[CACHE_HEADER] = outcome
    return response


async def _request_parts(request: Any) -> tuple[str, Any, str | None] | None:
    """(query, variables, operation name) of a single GraphQL request; None when not one."""
    if not isinstance(request, Request):
        return None
    if request.method == "GET":
        params = request.query_params
        if "query" not in params:
            return None
        return params["query"], params.get("variables"), params.get("operationName")
    if request.method != "POST":
        return None
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return None
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return None  # batches and malformed bodies go the usual way
    return data["query"], data.get("variables"), data.get("operationName")
