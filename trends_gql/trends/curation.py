"""Staff edits of single trends: create, update, delete, with the import's validation."""

import logging
from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trends_gql.core.db import utcnow
from trends_gql.core.errors import BadUserInput, NotFound
from trends_gql.core.fields import FIELDS, api_name
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.pagination import encode_id
from trends_gql.core.validation import InvalidTrend, fingerprint, validate_trend

log = logging.getLogger(__name__)
T = TREND_TABLE.c


def _validated(raw: Mapping[str, Any]) -> dict[str, Any]:
    try:
        values = validate_trend(raw)
    except InvalidTrend as exc:
        errors = [{"field": api_name(e.field), "message": e.message} for e in exc.errors]
        raise BadUserInput(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            field=errors[0]["field"],
            errors=errors,
        ) from None
    values["fingerprint"] = fingerprint(values)
    return values


def _refuse_duplicate(session: Session, values: Mapping[str, Any], pk: int | None = None) -> None:
    stmt = sa.select(T.id).where(T.fingerprint == values["fingerprint"])
    if pk is not None:
        stmt = stmt.where(T.id != pk)
    other = session.execute(stmt).scalar()
    if other is not None:
        raise BadUserInput("another trend has the same ten fields", duplicateOf=encode_id(other))


def _write(session: Session, stmt: sa.Executable) -> Any:
    """Execute and commit; the RETURNING value, read before the commit (SQLite needs that)."""
    try:
        # A DML statement's result is a CursorResult; Session.execute is typed for any statement.
        result = cast(CursorResult[Any], session.execute(stmt))
        value = result.scalar_one() if result.returns_rows else None
        session.commit()
    except IntegrityError:
        # A concurrent write took the same fingerprint between our check and this one.
        session.rollback()
        raise BadUserInput("another trend has the same ten fields") from None
    return value


def create_trend(session: Session, raw: Mapping[str, Any], actor: str) -> int:
    """Validate and store a new trend; return its primary key."""
    values = _validated(raw)
    _refuse_duplicate(session, values)
    now = utcnow()
    stmt = sa.insert(TREND_TABLE).values(**values, uploaded_at=now, updated_at=now)
    pk: int = _write(session, stmt.returning(T.id))
    log.info("trend %d created by %s", pk, actor)
    return pk


def update_trend(session: Session, pk: int, changes: Mapping[str, Any], actor: str) -> int:
    """Change the given fields of a trend, validated as a whole; keep uploaded_at."""
    current = session.execute(sa.select(*(T[f] for f in FIELDS)).where(T.id == pk)).first()
    if current is None:
        raise NotFound("no trend with this id", field="id")
    values = _validated({**current._mapping, **changes})
    _refuse_duplicate(session, values, pk)
    stmt = sa.update(TREND_TABLE).where(T.id == pk).values(**values, updated_at=utcnow())
    _write(session, stmt)
    log.info("trend %d updated by %s: %s", pk, actor, ", ".join(sorted(changes)) or "nothing")
    return pk


def delete_trend(session: Session, pk: int, actor: str) -> None:
    """Delete a trend; NotFound when there is none."""
    result = cast(CursorResult[Any], session.execute(sa.delete(TREND_TABLE).where(T.id == pk)))
    if result.rowcount == 0:
        session.rollback()
        raise NotFound("no trend with this id", field="id")
    session.commit()
    log.info("trend %d deleted by %s", pk, actor)
