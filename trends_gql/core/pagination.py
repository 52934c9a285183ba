"""Opaque ids and keyset cursors, stable under any ordering with nulls last."""

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from trends_gql.core.errors import BadUserInput
from trends_gql.core.models import table_of

M = TypeVar("M", bound=SQLModel)

# Integer columns (id and the counts) are 32-bit on PostgreSQL: beyond this range a value cannot
# be ours, and binding it would fail in the database rather than as the client's mistake.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


# Far above any cursor of ours (at most four values, the longest a 200-character text), and
# refused before it is decoded.
MAX_CURSOR_LENGTH = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_first(first: int | None, maximum: int) -> int:
    """`first` when between 0 and `maximum`; BadUserInput otherwise (never a silent clamp)."""
    if first is None or not 0 <= first <= maximum:
        raise BadUserInput(f"first must be between 0 and {maximum}", field="first")
    return first


def encode_id(pk: int, kind: str = "Trend") -> str:
    """The public id of a row of a kind (Trend, User)."""
    return _b64(f"{kind}:{pk}".encode())


def decode_id(public_id: str, kind: str = "Trend") -> int:
    """The primary key behind a public id of that kind; BadUserInput when malformed."""
    prefix = f"{kind}:"
    try:
        text = _unb64(public_id).decode()
        if text.startswith(prefix):
            digits = text[len(prefix) :]
            if digits.isascii() and digits.isdigit() and int(digits) <= _INT_MAX:
                pk = int(digits)
                # One id per row: no leading zeros, no padding.
                if encode_id(pk, kind) == public_id:
                    return pk
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadUserInput(f"malformed {kind.lower()} id: {public_id!r}", field="id")


def _keyset_of(table: str, terms: list[tuple[str, bool]], pk: str) -> "Keyset":
    columns = SQLModel.metadata.tables[table].c
    return Keyset([(columns[key], desc) for key, desc in terms], columns[pk])


class Keyset:
    """An ordering (column, descending) plus the id tie-break, and cursors within it."""

    def __init__(self, columns: Sequence[tuple[sa.Column[Any], bool]], pk: sa.Column[Any]) -> None:
        self.pk = pk
        if not any(col is pk for col, _ in columns):
            columns = [*columns, (pk, False)]
        self.columns = list(columns)
        self.signature = ",".join(f"{col.key}:{'d' if desc else 'a'}" for col, desc in self.columns)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by its table's name and column keys (for the cache), not with the table itself.
        terms = [(col.key, desc) for col, desc in self.columns]
        return _keyset_of, (self.pk.table.name, terms, self.pk.key)

    def order_by(
        self, columns: sa.ColumnCollection[str, Any] | None = None
    ) -> list[sa.ColumnElement[Any]]:
        """ORDER BY terms (of `columns` by key: a subquery's), nulls last in both directions."""
        terms = []
        for col, desc in self.columns:
            term = columns[col.key] if columns is not None else col
            term = term.desc() if desc else term.asc()
            # Said of nullable columns only: PostgreSQL would not walk an index in reverse
            # for `id DESC NULLS LAST`, though id has no nulls.
            terms.append(term.nulls_last() if col.nullable else term)
        return terms

    def cursor(self, row: Any) -> str:
        """The cursor of a result row that holds every ordering column."""
        return self.cursor_of(row._mapping)

    def cursor_of(self, values: Mapping[str, Any]) -> str:
        """The cursor of the ordering columns' values, by column key."""
        dumped = [_dump(values[col.key]) for col, _ in self.columns]
        return _b64(orjson.dumps([self.signature, dumped]))

    def alternatives(self, cursor: str) -> list[sa.ColumnElement[bool]]:
        """The rows strictly after `cursor` as conditions that exclude each other: the columns
        before one equal to the cursor's, that one beyond it (or null, where nulls come after).

        Each is one range of an index on the ordering's columns, which an OR of them is not.
        """
        alternatives = []
        equal: list[sa.ColumnElement[bool]] = []
        for (col, desc), value in zip(self.columns, self._load(cursor), strict=True):
            if value is None:
                # Nulls come last: nothing of this column sorts after a null, only other nulls tie.
                equal.append(col.is_(None))
                continue
            alternatives.append(sa.and_(*equal, col < value if desc else col > value))
            if col.nullable:
                alternatives.append(sa.and_(*equal, col.is_(None)))
            equal.append(col == value)
        return alternatives

    def after(self, cursor: str) -> sa.ColumnElement[bool]:
        """WHERE clause of the rows strictly after `cursor`."""
        alternatives = self.alternatives(cursor)
        return sa.or_(*alternatives) if alternatives else sa.false()

    def page(self, stmt: sa.Select[Any], after: str | None, limit: int) -> sa.Select[Any]:
        """`stmt` ordered, after the cursor, at most `limit` rows: one query per alternative
        (each reads at most `limit` rows of an index range), so that a deep page costs what
        the first does."""
        if after is None:
            return stmt.order_by(*self.order_by()).limit(limit)
        alternatives = self.alternatives(after) or [sa.false()]
        parts = [stmt.where(a).order_by(*self.order_by()).limit(limit) for a in alternatives]
        if len(parts) == 1:
            return parts[0]
        # Each in a subquery of its own: SQLite takes no ORDER BY or LIMIT in a UNION's parts.
        union = sa.union_all(*(sa.select(part.subquery()) for part in parts)).subquery()
        return sa.select(union).order_by(*self.order_by(union.c)).limit(limit)

    def _load(self, cursor: str) -> list[Any]:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise BadUserInput(
                f"malformed cursor: longer than {MAX_CURSOR_LENGTH} characters", field="after"
            )
        try:
            signature, values = orjson.loads(_unb64(cursor))
            if not isinstance(values, list) or len(values) != len(self.columns):
                raise ValueError
        except (binascii.Error, ValueError, TypeError):
            raise BadUserInput(f"malformed cursor: {cursor!r}", field="after") from None
        if signature != self.signature:
            raise BadUserInput("the cursor belongs to another orderBy", field="after")
        try:
            return [_load(col, v) for (col, _), v in zip(self.columns, values, strict=True)]
        except (TypeError, ValueError):
            raise BadUserInput(f"malformed cursor: {cursor!r}", field="after") from None


def _dump(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _python_type(col: sa.ColumnElement[Any]) -> type:
    # A TypeDecorator (UTCDateTime) reports `object`; the type it decorates knows better.
    col_type = col.type
    if isinstance(col_type, sa.TypeDecorator):
        col_type = col_type.impl_instance
    return col_type.python_type


def _load(col: sa.ColumnElement[Any], value: Any) -> Any:
    if value is None:
        if not col.nullable:
            raise ValueError("null in a non-null column")
        return None
    python_type = _python_type(col)
    if python_type is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive datetime")
        return moment
    if not isinstance(value, python_type) or isinstance(value, bool):
        raise TypeError(f"expected {python_type.__name__}")
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise ValueError("integer out of range")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("NUL character")
    return value


@dataclass
class RecordPage(Generic[M]):
    """A page of records with the cursor of each."""

    records: list[M]
    cursors: list[str]
    has_next: bool
    has_previous: bool


def newest_first(session: Session, model: type[M], first: int, after: str | None) -> RecordPage[M]:
    """A page of a table's records, newest (highest id) first."""
    pk = table_of(model).c.id
    keyset = Keyset([(pk, True)], pk)
    stmt = sa.select(model, pk)
    if after is not None:
        stmt = stmt.where(keyset.after(after))
    rows = list(session.execute(stmt.order_by(*keyset.order_by()).limit(first + 1)))
    return RecordPage(
        [row[0] for row in rows[:first]],
        [keyset.cursor(row) for row in rows[:first]],
        has_next=len(rows) > first,
        has_previous=after is not None,
    )
