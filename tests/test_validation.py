"""Field rules of a trend record: enums, defaults, counts, required and long text, fingerprints."""

import enum
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import csv_text, load, trend_row

from trends_gql.core.db import Database
from trends_gql.core.fields import (
    COUNT_MAX,
    FIELDS,
    REQUIRED,
    ImpactStrength,
    Steepl,
    TechnologyReadinessLevel,
)
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.validation import InvalidTrend, fingerprint, validate_trend


def _stored(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(TREND_TABLE).order_by(TREND_TABLE.c.id)).mappings()
        return [dict(r) for r in rows]


@pytest.mark.parametrize(
    ("field", "cell", "expected"),
    [
        ("technology_readiness_level", "pilot", TechnologyReadinessLevel.PILOT),
        ("technology_readiness_level", "DEVELOPMENT", TechnologyReadinessLevel.DEVELOPMENT),
        ("technology_readiness_level", " Deploy ", TechnologyReadinessLevel.DEPLOY),
        ("impact_strength", "low", ImpactStrength.LOW),
        ("impact_strength", "MEDIUM", ImpactStrength.MEDIUM),
        ("impact_strength", "High", ImpactStrength.HIGH),
        ("steepl", "t", Steepl.T),
        ("steepl", "Social", Steepl.S),
        ("steepl", "technological", Steepl.T),
        ("steepl", "ECONOMIC", Steepl.E),
        ("steepl", "Environmental", Steepl.E),
        ("steepl", "political", Steepl.P),
        ("steepl", "Legal", Steepl.L),
    ],
)
def test_enum_cells_match_ignoring_case_and_steepl_words(
    field: str, cell: str, expected: enum.Enum
) -> None:
    assert validate_trend(trend_row(**{field: cell}))[field] is expected


def test_enum_cells_are_stored_in_canonical_form(db: Database, tmp_path: Path) -> None:
    row = trend_row(technology_readiness_level="deploy", impact_strength="mEdIuM", steepl="legal")
    assert load(db, tmp_path, csv_text([row])).created == 1
    stored = _stored(db)[0]
    assert (
        stored["technology_readiness_level"],
        stored["impact_strength"],
        stored["steepl"],
    ) == ("Deploy", "Medium", "L")


def test_empty_cells_are_null_or_the_default(db: Database, tmp_path: Path) -> None:
    optional = [f for f in FIELDS if f not in REQUIRED]
    row = trend_row(**dict.fromkeys(optional, "  "))
    assert load(db, tmp_path, csv_text([row])).created == 1
    stored = _stored(db)[0]
    assert {f: stored[f] for f in optional} == {
        "total_count_of_publications": None,
        "total_count_of_patents": None,
        "technology_readiness_level": None,
        "impact_strength": "Low",
        "steepl": "S",
        "relevant_industries": None,
        "real_world_application_and_use_cases": None,
    }


@pytest.mark.parametrize(
    ("cell", "expected"), [("0", 0), (" 42 ", 42), ("+7", 7), ("12.0", 12), ("", None)]
)
def test_count_cells_accept_whole_numbers(cell: str, expected: int | None) -> None:
    assert validate_trend(trend_row(total_count_of_patents=cell))["total_count_of_patents"] == (
        expected
    )


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("-3", "must not be negative (got -3)"),
        ("ten", "is not a whole number: 'ten'"),
        ("1.5", "is not a whole number: '1.5'"),
        ("1e3", "is not a whole number: '1e3'"),
        (str(COUNT_MAX + 1), f"is too large (at most {COUNT_MAX})"),
    ],
)
def test_count_cells_reject_negative_fractional_and_non_numeric_values(
    cell: str, message: str
) -> None:
    with pytest.raises(InvalidTrend) as info:
        validate_trend(trend_row(total_count_of_publications=cell))
    assert [(e.field, e.message) for e in info.value.errors] == [
        ("total_count_of_publications", message)
    ]


def test_invalid_trend_names_every_bad_field() -> None:
    with pytest.raises(InvalidTrend) as info:
        validate_trend(trend_row(megatrend=" ", steepl="X", total_count_of_patents="-1"))
    assert [e.field for e in info.value.errors] == [
        "megatrend",
        "total_count_of_patents",
        "steepl",
    ]


def test_every_kind_of_bad_row_is_reported_with_line_column_and_message(
    db: Database, tmp_path: Path
) -> None:
    text = csv_text(
        [
            trend_row(technology_readiness_level="Prototype"),
            trend_row(total_count_of_publications="-5"),
            trend_row(total_count_of_patents="many"),
            trend_row(megatrend=""),
            trend_row(macrotrend="   "),
            trend_row(challenges_and_research_gaps=None),
            trend_row(megatrend="x" * 151),
            trend_row(macrotrend="y" * 201),
        ]
    )
    text += "AI;Edge AI;Gaps\r\n" + csv_text([trend_row(megatrend="Valid")]).split("\r\n", 1)[1]
    report = load(db, tmp_path, text)
    assert [(e.line, e.column, e.message) for e in report.errors] == [
        (
            2,
            "Technology Readiness Level",
            "unknown value 'Prototype' (expected one of Pilot, Development, Deploy)",
        ),
        (3, "Total Count of Publications", "must not be negative (got -5)"),
        (4, "Total Count of Patents", "is not a whole number: 'many'"),
        (5, "Megatrend", "is required"),
        (6, "Macrotrend", "is required"),
        (7, "Challenges and Research Gaps", "is required"),
        (8, "Megatrend", "is too long (151 characters, at most 150)"),
        (9, "Macrotrend", "is too long (201 characters, at most 200)"),
        (10, None, "expected 10 columns, found 3"),
    ]
    assert (report.total, report.invalid, report.created, report.skipped) == (10, 9, 0, 0)
    assert report.ok is False
    assert _stored(db) == []


def test_a_row_with_several_bad_cells_reports_each(db: Database, tmp_path: Path) -> None:
    row = trend_row(megatrend="", total_count_of_patents="-2", steepl="Z")
    report = load(db, tmp_path, csv_text([row]))
    assert [(e.line, e.column) for e in report.errors] == [
        (2, "Megatrend"),
        (2, "Total Count of Patents"),
        (2, "STEEPL"),
    ]
    assert report.invalid == 1


def test_text_at_the_length_limits_is_stored(db: Database, tmp_path: Path) -> None:
    row = trend_row(megatrend="é" * 150, macrotrend="  " + "ß" * 200 + "  ")
    assert load(db, tmp_path, csv_text([row])).created == 1
    stored = _stored(db)[0]
    assert (stored["megatrend"], stored["macrotrend"]) == ("é" * 150, "ß" * 200)


def test_fingerprint_ignores_surrounding_spaces_and_enum_case() -> None:
    variant = trend_row(
        megatrend="  AI ",
        technology_readiness_level="pilot",
        impact_strength="HIGH",
        steepl="technological",
        total_count_of_publications="10",
    )
    assert fingerprint(validate_trend(variant)) == fingerprint(validate_trend(trend_row()))


@pytest.mark.parametrize("field", FIELDS)
def test_fingerprint_changes_with_each_of_the_ten_fields(field: str) -> None:
    other = {
        "total_count_of_publications": 11,
        "total_count_of_patents": 3,
        "technology_readiness_level": "Deploy",
        "impact_strength": "Low",
        "steepl": "P",
    }.get(field, "something else")
    base = fingerprint(validate_trend(trend_row()))
    assert fingerprint(validate_trend(trend_row(**{field: other}))) != base


def test_fingerprint_tells_an_empty_cell_from_a_zero_or_a_dash() -> None:
    empty = fingerprint(validate_trend(trend_row(total_count_of_patents="")))
    zero = fingerprint(validate_trend(trend_row(total_count_of_patents=0)))
    dash = fingerprint(validate_trend(trend_row(relevant_industries="-")))
    blank = fingerprint(validate_trend(trend_row(relevant_industries="")))
    assert empty != zero
    assert dash != blank
