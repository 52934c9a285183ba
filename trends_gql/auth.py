"""Cookie sessions, the login throttle and the staff permission."""

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from strawberry.permission import BasePermission
from strawberry.types import Info

from trends_gql.db import Database
from trends_gql.errors import BadUserInput, Forbidden, TooManyRequests, Unauthenticated
from trends_gql.models import User
from trends_gql.users import authenticate, get_session_user, normalise_email, session_token

if TYPE_CHECKING:
    from trends_gql.schema.context import Context

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "invalid email or password"


async def current_user(request: HTTPConnection, db: Database) -> User | None:
    """The user of the request's session (looked up once); a session whose user changed ends."""
    if hasattr(request.state, "user"):
        return request.state.user
    session = request.session
    uid, token = session.get("uid"), session.get("auth")
    user = None
    if isinstance(uid, int) and isinstance(token, str):
        user = await db.read(get_session_user, uid, token)
        if user is None:
            session.clear()
    request.state.user = user
    return user


def client_address(request: HTTPConnection) -> str:
    """The peer address (set from forwarding headers by uvicorn's --proxy-headers)."""
    return request.client.host if request.client else "unknown"


async def _forget(limiter: Any, hits: dict[str, Any]) -> None:
    for name, decision in hits.items():
        if decision.token:
            await limiter.undo(name, decision.token)


async def login(ctx: "Context", email: str, password: str) -> User:
    """Check credentials under the brute-force limits and open a session for the user."""
    settings, request = ctx.settings, ctx.request
    limiter = request.app.state.limiter
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
    # Each attempt is recorded before the password is checked, so concurrent attempts (aliases,
    # batches, parallel requests) cannot all slip under the limit; a success takes its back.
    hits = {name: await limiter.hit(name, limit, window) for name, limit in limits.items()}
    refused = [d for d in hits.values() if not d.allowed]
    if refused:
        await _forget(limiter, hits)
        log.warning("login refused for %s from %s: too many failures", key, address)
        raise TooManyRequests(
            "too many failed logins: try again later",
            retry_after=max(d.retry_after for d in refused),
        )
    user = await ctx.db.run(authenticate, email, password)
    if user is None:
        log.info("failed login for %s from %s", key, address)
        raise Unauthenticated(INVALID_CREDENTIALS)
    await _forget(limiter, hits)
    request.session.clear()
    request.session.update({"uid": user.id, "auth": session_token(user)})
    ctx.set_user(user)
    log.info("login of %s from %s", user.email, address)
    return user


def logout(ctx: "Context") -> None:
    """End the request's session."""
    ctx.request.session.clear()
    ctx.set_user(None)


class IsStaff(BasePermission):
    """Signed in as an active staff member; UNAUTHENTICATED or FORBIDDEN otherwise."""

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.user()
        if user is None:
            raise Unauthenticated("sign in as staff to do this")
        if not user.is_staff:
            raise Forbidden("only staff may do this")
        return True
