"""Server-side sessions: opening, resolving, listing, ending and pruning them."""

import hashlib
import logging
import re
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from trends_gql.core.models import SESSION_ADDRESS_MAX, SESSION_AGENT_MAX, User, UserSession

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 random bits
# What secrets.token_urlsafe(TOKEN_BYTES) makes: anything else is not worth a database lookup.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
# last_seen_at is written at most this often per session, not on every request.
TOUCH_INTERVAL = timedelta(minutes=1)
SCOPE_KEY = "trends.session"


def hash_token(token: str) -> bytes:
    """The stored form of a session id: its SHA-256."""
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    """A new random session id for the cookie."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_token(value: str | None) -> TypeGuard[str]:
    """Whether a cookie value has the shape of a session id."""
    return value is not None and TOKEN_SHAPE.fullmatch(value) is not None


def idle_end(row: UserSession, idle_seconds: int) -> datetime:
    """When the session ends: idle for `idle_seconds`, or its absolute end, whichever is first."""
    return min(row.expires_at, row.last_seen_at + timedelta(seconds=idle_seconds))


def open_session(
    session: Session,
    user_id: int,
    *,
    now: datetime,
    max_age: int,
    client_address: str | None,
    user_agent: str | None,
    replacing: str | None = None,
) -> tuple[str, UserSession]:
    """Store a new session of the user: its id and row; the `replacing` session ends."""
    if is_token(replacing):
        session.execute(_delete().where(col(UserSession.token_hash) == hash_token(replacing)))
    token = new_token()
    row = UserSession(
        token_hash=hash_token(token),
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=max_age),
        client_address=client_address[:SESSION_ADDRESS_MAX] if client_address else None,
        user_agent=user_agent[:SESSION_AGENT_MAX] if user_agent else None,
    )
    session.add(row)
    session.commit()
    return token, row


def find_session(
    session: Session, token: str, *, now: datetime, idle_seconds: int
) -> tuple[UserSession | None, User | None]:
    """The session with this id and its active user; (row, None) when it has ended; (None, None)."""
    found = session.execute(
        sa.select(UserSession, User)
        .join(User, col(User.id) == col(UserSession.user_id))
        .where(col(UserSession.token_hash) == hash_token(token))
    ).first()
    if found is None:
        return None, None
    row, user = found
    if now >= idle_end(row, idle_seconds) or not user.is_active:
        return row, None
    return row, user


def touch_session(session: Session, session_id: int, now: datetime) -> None:
    """Record that the session was used now, unless that was recorded less than a minute ago."""
    session.execute(
        sa.update(UserSession)
        .where(
            col(UserSession.id) == session_id,
            col(UserSession.last_seen_at) <= now - TOUCH_INTERVAL,
        )
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def end_session(session: Session, token: str) -> bool:
    """Delete the session with this id; whether there was one."""
    if not is_token(token):
        return False
    result = session.execute(_delete().where(col(UserSession.token_hash) == hash_token(token)))
    session.commit()
    return bool(_count(result))


def end_user_sessions(session: Session, user_id: int, *, keep: int | None = None) -> int:
    """Delete every session of the user (but `keep`) and commit, with the caller's changes."""
    stmt = _delete().where(col(UserSession.user_id) == user_id)
    if keep is not None:
        stmt = stmt.where(col(UserSession.id) != keep)
    ended = _count(session.execute(stmt))
    session.commit()
    if ended:
        log.info("%d sessions of user %d ended", ended, user_id)
    return ended


def list_user_sessions(
    session: Session, user_id: int, *, now: datetime, idle_seconds: int
) -> list[UserSession]:
    """The user's live sessions, most recently used first."""
    rows = session.scalars(
        sa.select(UserSession)
        .where(col(UserSession.user_id) == user_id, col(UserSession.expires_at) > now)
        .order_by(col(UserSession.last_seen_at).desc(), col(UserSession.id).desc())
    )
    return [row for row in rows if now < idle_end(row, idle_seconds)]


def prune_sessions(session: Session, *, now: datetime, idle_seconds: int) -> int:
    """Delete the sessions that have ended, idle or past their absolute end; how many."""
    idle_since = now - timedelta(seconds=idle_seconds)
    result = session.execute(
        _delete().where(
            sa.or_(col(UserSession.expires_at) <= now, col(UserSession.last_seen_at) <= idle_since)
        )
    )
    session.commit()
    return _count(result)


def _delete() -> sa.Delete:
    # Rows are matched in the database only: no session object is kept around to update.
    return sa.delete(UserSession).execution_options(synchronize_session=False)


def _count(result: Any) -> int:
    return int(result.rowcount or 0)


@dataclass
class RequestSession:
    """The session cookie of one request: what it resolved to, and the change to send back."""

    token: str | None = None
    row: UserSession | None = None
    user: User | None = None
    # Set by login (a new id) or logout (None); the cookie is rewritten when `changed`.
    issued: str | None = None
    changed: bool = False

    def sign_in(self, token: str, row: UserSession, user: User) -> None:
        """The request opened a new session for `user`."""
        self.token, self.issued, self.row, self.user, self.changed = token, token, row, user, True

    def sign_out(self) -> None:
        """The request ended its session."""
        self.token, self.issued, self.user, self.row, self.changed = None, None, None, None, True


def request_session(scope: MutableMapping[str, Any]) -> RequestSession:
    """The request's session state (anonymous when the session middleware did not run)."""
    state: RequestSession | None = scope.get(SCOPE_KEY)
    if state is None:
        state = scope[SCOPE_KEY] = RequestSession()
    return state
