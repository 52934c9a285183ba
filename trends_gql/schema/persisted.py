"""Persisted queries: Apollo's automatic persisted queries (APQ), and the allow-list mode.

APQ: a request may carry `extensions.persistedQuery = {"version": 1, "sha256Hash": H}` in place
of its document. With the hash alone it runs the document kept under H (cache/documents.py,
or registered with `trends persist`), or is answered PERSISTED_QUERY_NOT_FOUND (HTTP 200, as
Apollo Server does, so that Apollo Client sends the text with the hash); with both, the text is
kept under H once H is checked to be its SHA-256. The request then goes on with the document as
if the client had sent it, so the response cache, the document limits and the GET rules (no
mutations) apply as to any other.

PERSISTED_QUERIES_ONLY: only registered operations (schema/allowlist.py) run, named by key or
sent as their text in any layout; any other text is refused with PERSISTED_QUERY_NOT_ALLOWED
(HTTP 403). An unknown hash alone is PERSISTED_QUERY_NOT_FOUND as in the other mode, so that an
APQ client sends the text, which is then judged. Signed-in staff may still run any document:
they may already change every row, and GraphiQL and the console are theirs; what the allow-list
keeps from the public is documents no frontend sends.
"""

import contextlib
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from trends_gql.accounts.auth import is_staff
from trends_gql.cache.documents import DocumentStore
from trends_gql.core.db import Database
from trends_gql.core.errors import ServiceUnavailable, error_response
from trends_gql.core.models import PERSISTED_KEY_MAX
from trends_gql.core.settings import Settings
from trends_gql.schema import allowlist
from trends_gql.schema.limits import parse_document
from trends_gql.web.measurement import note_operation

if TYPE_CHECKING:
    from trends_gql.schema.context import View
else:
    View = object

PERSISTED = "persistedQuery"  # the key in a request's extensions
JSON = "application/json"
# Apollo's message and code: Apollo Client retries with the text when it sees either.
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
MISMATCH_MESSAGE = "provided sha does not match query"  # Apollo Server's words, and its 400
NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
NOT_ALLOWED_MESSAGE = (
    "Only registered operations run on this server, and this one is not registered "
    "(`trends persist FILE` registers the operations of a frontend)."
)
# Apollo Server's, so that no cache keeps an answer that changes once the client sends the text.
NOT_FOUND_HEADERS = {"Cache-Control": "private, no-cache, must-revalidate"}


class _Answer(Exception):
    """The request is answered without running: refused, or its document is unknown."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class _NotFound(Exception):
    pass


def _not_found() -> Response:
    return error_response(200, NOT_FOUND_MESSAGE, NOT_FOUND, NOT_FOUND_HEADERS)


def _refused(status: int, message: str, code: str) -> _Answer:
    return _Answer(error_response(status, message, code))


def _persisted_key(extensions: Any) -> str | None:
    """The hash (key) of an `extensions.persistedQuery`; None without one; _Answer if malformed."""
    if not isinstance(extensions, dict) or PERSISTED not in extensions:
        return None
    persisted = extensions[PERSISTED]
    version = persisted.get("version") if isinstance(persisted, dict) else None
    if type(version) is not int or version != 1:
        raise _refused(400, "Unsupported persisted query version", "BAD_REQUEST")
    key = persisted.get("sha256Hash")
    if not isinstance(key, str) or not key:
        raise _refused(400, "persistedQuery.sha256Hash must be a non-empty string", "BAD_REQUEST")
    return key


class PersistedQueries(View):
    """Mixin for the Strawberry view: requests that name their document by hash get it."""

    settings: Settings
    db: Database

    @cached_property
    def documents(self) -> DocumentStore:
        """The documents clients sent with their hash (APQ)."""
        return DocumentStore(self.settings)

    # Registered operations this process has seen (registrations are only ever added).
    @cached_property
    def registered(self) -> dict[str, str]:
        """Key -> document."""
        return {}

    @cached_property
    def registered_digests(self) -> set[str]:
        """The SHA-256 of each one's canonical text."""
        return set()

    async def close_documents(self) -> None:
        """Close the connections to the documents' Redis, if any was opened."""
        if "documents" in self.__dict__:
            await self.documents.aclose()

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if isinstance(request, Request):
            try:
                request = await self._resolved(request)
            except _Answer as answer:
                return answer.response
            except ServiceUnavailable as exc:  # the registry's database
                return error_response(503, str(exc), exc.code, {"Retry-After": "5"})
        return await super().run(request, context, root_value)

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        """An operation of a batch whose hash is unknown answers NOT_FOUND in its place."""
        extensions = request_data.extensions
        if request_data.query is None and isinstance(extensions, dict) and PERSISTED in extensions:
            error = GraphQLError(NOT_FOUND_MESSAGE, extensions={"code": NOT_FOUND})
            return ExecutionResult(data=None, errors=[error])
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def _resolved(self, request: Request) -> Request:
        """The request with the documents its persisted queries name; _Answer if answered now."""
        allow_list = self.settings.persisted_queries_only and not is_staff(request)
        if request.method == "GET":
            params = request.query_params
            if "extensions" not in params and not (allow_list and "query" in params):
                return request
            try:
                extensions = orjson.loads(params.get("extensions") or "null")
            except orjson.JSONDecodeError:
                return request  # refused the usual way (400)
            item = {"query": params.get("query"), "extensions": extensions}
            note_operation(item["query"], params.get("operationName"))
            if not await self._resolve_single(item, allow_list):
                return request
            pairs = [
                *((k, v) for k, v in params.multi_items() if k != "query"),
                ("query", item["query"]),
            ]
            request.scope.setdefault("state", {})  # the new request's state is this one's
            scope = {**request.scope, "query_string": urlencode(pairs).encode()}
            return Request(scope, request.receive)
        # As loose as Strawberry's test of a JSON body, so that no body it reads escapes this.
        if request.method != "POST" or JSON not in request.headers.get("content-type", "").lower():
            return request
        body = await request.body()
        if not allow_list and b'"persistedQuery"' not in body:  # the usual request: no parse
            return request
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return request
        if isinstance(data, dict):
            query, name = data.get("query"), data.get("operationName")
            note_operation(query if isinstance(query, str) else None, name)
            changed = await self._resolve_single(data, allow_list)
        elif isinstance(data, list) and all(isinstance(item, dict) for item in data):
            changed = False
            for item in data:
                with contextlib.suppress(_NotFound):  # answered in its place: execute_single
                    changed = await self._resolve(item, allow_list) or changed
        else:
            return request  # refused the usual way (400)
        return _with_body(request, orjson.dumps(data)) if changed else request

    async def _resolve_single(self, item: dict[str, Any], allow_list: bool) -> bool:
        try:
            return await self._resolve(item, allow_list)
        except _NotFound:
            raise _Answer(_not_found()) from None

    async def _resolve(self, item: dict[str, Any], allow_list: bool) -> bool:
        """Give `item` the document its hash names; whether it changed. _NotFound if unknown."""
        query = item.get("query") or None
        key = _persisted_key(item.get("extensions"))
        if key is None:
            if allow_list and isinstance(query, str) and not await self._is_registered(query):
                raise _refused(403, NOT_ALLOWED_MESSAGE, NOT_ALLOWED)
            return False
        if allow_list:
            body = await self._registered_body(key)
            if body is None:
                if query is None:
                    raise _NotFound  # an APQ client then sends the text, judged here
                if not isinstance(query, str) or allowlist.sha256_hex(query) != key:
                    raise _refused(400, MISMATCH_MESSAGE, "PERSISTED_QUERY_HASH_MISMATCH")
                if not await self._is_registered(query):
                    raise _refused(403, NOT_ALLOWED_MESSAGE, NOT_ALLOWED)
                self.registered[key] = query  # the client's own hash of a registered operation
                return False
            if query is not None and query != body:
                raise _refused(400, MISMATCH_MESSAGE, "PERSISTED_QUERY_HASH_MISMATCH")
        elif query is not None:
            if not isinstance(query, str) or allowlist.sha256_hex(query) != key:
                raise _refused(400, MISMATCH_MESSAGE, "PERSISTED_QUERY_HASH_MISMATCH")
            await self._keep(key, query)
            return False
        else:
            body = await self.documents.get(key) or await self._registered_body(key)
            if body is None:
                raise _NotFound
        changed = query is None
        item["query"] = body
        return changed

    async def _keep(self, key: str, query: str) -> None:
        """Keep a document for its hash, unless it does not parse within the token limit."""
        try:
            parse_document(query, max_tokens=self.settings.max_query_tokens)  # run's parse too
        except GraphQLError:
            return  # nobody will run it
        await self.documents.put(key, query)

    async def _registered_body(self, key: str) -> str | None:
        body = self.registered.get(key)
        if body is None and len(key) <= PERSISTED_KEY_MAX:
            body = await self.db.read(allowlist.registered_body, key)
            if body is not None:
                self.registered[key] = body
        return body

    async def _is_registered(self, text: str) -> bool:
        """Whether a text is a registered operation, in any layout."""
        try:
            document = parse_document(text, max_tokens=self.settings.max_query_tokens)
        except GraphQLError:
            return False
        digest = allowlist.sha256_hex(allowlist.canonical(document))
        if digest in self.registered_digests:
            return True
        if await self.db.read(allowlist.is_registered_digest, digest):
            self.registered_digests.add(digest)
            return True
        return False


def _with_body(request: Request, body: bytes) -> Request:
    """The request with another body (its own was read from the client already)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await request.receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)
