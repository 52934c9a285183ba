"""GraphQL over HTTP's response media types: application/graphql-response+json when asked for.

With that media type a request that fails before execution (it does not parse, is not valid,
breaks a limit, has variables that do not fit) is answered 400 without `data`, and refusals of
the HTTP layer (CSRF, size, rate, an unreachable database) carry it too, so that clients read
their codes. `application/json` answers stay as they were, for the clients that ask for it.
"""

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trends_gql.core.errors import error_response

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# What a request error's body starts with: Strawberry writes `data` first, orjson keeps order.
_REQUEST_ERROR_START = b'{"data":null,"errors":'


def accepted(accept: str | None) -> str | None:
    """The media type to answer with for an Accept header; None when none we have is accepted.

    No Accept header, wildcards and equal preference all mean application/json, the media type
    legacy clients expect.
    """
    if not accept or not accept.strip():
        return JSON
    quality: dict[str, float] = {}
    for item in accept.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = kind.lower()
        quality[kind] = max(quality.get(kind, 0.0), q)
    wildcard = max(quality.get("*/*", 0.0), quality.get("application/*", 0.0))
    graphql = quality.get(GRAPHQL_RESPONSE, 0.0)
    json = quality.get(JSON, wildcard)
    if graphql > 0 and graphql > json:
        return GRAPHQL_RESPONSE
    return JSON if json > 0 else None


class ResponseMediaType:
    """Answer /graphql in the media type the client accepts (406 when it accepts none)."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
            await self.app(scope, receive, send)  # the GraphiQL page
            return
        chosen = accepted(headers.get("accept"))
        if chosen is None:
            message = f"Accept {JSON} or {GRAPHQL_RESPONSE}: this server answers in no other type."
            await error_response(406, message, "NOT_ACCEPTABLE")(scope, receive, send)
            return
        if chosen == JSON:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Retyping(send))


class _Retyping:
    """A `send` that labels JSON answers as graphql-response+json and turns request errors
    (no error with a path: nothing executed) into 400 answers without `data`."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(raw=message["headers"])
            if headers.get("content-type", "").startswith(JSON):
                headers["content-type"] = GRAPHQL_RESPONSE
                if message["status"] == 200:
                    self.start = message  # held until the body says what it is
                    return
            await self.send(message)
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        start, self.start = self.start, None
        body = message.get("body", b"")
        if body.startswith(_REQUEST_ERROR_START) and not message.get("more_body", False):
            result = orjson.loads(body)
            if not any("path" in error for error in result.get("errors", [])):
                del result["data"]
                body = orjson.dumps(result)
                headers = MutableHeaders(raw=start["headers"])
                headers["content-length"] = str(len(body))
                start = {**start, "status": 400}
                message = {**message, "body": body}
        await self.send(start)
        await self.send(message)
