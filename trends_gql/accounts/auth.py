"""Who a request is and what they may do: session cookies, login and logout, the staff check.

The one place for identity, as Starlette's authentication.py: `current_user` answers who is
asking, `require_staff` whether they may do what only staff may (for GraphQL through IsStaff,
for plain routes directly), `is_staff` the same without refusing.
"""

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any

import sqlalchemy as sa
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.permission import BasePermission
from strawberry.types import Info

from trends_gql.accounts import sessions
from trends_gql.accounts.sessions import RequestSession, request_session
from trends_gql.accounts.users import authenticate, normalise_email
from trends_gql.core import instruments
from trends_gql.core.db import Database
from trends_gql.core.errors import (
    BadUserInput,
    Forbidden,
    ServiceUnavailable,
    TooManyRequests,
    Unauthenticated,
    error_response,
)
from trends_gql.core.models import User, stored_id
from trends_gql.core.ratelimit import RateLimiter
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "invalid email or password"
TOO_MANY_FAILURES = "too many failed logins: try again later"
TOO_MANY_AT_ONCE = "too many logins to this account at once: try again in a moment"
LIMITS_UNAVAILABLE = "logins are paused while the login limits cannot be checked: try again soon"
SESSION_COOKIE = "trends_session"
UNAVAILABLE = "The database does not answer, so your session cannot be checked: try again shortly."
RETRY_AFTER = "5"


def clock_time(clock: Callable[[], float]) -> datetime:
    """The clock's time as a timezone-aware UTC datetime."""
    return datetime.fromtimestamp(clock(), UTC)


def current_user(request: HTTPConnection) -> User | None:
    """The user of the request's session, as SessionCookies found it before the request ran."""
    return request_session(request.scope).user


def is_staff(request: HTTPConnection) -> bool:
    """Whether the request is signed in as an active staff member."""
    user = current_user(request)
    return user is not None and user.is_staff


def require_staff(request: HTTPConnection, action: str) -> User:
    """The request's user, who is active staff; Unauthenticated or Forbidden naming `action`."""
    user = current_user(request)
    if user is None:
        raise Unauthenticated(f"sign in as staff to {action}")
    if not user.is_staff:
        raise Forbidden(f"only staff may {action}")
    return user


def client_address(request: HTTPConnection) -> str:
    """The peer address (set from forwarding headers by uvicorn's --proxy-headers)."""
    return request.client.host if request.client else "unknown"


async def login(
    request: HTTPConnection,
    db: Database,
    settings: Settings,
    limiter: RateLimiter,
    clock: Callable[[], float],
    email: str,
    password: str,
) -> User:
    """Check credentials under the brute-force limits and open a session for the user."""
    window = settings.login_window_seconds
    try:
        key = normalise_email(email)
    except BadUserInput:
        key = email.strip().lower()[:254]
    address = client_address(request)
    limits = {
        f"login:email:{key}": settings.login_max_failures_per_email,
        f"login:client:{address}": settings.login_max_failures_per_client,
    }
    # Each attempt counts before the password is checked, so concurrent attempts (aliases,
    # batches, parallel requests, other processes) cannot together exceed a limit; a success is
    # taken back once checked. Without Redis logins are refused: no process may count alone.
    attempt = await limiter.reserve(limits, window)
    if attempt.unavailable:
        log.warning("login refused for %s from %s: Redis does not answer", key, address)
        instruments.LOGINS.labels("limits_unavailable").inc()
        raise ServiceUnavailable(LIMITS_UNAVAILABLE, retryAfter=math.ceil(attempt.retry_after))
    if not attempt.allowed:
        log.warning("login refused for %s from %s: too many attempts", key, address)
        message = TOO_MANY_AT_ONCE if attempt.in_flight else TOO_MANY_FAILURES
        reason = "too_many_at_once" if attempt.in_flight else "too_many_failures"
        instruments.LOGINS.labels(reason).inc()
        raise TooManyRequests(message, retry_after=attempt.retry_after)
    user = None
    try:
        user = await db.run(authenticate, email, password)
    finally:
        await limiter.settle(attempt, failed=user is None)
    if user is None:
        log.info("failed login for %s from %s", key, address)
        instruments.LOGINS.labels("invalid_credentials").inc()
        raise Unauthenticated(INVALID_CREDENTIALS)
    state = request_session(request.scope)
    token, row = await db.run(
        lambda s: sessions.open_session(
            s,
            stored_id(user),
            now=clock_time(clock),
            max_age=settings.session_max_age,
            client_address=address,
            user_agent=request.headers.get("user-agent"),
            replacing=state.token,  # never keep a session id the client chose or had before
        )
    )
    state.sign_in(token, row, user)
    log.info("login of %s from %s", user.email, address)
    instruments.LOGINS.labels("ok").inc()
    return user


async def logout(request: HTTPConnection, db: Database) -> None:
    """End the request's session: its row is deleted, so no copy of the cookie works again."""
    state = request_session(request.scope)
    if state.token:
        await db.run(sessions.end_session, state.token)
    state.sign_out()


class IsStaff(BasePermission):
    """Signed in as an active staff member; UNAUTHENTICATED or FORBIDDEN otherwise."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        require_staff(info.context.request, "do this")
        return True


class SessionCookies:
    """Look the session cookie up once per request, before the limits that key on the user.

    Writes the cookie back only when a login or logout changed it, or to delete one that names
    no live session. When the database does not answer, the request gets 503
    SERVICE_UNAVAILABLE rather than running as anonymous.
    """

    def __init__(
        self,
        app: ASGIApp,
        db: Database,
        settings: Settings,
        clock: Callable[[], float],
        skip: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.app = app
        self.db = db
        self.settings = settings
        self.clock = clock
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope[sessions.SCOPE_KEY] = RequestSession()
        token = cookie_parser(Headers(scope=scope).get("cookie", "")).get(SESSION_COOKIE)
        # Health checks answer whatever the session, and must not wait for the database.
        if token is not None and not self.skip(scope["path"]):
            try:
                await self._resolve(state, token)
            except (sa.exc.SQLAlchemyError, ServiceUnavailable) as exc:
                log.warning("session lookup failed, database unavailable: %s", exc)
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1011})
                    return
                headers = {"Retry-After": RETRY_AFTER}
                response = error_response(503, UNAVAILABLE, "SERVICE_UNAVAILABLE", headers)
                await response(scope, receive, send)
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and state.changed:
                MutableHeaders(scope=message).append("set-cookie", self.cookie(state.issued))
            await send(message)

        await self.app(scope, receive, send_cookie)

    async def _resolve(self, state: RequestSession, token: str) -> None:
        state.changed = True  # delete the cookie unless it names a live session
        if not sessions.is_token(token):
            return
        now = clock_time(self.clock)
        idle = self.settings.session_idle_seconds
        row, user = await self.db.read(
            lambda s: sessions.find_session(s, token, now=now, idle_seconds=idle)
        )
        if row is None:
            return
        if user is None:
            await self.db.run(sessions.end_session, token)
            return
        state.token, state.row, state.user, state.changed = token, row, user, False
        if now - row.last_seen_at >= sessions.TOUCH_INTERVAL:
            await self.db.run(sessions.touch_session, row.id, now)

    def cookie(self, token: str | None) -> str:
        """The Set-Cookie value that stores `token`, or deletes the cookie when None."""
        cookie: SimpleCookie = SimpleCookie()
        cookie[SESSION_COOKIE] = token or ""
        morsel: Any = cookie[SESSION_COOKIE]
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = self.settings.session_cookie_samesite
        morsel["max-age"] = self.settings.session_max_age if token else 0
        if not token:
            morsel["expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"
        if self.settings.cookie_secure:
            morsel["secure"] = True
        return cookie.output(header="").strip()
