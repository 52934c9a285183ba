"""WebSocket handshakes to /graphql: from this site or CORS_ORIGINS, and staff only.

A browser lets any page open a WebSocket to any host, with the user's cookies, and no CORS rule
applies: checking `Origin` before accepting blocks cross-site WebSocket hijacking. Refusals come
before the connection is accepted, as HTTP answers in the shape of the API's errors: 403
FORBIDDEN (an Origin neither this site nor in CORS_ORIGINS, or none; a user not staff), 401
UNAUTHENTICATED (no live session). A browser tells a page only that the connection failed.
"""

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette import status
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from trends_gql.accounts.auth import client_address, require_staff
from trends_gql.core.errors import TrendsError, Unauthenticated, error_response
from trends_gql.core.settings import Settings

if TYPE_CHECKING:
    from trends_gql.schema.context import View
else:
    View = object

log = logging.getLogger(__name__)

FOREIGN_ORIGIN = "WebSocket connections are accepted from this site and CORS_ORIGINS only."
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str | None:
    """An origin as browsers send it (lower case, no default port); None when not one."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def own_origin(websocket: WebSocket) -> str | None:
    """This server's origin as the handshake reached it: its scheme, and the Host header."""
    host = websocket.headers.get("host")
    scheme = _HTTP_SCHEMES.get(websocket.url.scheme, websocket.url.scheme)
    return normalize_origin(f"{scheme}://{host}") if host else None


def origin_allowed(websocket: WebSocket, origin: str | None, allowed: Collection[str]) -> bool:
    """Whether a page of `origin` may open this WebSocket: this site's own, or an allowed one."""
    found = normalize_origin(origin) if origin else None
    if found is None:
        return False
    return found == own_origin(websocket) or found in {normalize_origin(o) for o in allowed}


def handshake_refusal(websocket: WebSocket, settings: Settings) -> Response | None:
    """The answer refusing this handshake; None when it may go on."""
    if not origin_allowed(websocket, websocket.headers.get("origin"), settings.cors_origins):
        return error_response(status.HTTP_403_FORBIDDEN, FOREIGN_ORIGIN, "FORBIDDEN")
    try:
        require_staff(websocket, "follow imports live")
    except TrendsError as exc:
        anonymous = isinstance(exc, Unauthenticated)
        status_code = status.HTTP_401_UNAUTHORIZED if anonymous else status.HTTP_403_FORBIDDEN
        return error_response(status_code, str(exc), exc.code)
    return None


async def refuse(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    """Refuse a WebSocket handshake with `response`, or with a plain 403 when the server cannot
    send one."""
    websocket = WebSocket(scope, receive, send)
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(status.WS_1008_POLICY_VIOLATION)


class StaffSockets(View):
    """Mixin for the Strawberry view: refuse WebSocket handshakes that `handshake_refusal` does."""

    settings: Settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            websocket = WebSocket(scope, receive, send)
            refusal = handshake_refusal(websocket, self.settings)
            if refusal is not None:
                log.info(
                    "WebSocket refused (%d) from %s, Origin %r",
                    refusal.status_code,
                    client_address(websocket),
                    websocket.headers.get("origin"),
                )
                await refuse(scope, receive, send, refusal)
                return
        await super().__call__(scope, receive, send)

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """Strawberry's own check, after ours (from Strawberry 0.339 on): the same rule."""
        return origin_allowed(request, origin, self.settings.cors_origins)
