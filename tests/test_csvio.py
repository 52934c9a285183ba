"""The CSV format: encodings, separators, headers, quoting, line numbers and file-level errors."""

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import SAMPLE, csv_text, generate_csv, load, trend_row

from trends_gql.core.db import Database
from trends_gql.core.fields import FIELDS, TREND_FIELDS
from trends_gql.core.models import TREND_TABLE
from trends_gql.imports.csvio import (
    HEADERS,
    CsvFormatError,
    TrendCsvReader,
    escape_cell,
    normalise_header,
    unescape_cell,
    write_csv,
)

HEADER_LINE = ";".join(HEADERS.values())


def _stored(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(TREND_TABLE).order_by(TREND_TABLE.c.id)).mappings()
        return [dict(r) for r in rows]


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {f: row[f] for f in FIELDS}


def _lines(*cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(cells)
    return out.getvalue()


def test_sample_file_is_imported_with_every_field(db: Database, tmp_path: Path) -> None:
    report = load(db, tmp_path, SAMPLE, batch_size=7)
    assert (report.total, report.created, report.skipped, report.invalid) == (44, 44, 0, 0)
    assert (report.encoding, report.delimiter, report.by_position) == ("UTF-8", ";", False)
    rows = _stored(db)
    assert len(rows) == 44
    assert _fields(rows[0]) == {
        "megatrend": "AI",
        "macrotrend": "Generative AI",
        "challenges_and_research_gaps": "Lack of interoperability standards; High capital cost",
        "total_count_of_publications": None,
        "total_count_of_patents": 4747,
        "technology_readiness_level": "Pilot",
        "impact_strength": "High",
        "steepl": "T",
        "relevant_industries": "Automotive",
        "real_world_application_and_use_cases": (
            "Customer service assistants; clinical decision support"
        ),
    }


@pytest.mark.parametrize(
    ("args", "delimiter"),
    [(["--comma"], ","), (["--snake-headers"], ";"), (["--comma", "--snake-headers"], ",")],
    ids=["comma", "snake-headers", "comma-and-snake-headers"],
)
def test_variant_file_holds_the_same_records_as_the_pipeline_format(
    db: Database, tmp_path: Path, args: list[str], delimiter: str
) -> None:
    variant = load(db, tmp_path, generate_csv(60, tmp_path / "variant.csv", *args))
    assert (variant.delimiter, variant.total, variant.created, variant.invalid) == (
        delimiter,
        60,
        60,
        0,
    )
    pipeline = load(db, tmp_path, generate_csv(60, tmp_path / "pipeline.csv"))
    assert (pipeline.delimiter, pipeline.created, pipeline.skipped) == (";", 0, 60)
    assert len(_stored(db)) == 60


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(
            [
                "  technology READINESS level ",
                "steepl",
                "Macro-Trend",
                "challenges_and_research_gaps",
                "MEGATREND",
                "Impact.Strength",
                "relevant industries",
                "Total count of PATENTS",
                "total_count_of_publications",
                "REAL WORLD application and use-cases",
            ],
            id="full",
        ),
        pytest.param(
            [
                "TRL",
                "STEEPL",
                "Macrotrend",
                "Challenges",
                "Megatrend",
                "Impact",
                "Industries",
                "Patents",
                "Publications",
                "Use cases",
            ],
            id="short",
        ),
    ],
)
def test_headers_full_or_short_in_any_order_match_ignoring_case_spaces_and_punctuation(
    db: Database, tmp_path: Path, header: list[str]
) -> None:
    row = ["deploy", "E", "Edge AI", "Gaps", "AI", "Medium", "Energy", "3", "4", "Use"]
    report = load(db, tmp_path, _lines(header, row))
    assert (report.created, report.warnings) == (1, [])
    assert _fields(_stored(db)[0]) == {
        "megatrend": "AI",
        "macrotrend": "Edge AI",
        "challenges_and_research_gaps": "Gaps",
        "total_count_of_publications": 4,
        "total_count_of_patents": 3,
        "technology_readiness_level": "Deploy",
        "impact_strength": "Medium",
        "steepl": "E",
        "relevant_industries": "Energy",
        "real_world_application_and_use_cases": "Use",
    }


def test_no_header_name_matches_two_fields() -> None:
    names = [
        (normalise_header(name), f.name)
        for f in TREND_FIELDS
        for name in {f.header, f.name, *f.aliases}
    ]
    fields_of = {key: {field for k, field in names if k == key} for key, _ in names}
    assert {key: found for key, found in fields_of.items() if len(found) > 1} == {}


def test_the_written_header_is_the_pipelines() -> None:
    out = io.StringIO()
    write_csv([], out)
    assert out.getvalue() == (
        "Megatrend;Macrotrend;Challenges and Research Gaps;Total Count of Publications;"
        "Total Count of Patents;Technology Readiness Level;Impact Strength;STEEPL;"
        "Relevant Industries;Real-World Application and Use Cases\r\n"
    )


def test_optional_columns_may_be_absent_with_a_warning(db: Database, tmp_path: Path) -> None:
    text = _lines(["Macrotrend", "Megatrend", "Challenges and Research Gaps"], ["B", "A", "C"])
    report = load(db, tmp_path, text)
    assert report.created == 1
    assert "column 'STEEPL' is absent: left empty" in report.warnings
    stored = _stored(db)[0]
    assert (stored["megatrend"], stored["macrotrend"], stored["steepl"]) == ("A", "B", "S")
    assert stored["total_count_of_publications"] is None


def test_lf_and_crlf_line_endings_give_the_same_records(db: Database, tmp_path: Path) -> None:
    crlf = csv_text([trend_row(megatrend=f"M{i}") for i in range(5)])
    lf = load(db, tmp_path, crlf.replace("\r\n", "\n"))
    assert (lf.created, lf.invalid) == (5, 0)
    assert all(not r["real_world_application_and_use_cases"].endswith("\r") for r in _stored(db))
    again = load(db, tmp_path, crlf)
    assert (again.created, again.skipped) == (0, 5)


def test_quoted_fields_keep_separators_quotes_and_newlines(db: Database, tmp_path: Path) -> None:
    tricky = {
        "challenges_and_research_gaps": "Cost; scale\r\nsecond line\nthird line",
        "relevant_industries": "Energy, Finance; Retail",
        "real_world_application_and_use_cases": 'The "smart" grid',
    }
    for delimiter in (";", ","):
        report = load(db, tmp_path, csv_text([trend_row(**tricky)], delimiter=delimiter))
        assert report.delimiter == delimiter
    rows = _stored(db)
    assert len(rows) == 1
    assert {f: rows[0][f] for f in tricky} == tricky


def test_cp1252_file_is_imported_and_reported(db: Database, tmp_path: Path) -> None:
    text = csv_text([trend_row(megatrend="Café Zürich", relevant_industries="Médias €")])
    data = text.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    report = load(db, tmp_path, data)
    assert (report.encoding, report.created) == ("cp1252", 1)
    stored = _stored(db)[0]
    assert (stored["megatrend"], stored["relevant_industries"]) == ("Café Zürich", "Médias €")
    utf8 = load(db, tmp_path, text.encode("utf-8"))
    assert (utf8.encoding, utf8.skipped) == ("UTF-8", 1)


def test_utf8_bom_is_not_part_of_the_first_column(db: Database, tmp_path: Path) -> None:
    bad = load(db, tmp_path, ("\ufeff" + csv_text([trend_row(megatrend="")])).encode())
    assert bad.encoding == "UTF-8"
    assert [(e.line, e.column) for e in bad.errors] == [(2, "Megatrend")]
    good = load(db, tmp_path, ("\ufeff" + csv_text([trend_row()])).encode())
    assert good.created == 1
    assert _stored(db)[0]["megatrend"] == "AI"


def test_unrecognised_ten_column_header_is_read_by_position(db: Database, tmp_path: Path) -> None:
    header = [f"Column {c}" for c in "ABCDEFGHIJ"]
    row = ["AI", "Edge AI", "Gaps", "1", "2", "pilot", "high", "Legal", "Retail", "Use"]
    report = load(db, tmp_path, _lines(header, row))
    assert report.by_position is True
    assert any("by position" in w for w in report.warnings)
    assert report.created == 1
    expected = ["AI", "Edge AI", "Gaps", 1, 2, "Pilot", "High", "L", "Retail", "Use"]
    assert _fields(_stored(db)[0]) == dict(zip(FIELDS, expected, strict=True))


RECORD_FIRST_LINES = [
    pytest.param(
        ["AI", "Edge AI", "Gaps", "1", "2", "pilot", "high", "Legal", "Retail", "Use"], id="full"
    ),
    pytest.param(["AI", "Edge AI", "Gaps", "", "", "", "", "", "", ""], id="text-only"),
    pytest.param(["AI", "Edge AI", "", "144453", "x", "", "", "", "", ""], id="one-count"),
    pytest.param(["AI", "Edge AI", "", "", "", "Deploy", "", "", "", ""], id="readiness"),
    pytest.param(["AI", "Edge AI", "", "", "", "", "", "T", "", ""], id="steepl"),
]


@pytest.mark.parametrize("first", RECORD_FIRST_LINES)
def test_a_first_line_that_is_a_trend_record_is_refused_not_taken_as_a_header(
    db: Database, tmp_path: Path, first: list[str]
) -> None:
    row = ["AI", "Robotics", "Gaps", "3", "4", "Deploy", "Low", "S", "Energy", "Use"]
    with pytest.raises(CsvFormatError, match="trend record, not a header: the first line must"):
        load(db, tmp_path, _lines(first, row))
    assert _stored(db) == []


def test_the_reader_opens_no_symbolic_link_and_nothing_but_a_regular_file(
    db: Database, tmp_path: Path
) -> None:
    link = tmp_path / "link.csv"
    link.symlink_to(SAMPLE)
    with pytest.raises(CsvFormatError, match="symbolic link: links are not followed"):
        load(db, tmp_path, link)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(CsvFormatError, match="is a folder, not a regular file"):
        load(db, tmp_path, folder)
    assert _stored(db) == []


def test_row_errors_name_the_physical_line_where_the_record_starts(
    db: Database, tmp_path: Path
) -> None:
    text = csv_text(
        [
            trend_row(challenges_and_research_gaps="spans\nthree\nlines"),
            trend_row(technology_readiness_level="Prototype"),
        ]
    )
    later = [
        trend_row(relevant_industries="two\r\nlines", total_count_of_patents="-1"),
        trend_row(megatrend=""),
    ]
    text += "\r\n" + csv_text(later).split("\r\n", 1)[1]
    report = load(db, tmp_path, text)
    assert [(e.line, e.column) for e in report.errors] == [
        (5, "Technology Readiness Level"),
        (7, "Total Count of Patents"),
        (9, "Megatrend"),
    ]
    assert (report.total, report.invalid) == (4, 3)


def test_row_errors_name_the_column_as_written_in_the_header(db: Database, tmp_path: Path) -> None:
    header = ["megatrend", "MACROTREND", "challenges and research gaps", " Total_Count_Of_Patents "]
    report = load(db, tmp_path, _lines(header, ["AI", "Edge", "Gaps", "ten"]))
    assert [(e.line, e.column) for e in report.errors] == [(2, "Total_Count_Of_Patents")]
    assert "not a whole number" in report.errors[0].message


FILE_ERRORS = [
    pytest.param(b"", "the file is empty", id="empty"),
    pytest.param(b"\xef\xbb\xbf\r\n", "the file is empty", id="bom-and-newline-only"),
    pytest.param((HEADER_LINE + "\r\n").encode(), "header but no data rows", id="header-only"),
    pytest.param(
        (HEADER_LINE + "\r\n\r\n;;;;;;;;;\r\n").encode(), "header but no data rows", id="blank-rows"
    ),
    pytest.param(bytes(range(256)) * 8, "NUL bytes", id="binary-with-nul"),
    pytest.param(b"\x81\x8d\x8f\x90\x9d" * 50, "neither UTF-8 nor cp1252", id="binary-garbage"),
    pytest.param(csv_text([trend_row()]).encode("utf-16"), "UTF-16", id="utf-16"),
    pytest.param(csv_text([trend_row()]).encode("utf-16-le"), "NUL bytes", id="utf-16-without-bom"),
    pytest.param(
        _lines([*HEADERS.values(), "Colour"], [*"abcdefghij", "red"]).encode(),
        r"unknown column\(s\): 'Colour'",
        id="unknown-column",
    ),
    pytest.param(
        _lines(["Megatrend", "Challenges and Research Gaps"], ["A", "C"]).encode(),
        r"missing required column\(s\): Macrotrend$",
        id="missing-required-column",
    ),
    pytest.param(
        _lines(
            ["Megatrend", "Macrotrend", "Challenges and Research Gaps", "megatrend"],
            ["A", "B", "C", "D"],
        ).encode(),
        r"column\(s\) given twice: Megatrend$",
        id="duplicated-column",
    ),
    pytest.param(
        _lines(["name", "value", "note"], ["A", "B", "C"]).encode(),
        r"header not recognised \(3 columns\): the first line must be the header",
        id="wrong-width-header",
    ),
    pytest.param(
        (csv_text([trend_row()]) + 'AI;"unterminated\r\n').encode(),
        "line 3: unexpected end of data",
        id="unterminated-quote",
    ),
]


@pytest.mark.parametrize(("content", "message"), FILE_ERRORS)
def test_unreadable_file_raises_csv_format_error_and_imports_nothing(
    db: Database, tmp_path: Path, content: bytes, message: str
) -> None:
    with pytest.raises(CsvFormatError, match=message):
        load(db, tmp_path, content, batch_size=1)
    assert _stored(db) == []


@pytest.mark.parametrize(
    "value", ["=SUM(A1)", "+1", "-x", "@cmd", "\tx", "\rx", "'=already quoted", "''-twice"]
)
def test_formula_cells_are_escaped_and_restored_exactly(value: str) -> None:
    escaped = escape_cell(value)
    assert escaped == "'" + value
    assert unescape_cell(escaped) == value


@pytest.mark.parametrize("value", ["plain", "'quoted text", "'", "", "a=b", "1-2"])
def test_harmless_cells_are_left_alone(value: str) -> None:
    assert escape_cell(value) == value
    assert unescape_cell(value) == value


def test_blank_lines_before_the_header_are_skipped(db: Database, tmp_path: Path) -> None:
    report = load(db, tmp_path, "\r\n  \r\n" + csv_text([trend_row(), trend_row(steepl="L")]))
    assert (report.total, report.created) == (2, 2)
    bad = load(db, tmp_path, "\r\n" + csv_text([trend_row(steepl="Q")]))
    assert [(e.line, e.column) for e in bad.errors] == [(3, "STEEPL")]


def test_the_row_count_of_a_file_is_what_its_import_reads(db: Database, tmp_path: Path) -> None:
    quoted = trend_row(challenges_and_research_gaps="two\nlines; and a separator")
    text = "\r\n" + csv_text([trend_row(), quoted, trend_row(steepl="bad")]) + "\r\n;;\r\n  \r\n"
    path = tmp_path / "rows.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert TrendCsvReader(path).count_rows() == 3
    assert load(db, tmp_path, path).total == 3
