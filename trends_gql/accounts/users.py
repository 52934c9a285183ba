"""User accounts: creation, password rules and hashing, authentication."""

import logging
import re
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session
from sqlmodel import col

from trends_gql.accounts import sessions
from trends_gql.core.db import utcnow
from trends_gql.core.errors import BadUserInput, NotFound
from trends_gql.core.models import User, stored_id
from trends_gql.core.settings import get_settings

log = logging.getLogger(__name__)

PASSWORD_MIN = 8
PASSWORD_MAX = 1024  # argon2 hashes anything, but a megabyte password is an attack, not a password
_EMAIL = re.compile(r"[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+")


def password_hasher(trends_env: str) -> PasswordHasher:
    """Argon2id with RFC 9106's low-memory parameters (the library's defaults); argon2's cheapest
    parameters in a test environment (TRENDS_ENV=test) only."""
    if trends_env == "test":
        # The suite creates and logs in hundreds of users: 90 ms each is most of its time.
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()


@cache
def _process_hasher() -> PasswordHasher:
    """The hasher of this process, chosen by its TRENDS_ENV once."""
    return password_hasher(get_settings().trends_env)


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both failures take the same time."""
    # Made on first use: hashing costs 64 MiB and 90 ms, which commands that never log in skip.
    return _process_hasher().hash("not the password of anyone")


def normalise_email(email: str) -> str:
    """The stored form of an email address; BadUserInput when it is not one."""
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise BadUserInput(f"not an email address: {email!r}", field="email")
    return email


def check_password(email: str, password: str) -> None:
    """Refuse a password that is too short, too long, or the email's own local part."""
    if len(password) < PASSWORD_MIN:
        raise BadUserInput(
            f"the password must have at least {PASSWORD_MIN} characters", field="password"
        )
    if len(password) > PASSWORD_MAX:
        raise BadUserInput(
            f"the password must have at most {PASSWORD_MAX} characters", field="password"
        )
    if password.casefold() == email.split("@", 1)[0].casefold():
        raise BadUserInput("the password must not be the email's name", field="password")


def get_user_by_email(session: Session, email: str) -> User | None:
    """The user with that email (any case), or None."""
    return session.scalars(sa.select(User).where(col(User.email) == email.strip().lower())).first()


def require_user(session: Session, email: str) -> User:
    """The user with that email (any case); NotFound when there is none."""
    user = get_user_by_email(session, email)
    if user is None:
        raise NotFound(f"no user with email {email.strip().lower()}", field="email")
    return user


def create_user(
    session: Session, email: str, password: str, *, staff: bool = False, superuser: bool = False
) -> User:
    """Create and commit a user; a superuser is staff too."""
    email = normalise_email(email)
    check_password(email, password)
    if get_user_by_email(session, email):
        raise BadUserInput(f"a user with email {email} exists", field="email")
    user = User(
        email=email,
        password_hash=_process_hasher().hash(password),
        is_staff=staff or superuser,
        is_superuser=superuser,
        created_at=utcnow(),
    )
    session.add(user)
    session.commit()
    log.info("user %s created (staff=%s, superuser=%s)", email, user.is_staff, superuser)
    return user


def set_password(session: Session, email: str, password: str) -> User:
    """Change a user's password, which ends the user's sessions."""
    user = require_user(session, email)
    check_password(user.email, password)
    user.password_hash = _process_hasher().hash(password)
    # Commits both: no session outlives the change.
    sessions.end_user_sessions(session, stored_id(user))
    log.info("password of %s changed", user.email)
    return user


def set_active(session: Session, email: str, active: bool) -> User:
    """Activate or deactivate a user; either ends the user's sessions."""
    user = require_user(session, email)
    user.is_active = active
    # Re-activation too: sessions opened before the account was deactivated stay ended.
    sessions.end_user_sessions(session, stored_id(user))
    log.info("user %s %s", user.email, "activated" if active else "deactivated")
    return user


def list_users(session: Session) -> list[User]:
    """Every user, by email."""
    return list(session.scalars(sa.select(User).order_by(User.email)))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with these credentials (recording the login), or None."""
    user = get_user_by_email(session, email)
    try:
        _process_hasher().verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if _process_hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _process_hasher().hash(password)
    user.last_login = utcnow()
    session.commit()
    return user
