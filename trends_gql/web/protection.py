"""HTTP protections: CSRF prevention, a request body limit and per-client request rate limits."""

import logging
import math
from typing import TYPE_CHECKING, Any

from cross_web import HTTPException
from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from trends_gql.accounts.sessions import request_session
from trends_gql.core.errors import error_response
from trends_gql.core.ratelimit import RateLimiter
from trends_gql.core.settings import Settings
from trends_gql.web import sockets

if TYPE_CHECKING:
    from trends_gql.schema.context import View
else:
    View = object

log = logging.getLogger(__name__)

GRAPHQL_PATH = "/graphql"
RATE_WINDOW = 60.0
RATE_EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})  # no session lookup, no rate limit
STATIC_PREFIX = "/static/"  # the pages' files: public, and a page load asks for several
PREFLIGHT_HEADERS = ("graphql-require-preflight", "x-requested-with", "apollo-require-preflight")
# Content types a browser sends cross-site without a CORS preflight ("" = none at all).
SIMPLE_CONTENT_TYPES = frozenset(
    {"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
CSRF_MESSAGE = (
    "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). "
    "Send it as a POST with content-type application/json, or add a non-empty "
    "GraphQL-Require-Preflight, Apollo-Require-Preflight or X-Requested-With header."
)


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type value, without parameters, in lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_exempt(path: str) -> bool:
    """Whether requests to `path` skip the session lookup and the rate limit."""
    return path in RATE_EXEMPT_PATHS or path.startswith(STATIC_PREFIX)


def retry_after_header(seconds: float) -> str:
    """Whole seconds for a `Retry-After` header: rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


def _unsafe(scope: Scope, headers: Headers) -> bool:
    """Whether a request to the GraphQL path is one a browser sends cross-site without a CORS
    preflight, and without a header that only a preflighted request can carry (Apollo Server's
    `csrfPrevention` rule: a page on another site cannot make it with our cookies)."""
    if scope["method"] == "POST":
        if media_type(headers.get("content-type")) not in SIMPLE_CONTENT_TYPES:
            return False
    elif scope["method"] in ("GET", "HEAD"):
        # A GET carrying an operation (its text, or the hash of a persisted query in
        # `extensions`) needs the header too, as in Apollo Server, though GET runs queries only:
        # a cross-site link is a top-level navigation, which carries SameSite=Lax cookies; some
        # queries write (reading runs fails those whose worker died); and the time a GET takes
        # tells a page on another site about the data (XS-Search). Same-origin pages add the
        # header for free, others pay one cached preflight. Without either parameter it is the
        # GraphiQL page, which executes nothing.
        params = QueryParams(scope["query_string"])
        if "query" not in params and "extensions" not in params:
            return False
    else:
        return False  # other methods are preflighted by browsers, and refused by the route anyway
    return not any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS)


class _BodyTooLarge(Exception):
    pass


# Room for a multipart request's other parts (operations, map) and boundaries around the file.
MULTIPART_OVERHEAD = 1 << 20


# The connection closes after these refusals: otherwise the server would go on reading, and
# throwing away, the rest of a body it has refused.
CLOSE = {"Connection": "close"}


class Protections:
    """Refuse, in this order: requests over the rate limit, GraphQL requests that CSRF
    prevention blocks, and request bodies over the size limit.

    Rate limit: per signed-in user, or per client address, in a sliding minute (`window`). A
    WebSocket handshake counts as one request (what runs over the socket is subscriptions only:
    see TrendsSchema.stream); one over the limit is refused with 429 before it is accepted.

    Body limit: `max_bytes`, declared or streamed. Only a staff member's multipart upload may be
    larger: as large as `upload_bytes` plus its framing (the upload's own limit, exact to the
    byte, is checked while it is stored). Anyone else's multipart request is refused before its
    body is read: 401 anonymous, 403 non-staff.

    One layer rather than three: each layer of the stack costs every request a call and a
    wrapper of its messages.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        anonymous: int,
        user: int,
        window: float,
        max_bytes: int,
        upload_bytes: int,
        path: str = GRAPHQL_PATH,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.anonymous = anonymous
        self.user = user
        self.window = window
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes + MULTIPART_OVERHEAD
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = await self._rate_refusal(scope)
        if refusal is not None:
            if kind == "websocket":
                await sockets.refuse(scope, receive, send, refusal)
            else:
                await refusal(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"] == self.path and _unsafe(scope, headers):
            await error_response(400, CSRF_MESSAGE, "CSRF_PREVENTED")(scope, receive, send)
            return
        await self._limit_body(scope, receive, send, headers)

    async def _rate_refusal(self, scope: Scope) -> Response | None:
        """The 429 answer to a request over its limit; None for one within it."""
        if scope.get("method") == "OPTIONS" or is_exempt(scope["path"]):
            return None
        key, limit = self._subject(scope)
        if not limit:
            return None
        decision = await self.limiter.hit(key, limit, self.window)
        if decision.allowed:
            return None
        message = f"Too many requests: at most {limit} a minute. Try again later."
        headers = {"Retry-After": retry_after_header(decision.retry_after)}
        return error_response(429, message, "TOO_MANY_REQUESTS", headers)

    def _subject(self, scope: Scope) -> tuple[str, int]:
        """The limiter key of the request and its limit (0: unlimited)."""
        user = request_session(scope).user
        if user is not None:
            return f"user:{user.id}", self.user
        client = scope.get("client")
        return f"anon:{client[0] if client else 'unknown'}", self.anonymous

    async def _limit_body(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> None:
        multipart = media_type(headers.get("content-type")) == "multipart/form-data"
        if multipart and (refusal := _upload_refusal(scope)) is not None:
            await refusal(scope, receive, send)
            return
        limit = self.upload_bytes if multipart else self.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit():
            if int(declared) > limit:
                await self._refuse(scope, receive, send, limit)
                return
            if "transfer-encoding" not in headers:
                # The server reads no more than the declared length: nothing to count.
                await self.app(scope, receive, send)
                return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        message = f"The request body is larger than {limit} bytes."
        await error_response(413, message, "PAYLOAD_TOO_LARGE", CLOSE)(scope, receive, send)


def _upload_refusal(scope: Scope) -> Response | None:
    """The answer to an upload from someone who is not staff; None for staff."""
    user = request_session(scope).user
    if user is None:
        return error_response(401, "Sign in as staff to upload files.", "UNAUTHENTICATED", CLOSE)
    if not user.is_staff:
        return error_response(403, "Only staff may upload files.", "FORBIDDEN", CLOSE)
    return None


def protection_middleware(settings: Settings, limiter: RateLimiter) -> list[Middleware]:
    """The protections; they go inside the session and CORS middleware."""
    return [
        Middleware(
            Protections,
            limiter=limiter,
            anonymous=settings.rate_limit_anon,
            user=settings.rate_limit_user,
            window=RATE_WINDOW,
            max_bytes=settings.max_body_bytes,
            upload_bytes=settings.upload_max_bytes,
        ),
    ]


# Strawberry's own refusals (before any operation runs), by reason, with our codes.
_REFUSAL_CODES = {
    "Too many operations": "TOO_MANY_OPERATIONS",
    "Batching is not enabled": "BATCHING_DISABLED",
}
_STATUS_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
SUBSCRIPTIONS_MESSAGE = (
    "Subscriptions run over a WebSocket to this path (protocol graphql-transport-ws), not HTTP."
)


class JSONRefusals(View):
    """Mixin for a Strawberry ASGI view: its HTTP refusals as JSON errors with a code.

    Strawberry answers them in plain text; clients then handle one shape of error only.
    """

    schema: BaseSchema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as exc:
            response = self.refusal(exc, scope["method"])
        except ClientDisconnect:
            return  # it left before its request was read (a page navigating away): no one to answer
        finally:
            await request.close()  # an upload's temporary files: Strawberry leaves them open
        await response(scope, receive, send)

    async def parse_http_body(self, request: Any) -> Any:
        """The request's operations; an empty operationName is none (GraphQL over HTTP)."""
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            if item.operation_name == "":
                item.operation_name = None
        return data

    def refusal(self, exc: HTTPException, method: str) -> Response:
        """The JSON response for one of Strawberry's HTTP exceptions."""
        cause = exc.__cause__
        if (
            isinstance(cause, InvalidOperationTypeError)
            and cause.operation_type is OperationType.SUBSCRIPTION
        ):
            return error_response(400, SUBSCRIPTIONS_MESSAGE, "BAD_REQUEST")
        if isinstance(cause, InvalidOperationTypeError) and method == "GET":
            # The GraphQL-over-HTTP spec: a mutation over GET is 405, and says to POST it.
            message = f"{exc.reason}: send them with POST"
            return error_response(405, message, "METHOD_NOT_ALLOWED", {"Allow": "POST"})
        code = _REFUSAL_CODES.get(exc.reason) or _STATUS_CODES.get(exc.status_code, "BAD_REQUEST")
        message = exc.reason
        if code == "TOO_MANY_OPERATIONS":
            batching = self.schema.config.batching_config or {"max_operations": 0}
            message = f"Too many operations in the batch: at most {batching['max_operations']}"
        return error_response(exc.status_code, message, code)
