"""The view side of the response cache: which requests it answers, and how."""

import hashlib
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson
from graphql import FieldNode, GraphQLError, OperationType, Visitor, get_operation_ast, visit
from starlette.requests import Request
from starlette.responses import Response
from strawberry.types.unset import UNSET

from trends_gql.accounts.auth import is_staff
from trends_gql.cache.store import Cache
from trends_gql.core import instruments
from trends_gql.core.settings import Settings
from trends_gql.schema.limits import parse_document
from trends_gql.web.measurement import note_clean_answer, note_operation

CACHE_HEADER = "X-Trends-Cache"  # hit, miss, or bypass (the cache is off or unreachable)

if TYPE_CHECKING:
    from trends_gql.schema.context import View
else:
    View = object


class _FieldNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        self.names.add(node.name.value)


# Fields whose answer depends on who asks beyond the role: never in a shared response.
PERSONAL_FIELDS = frozenset({"me", "mySessions"})


def cacheable(query: str, operation_name: str | None, max_tokens: int | None = None) -> bool:
    """Whether a document is a read-only operation whose answer is the same for a whole role.

    Asked after the document ran, with the token limit it ran under: its parse is a hit.
    """
    try:
        document = parse_document(query, max_tokens=max_tokens)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    fields = _FieldNames()
    visit(document, fields)
    return not fields.names & PERSONAL_FIELDS


class CachedResponses(View):
    """Mixin for the Strawberry view: answer repeated read-only operations from the cache.

    Anonymous callers and signed-in non-staff share responses. Staff are never served from it,
    nor is what they get stored: their fields (import and export runs) change as jobs run.
    """

    cache: Cache
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
        run = super().run
        parts = await request_parts(request) if self.cache.enabled else None
        if parts is None:
            return await run(request, context, root_value)
        note_operation(parts[0], parts[2])  # a hit never reaches the view's own reading
        if is_staff(request):
            return _mark(await run(request, context, root_value), "bypass")
        # The HTTP layer (web/etags.py) may have looked it up already.
        generation = getattr(request.state, "cache_generation", None)
        generation = generation or await self.cache.generation()
        if generation is None:
            return _mark(await run(request, context, root_value), "bypass")
        request.state.cache_generation = generation  # the resolvers' cache needs no second look
        key = self.cache.key(generation, "response:public", (self.variant, parts))
        cached = await self.cache.get(key)
        if cached is None:

            async def compute() -> tuple[bytes | None, Response]:
                response = await run(request, context, root_value)
                ok = response.status_code == 200 and b'"errors"' not in response.body
                keep = ok and cacheable(parts[0], parts[2], self.settings.max_query_tokens)
                return (response.body if keep else None), response

            cached, response = await self.cache.get_or_compute(key, compute)
            if response is not None:  # computed here, so nothing was cached
                return _mark(response, "miss")
        note_clean_answer()  # only answers without errors are kept
        return _mark(Response(cached, media_type="application/json"), "hit")


def _mark(response: Response, outcome: str) -> Response:
    response.headers[CACHE_HEADER] = outcome
    instruments.CACHE.labels(outcome).inc()
    return response


async def request_parts(request: Any) -> tuple[str, Any, str | None] | None:
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
    variables, extensions = data.get("variables"), data.get("extensions")
    if not isinstance(variables, dict | None) or not isinstance(extensions, dict | None):
        return None  # refused the usual way (400)
    operation = data.get("operationName")
    if not isinstance(operation, str | None):
        return None
    return data["query"], variables, operation or None
