"""Opaque ids and keyset cursors: round trips, and tampering refused as the client's mistake."""

import base64
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from conftest import csv_text, load, trend_row

from trends_gql.core.db import Database
from trends_gql.core.errors import BadUserInput
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.pagination import Keyset, decode_id, encode_id

T = TREND_TABLE.c
# An ordering over every kind of column a cursor carries: text, nullable integer, timestamp.
MIXED = [(T.megatrend, False), (T.total_count_of_publications, True), (T.uploaded_at, False)]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("pk", [1, 2, 42, 1_000_000, 2**31 - 1])
def test_encode_id_round_trips_through_decode_id(pk: int) -> None:
    assert decode_id(encode_id(pk)) == pk


def test_ids_are_url_safe_and_do_not_show_the_primary_key() -> None:
    public_id = encode_id(123456)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", public_id)
    assert "123456" not in public_id


@pytest.mark.parametrize(
    "public_id",
    [
        "",
        "not base64!",
        "1",
        b64(b"Trend:"),
        b64(b"Trend:-1"),
        b64(b"Trend:1.0"),
        b64(b"Trend:1e3"),
        b64(b"Trend: 1"),
        b64(b"Trend:abc"),
        b64(b"Other:1"),
        b64("Trend:\u0661".encode()),  # an Arabic-Indic digit: isdigit(), yet not a number of ours
        b64(b"\xff\xfeTrend:1"),
        b64(b"Trend:2147483648"),  # beyond the 32-bit id column
        b64(b"Trend:" + b"9" * 5000),
        b64(b"Trend:01"),  # another spelling of row 1
        b64(b"Trend:1") + "==",
    ],
)
def test_decode_id_refuses_malformed_ids_as_bad_user_input(public_id: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        decode_id(public_id)
    assert caught.value.extensions == {"code": "BAD_USER_INPUT", "field": "id"}


@pytest.fixture
def rows(db: Database, tmp_path: Path) -> list[sa.Row[Any]]:
    """Rows of two imports (two upload times), with null publication counts and ties."""
    load(
        db,
        tmp_path,
        csv_text(
            [
                trend_row(macrotrend="A", total_count_of_publications=5),
                trend_row(macrotrend="B", total_count_of_publications=None),
                trend_row(macrotrend="C", total_count_of_publications=5),
                trend_row(megatrend="Mobility", macrotrend="D", total_count_of_publications=9),
            ]
        ),
    )
    load(
        db,
        tmp_path,
        csv_text(
            [
                trend_row(macrotrend="E", total_count_of_publications=None),
                trend_row(megatrend="Mobility", macrotrend="F", total_count_of_publications=5),
            ]
        ),
    )
    with db.session() as session:
        return list(session.execute(sa.select(TREND_TABLE)))


def python_order(rows: list[sa.Row[Any]]) -> list[sa.Row[Any]]:
    """MIXED plus the id tie-break, computed in Python: nulls last, publications descending."""
    ordered = sorted(rows, key=lambda r: r.id)
    ordered.sort(key=lambda r: r.uploaded_at)
    present = [r for r in ordered if r.total_count_of_publications is not None]
    missing = [r for r in ordered if r.total_count_of_publications is None]
    present.sort(key=lambda r: r.total_count_of_publications, reverse=True)
    return sorted(present + missing, key=lambda r: r.megatrend)


def test_after_a_cursor_come_exactly_the_rows_that_sort_after_it(
    db: Database, rows: list[sa.Row[Any]]
) -> None:
    keyset = Keyset(MIXED, T.id)
    expected = [r.id for r in python_order(rows)]
    with db.session() as session:
        ordered = sa.select(T.id).order_by(*keyset.order_by())
        assert list(session.scalars(ordered)) == expected
        for position, row in enumerate(python_order(rows)):
            after = list(session.scalars(ordered.where(keyset.after(keyset.cursor(row)))))
            assert after == expected[position + 1 :], f"after row {row.macrotrend}"


def tamper(cursor: str, change: Callable[[str, list[Any]], tuple[str, list[Any]]]) -> str:
    signature, values = orjson.loads(unb64(cursor))
    return b64(orjson.dumps(list(change(signature, values))))


def set_value(index: int, value: Any) -> Callable[[str, list[Any]], tuple[str, list[Any]]]:
    def change(signature: str, values: list[Any]) -> tuple[str, list[Any]]:
        values[index] = value
        return signature, values

    return change


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda s, v: (s, v[:-1]), "a value too few"),
        (lambda s, v: (s, [*v, 1]), "a value too many"),
        (lambda s, v: (s, {"values": v}), "values that are not a list"),
        (set_value(0, 7), "a number for text"),
        (set_value(0, "AI\x00"), "text with a NUL character"),
        (set_value(0, None), "null for a non-null column"),
        (set_value(1, "5"), "text for a number"),
        (set_value(1, 5.5), "a fraction for a whole number"),
        (set_value(1, True), "a boolean for a number"),
        (set_value(1, 2**31), "a number beyond the 32-bit column"),
        (set_value(2, "2026-01-01T00:00:00"), "a timestamp without a time zone"),
        (set_value(2, "yesterday"), "text that is no timestamp"),
        (set_value(2, 1_700_000_000), "a number for a timestamp"),
        (set_value(3, -(2**31) - 1), "an id below the 32-bit column"),
    ],
)
def test_a_tampered_cursor_is_bad_user_input(
    rows: list[sa.Row[Any]],
    change: Callable[[str, list[Any]], tuple[str, list[Any]]],
    what: str,
) -> None:
    keyset = Keyset(MIXED, T.id)
    cursor = tamper(keyset.cursor(rows[0]), change)
    with pytest.raises(BadUserInput) as caught:
        keyset.after(cursor)
    assert caught.value.extensions["field"] == "after", what


@pytest.mark.parametrize(
    "cursor",
    ["", "garbage!", "e30", b64(b"not json"), b64(b"[]"), b64(b"[1, 2, 3]"), b64(b'"text"')],
)
def test_a_cursor_that_is_not_one_of_ours_is_bad_user_input(cursor: str) -> None:
    with pytest.raises(BadUserInput) as caught:
        Keyset(MIXED, T.id).after(cursor)
    assert caught.value.extensions == {"code": "BAD_USER_INPUT", "field": "after"}


@pytest.mark.parametrize(
    "other",
    [
        [(T.macrotrend, False), (T.total_count_of_publications, True), (T.uploaded_at, False)],
        [(T.megatrend, True), (T.total_count_of_publications, True), (T.uploaded_at, False)],
        [(T.megatrend, False)],
    ],
)
def test_a_cursor_of_another_ordering_is_bad_user_input(
    rows: list[sa.Row[Any]], other: list[tuple[sa.Column[Any], bool]]
) -> None:
    cursor = Keyset(MIXED, T.id).cursor(rows[0])
    with pytest.raises(BadUserInput):
        Keyset(other, T.id).after(cursor)


def test_a_cursor_keeps_a_null_and_an_aware_timestamp(rows: list[sa.Row[Any]]) -> None:
    keyset = Keyset(MIXED, T.id)
    row = next(r for r in rows if r.total_count_of_publications is None)
    _, values = orjson.loads(unb64(keyset.cursor(row)))
    assert values[1] is None
    assert datetime.fromisoformat(values[2]) == row.uploaded_at
    assert datetime.fromisoformat(values[2]).tzinfo is not None
