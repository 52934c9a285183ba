"""Import (one transaction, batched, deduplicated, strict, dry run) and export (CSV and JSON)."""

import csv
import json
import os
import signal
import sqlite3
import tracemalloc
from datetime import UTC
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from conftest import SAMPLE, csv_text, generate_csv, load, trend_row
from psycopg import pq

from trends_gql.core.db import Database
from trends_gql.core.fields import FIELDS
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.settings import Settings
from trends_gql.core.validation import fingerprint, validate_trend
from trends_gql.exports.files import export_trends
from trends_gql.imports import ingest
from trends_gql.imports.csvio import CsvFormatError, escape_cell
from trends_gql.imports.ingest import ImportReport

LARGE_ROWS = 20_000
HEADER_LINE = SAMPLE.read_text(encoding="utf-8").splitlines()[0]
FORMULAS = ["=SUM(A1)", "-x", "@cmd", "'=already quoted", "+1"]


def _stored(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(TREND_TABLE).order_by(TREND_TABLE.c.id)).mappings()
        return [dict(r) for r in rows]


def _count(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(TREND_TABLE)).scalar_one()


def _counts(report: ImportReport) -> tuple[int, int, int, int]:
    return report.total, report.created, report.skipped, report.invalid


def _records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{f: r[f] for f in FIELDS} for r in rows]


def _empty(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.delete(TREND_TABLE))


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_csv(LARGE_ROWS, tmp_path_factory.mktemp("large") / "large.csv")


def test_import_stores_rows_with_their_fingerprint_and_timestamps(
    db: Database, tmp_path: Path
) -> None:
    report = load(db, tmp_path, csv_text([trend_row(), trend_row(megatrend="Robotics")]))
    assert _counts(report) == (2, 2, 0, 0)
    assert report.ok is True
    rows = _stored(db)
    assert [r["megatrend"] for r in rows] == ["AI", "Robotics"]
    for row in rows:
        assert row["fingerprint"] == fingerprint(validate_trend(row))
        assert row["uploaded_at"] == row["updated_at"]
        assert row["uploaded_at"].tzinfo == UTC


def test_imported_timestamps_compare_equal_to_themselves_in_sql(
    db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, csv_text([trend_row()]))
    uploaded_at = _stored(db)[0]["uploaded_at"]
    t = TREND_TABLE.c
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(t.id).where(t.uploaded_at == uploaded_at)).all() != []
        assert conn.execute(sa.select(t.id).where(t.updated_at > uploaded_at)).all() == []


def test_import_inserts_in_batches_of_the_given_size(db: Database, tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    report = load(
        db,
        tmp_path,
        csv_text([trend_row(megatrend=f"M{i}") for i in range(20)]),
        batch_size=7,
        on_progress=lambda r: progress.append((r.total, r.created)),
    )
    # On PostgreSQL a batch's insert runs while the next one is read: its count comes later.
    assert [total for total, _ in progress] == [7, 14, 20]
    created = [c for _, c in progress]
    assert created == sorted(created)
    assert all(c <= t for t, c in progress)
    assert _counts(report) == (20, 20, 0, 0)
    assert _count(db) == 20


@pytest.fixture
def refusing_zz(db: Database) -> Any:
    """The database refuses macrotrend "ZZ", which our validation accepts: a failing insert."""
    sqlite = db.dialect == "sqlite"
    add = (
        "CREATE TRIGGER refuse_zz BEFORE INSERT ON trend WHEN NEW.macrotrend = 'ZZ' "
        "BEGIN SELECT RAISE(ABORT, 'refused ZZ'); END"
        if sqlite
        else "ALTER TABLE trend ADD CONSTRAINT refuse_zz CHECK (macrotrend <> 'ZZ')"
    )
    drop = "DROP TRIGGER refuse_zz" if sqlite else "ALTER TABLE trend DROP CONSTRAINT refuse_zz"
    with db.engine.begin() as conn:
        conn.execute(sa.text(add))
    yield
    with db.engine.begin() as conn:
        conn.execute(sa.text(drop))


@pytest.mark.parametrize("bad_batch", [0, 1, 2], ids=["first", "middle", "last"])
def test_an_insert_the_database_refuses_fails_the_import_and_keeps_nothing(
    db: Database, tmp_path: Path, refusing_zz: None, bad_batch: int
) -> None:
    rows = [trend_row(megatrend=f"M{i}") for i in range(9)]
    rows[bad_batch * 3 + 1] = trend_row(macrotrend="ZZ")
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)) as failure:
        load(db, tmp_path, csv_text(rows), batch_size=3)
    assert "refuse" in str(failure.value)
    assert _count(db) == 0
    assert _counts(load(db, tmp_path, csv_text(rows[:1]))) == (1, 1, 0, 0)  # the session is fine


def test_reimporting_the_same_file_creates_nothing(db: Database, tmp_path: Path) -> None:
    assert _counts(load(db, tmp_path, SAMPLE, batch_size=7)) == (44, 44, 0, 0)
    before = _stored(db)
    assert _counts(load(db, tmp_path, SAMPLE, batch_size=7)) == (44, 0, 44, 0)
    assert _stored(db) == before


def test_duplicate_rows_within_one_file_count_as_skipped(db: Database, tmp_path: Path) -> None:
    rows = [trend_row(megatrend=f"M{i}") for i in range(10)]
    report = load(db, tmp_path, csv_text(rows + rows[::-1]), batch_size=3)
    assert _counts(report) == (20, 10, 10, 0)
    assert [r["megatrend"] for r in _stored(db)] == [f"M{i}" for i in range(10)]


def test_trimmed_and_case_variant_cells_are_the_same_record(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, csv_text([trend_row()]))
    variant = trend_row(
        megatrend=" AI ",
        macrotrend="Edge AI  ",
        technology_readiness_level="pilot",
        impact_strength="HIGH",
        steepl="Technological",
    )
    assert _counts(load(db, tmp_path, csv_text([variant]))) == (1, 0, 1, 0)
    stored = _stored(db)
    assert len(stored) == 1
    assert _records(stored)[0] == validate_trend(trend_row())


def test_a_different_megatrend_is_a_different_record(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, csv_text([trend_row()]))
    assert _counts(load(db, tmp_path, csv_text([trend_row(megatrend="AI 2")]))) == (1, 1, 0, 0)
    assert [r["megatrend"] for r in _stored(db)] == ["AI", "AI 2"]


def test_a_file_with_an_invalid_row_imports_nothing(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, csv_text([trend_row()]))
    before = _stored(db)
    rows = [trend_row(megatrend=f"M{i}") for i in range(20)]
    rows.append(trend_row(total_count_of_patents="-1"))
    report = load(db, tmp_path, csv_text(rows), batch_size=7)
    assert _counts(report) == (21, 0, 0, 1)
    assert report.ok is False
    assert [(e.line, e.column) for e in report.errors] == [(22, "Total Count of Patents")]
    assert _stored(db) == before


def test_an_import_tells_the_commit_hook_only_when_it_created_rows(
    backend: Settings, db: Database, tmp_path: Path
) -> None:
    tables: list[frozenset[str]] = []
    hooked = Database(backend.database_url, on_commit=tables.append)
    try:
        bad = csv_text([trend_row(megatrend="M1"), trend_row(steepl="nope")])
        for content, options in [
            (SAMPLE, {"dry_run": True}),  # rolled back
            (bad, {}),  # invalid rows: rolled back
            (SAMPLE, {}),  # created rows
            (SAMPLE, {}),  # all duplicates: nothing written
        ]:
            load(hooked, tmp_path, content, **options)
    finally:
        hooked.dispose()
    assert tables == [frozenset({"trend"})]


def test_dry_run_counts_what_would_happen_and_writes_nothing(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, csv_text([trend_row()]))
    before = _stored(db)
    rows = [
        trend_row(),
        trend_row(megatrend="New 1"),
        trend_row(megatrend="New 2"),
        trend_row(megatrend="New 1"),
        trend_row(technology_readiness_level="Someday"),
    ]
    report = load(db, tmp_path, csv_text(rows), dry_run=True, batch_size=2)
    assert report.dry_run is True
    assert _counts(report) == (5, 2, 2, 1)
    assert [e.line for e in report.errors] == [6]
    assert _stored(db) == before


def test_dry_run_of_a_valid_file_writes_nothing(db: Database, tmp_path: Path) -> None:
    report = load(db, tmp_path, SAMPLE, dry_run=True, batch_size=7)
    assert _counts(report) == (44, 44, 0, 0)
    assert _count(db) == 0


def test_max_errors_limits_the_listed_errors_not_the_count(db: Database, tmp_path: Path) -> None:
    rows = [trend_row(megatrend="") for _ in range(5)]
    report = load(db, tmp_path, csv_text(rows), max_errors=2)
    assert report.invalid == 5
    assert [e.line for e in report.errors] == [2, 3]


def _rest_is_refused(db: Database, tmp_path: Path, rest: bytes) -> bool:
    try:
        return not load(db, tmp_path, rest, dry_run=True).ok
    except CsvFormatError:
        return True


def test_the_rest_of_a_file_cut_anywhere_is_never_imported_as_a_file_of_its_own(
    db: Database, tmp_path: Path
) -> None:
    whole = SAMPLE.read_bytes()
    lines = [i + 1 for i, byte in enumerate(whole) if byte == ord("\n")][:-1]
    for cut in sorted({*lines, *range(1, len(whole) - 1, 53)}):
        assert _rest_is_refused(db, tmp_path, whole[cut:]), whole[cut:].split(b"\n", 1)[0]
    assert _count(db) == 0


def test_a_first_line_of_ten_unknown_names_is_still_read_by_position(
    db: Database, tmp_path: Path
) -> None:
    header = "Mega;Macro;Gaps;Pubs;Pats;Readiness;Effect;Category;Sectors;Uses\r\n"
    report = load(db, tmp_path, header + "AI;Edge AI;Gaps;1;2;Pilot;High;T;Retail;Use\r\n")
    assert (report.by_position, report.created) == (True, 1)


def test_large_file_is_imported_in_bounded_memory(
    db: Database, tmp_path: Path, large_file: Path
) -> None:
    tracemalloc.start()
    try:
        report = load(db, tmp_path, large_file, batch_size=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _counts(report) == (LARGE_ROWS, LARGE_ROWS, 0, 0)
    assert _count(db) == LARGE_ROWS
    # Holding the rows, or even the file's text, would take more than the file's size.
    assert peak < large_file.stat().st_size
    again = load(db, tmp_path, large_file, batch_size=5000)
    assert _counts(again) == (LARGE_ROWS, 0, LARGE_ROWS, 0)
    assert _count(db) == LARGE_ROWS


def test_export_csv_uses_the_import_format(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, SAMPLE)
    out = tmp_path / "export" / "trends.csv"
    with db.session() as session:
        assert export_trends(session, out, "csv") == 44
    exported = out.read_bytes()
    assert exported.splitlines()[0] == SAMPLE.read_bytes().splitlines()[0]
    assert exported.count(b"\r\n") == 45
    assert exported.endswith(b"\r\n")
    assert list(tmp_path.glob("export/.*")) == []


def test_export_then_import_is_a_no_op(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, SAMPLE)
    before = _stored(db)
    out = tmp_path / "trends.csv"
    with db.session() as session:
        export_trends(session, out)
    assert _counts(load(db, tmp_path, out)) == (44, 0, 44, 0)
    assert _stored(db) == before


def test_export_then_import_into_an_empty_table_restores_every_record(
    db: Database, tmp_path: Path
) -> None:
    rows = [trend_row(megatrend=f"M{i}", relevant_industries=None) for i in range(3)]
    rows.append(trend_row(challenges_and_research_gaps='Multi\nline; "quoted"'))
    load(db, tmp_path, csv_text(rows))
    load(db, tmp_path, SAMPLE)
    before = _stored(db)
    out = tmp_path / "trends.csv"
    with db.session() as session:
        export_trends(session, out)
    _empty(db)
    assert load(db, tmp_path, out).created == len(before)
    after = _stored(db)
    assert _records(after) == _records(before)
    assert [r["fingerprint"] for r in after] == [r["fingerprint"] for r in before]


def test_formula_cells_are_neutralised_on_export_and_restored_on_import(
    db: Database, tmp_path: Path
) -> None:
    # A file in the exported form, so that "'=already quoted" is stored with its quote.
    cells = [escape_cell(v) for v in FORMULAS]
    rows = [trend_row(megatrend=c, real_world_application_and_use_cases=c) for c in cells]
    load(db, tmp_path, csv_text(rows))
    assert [r["megatrend"] for r in _stored(db)] == FORMULAS
    out = tmp_path / "trends.csv"
    with db.session() as session:
        export_trends(session, out)
    with out.open(encoding="utf-8", newline="") as f:
        exported = list(csv.reader(f, delimiter=";"))[1:]
    assert [(c[0], c[9]) for c in exported] == [("'" + v, "'" + v) for v in FORMULAS]
    assert [c[1] for c in exported] == ["Edge AI"] * len(FORMULAS)
    _empty(db)
    assert load(db, tmp_path, out).created == len(FORMULAS)
    stored = _stored(db)
    assert [r["megatrend"] for r in stored] == FORMULAS
    assert [r["real_world_application_and_use_cases"] for r in stored] == FORMULAS


def test_export_json_lists_every_trend(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, csv_text([trend_row(), trend_row(megatrend="=SUM(A1)", steepl="E")]))
    stored = _stored(db)
    out = tmp_path / "trends.json"
    with db.session() as session:
        assert export_trends(session, out, "json") == 2
    records = json.loads(out.read_text(encoding="utf-8"))
    assert [r["id"] for r in records] == [r["id"] for r in stored]
    assert _records(records) == _records(stored)
    assert records[1]["steepl"] == "E"
    assert records[1]["megatrend"] == "=SUM(A1)"
    assert records[0]["uploaded_at"] == stored[0]["uploaded_at"].isoformat()


def test_export_of_an_empty_table_writes_only_the_header(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "trends.csv"
    with db.session() as session:
        assert export_trends(session, out) == 0
        assert export_trends(session, tmp_path / "trends.json", "json") == 0
    assert out.read_text(encoding="utf-8").splitlines() == [HEADER_LINE]
    assert json.loads((tmp_path / "trends.json").read_text(encoding="utf-8")) == []


def test_export_refuses_an_unknown_format_and_writes_nothing(db: Database, tmp_path: Path) -> None:
    with db.session() as session, pytest.raises(ValueError, match="unknown export format 'xml'"):
        export_trends(session, tmp_path / "trends.xml", "xml")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_exported_file_gets_ordinary_permissions(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "trends.csv"
    with db.session() as session:
        export_trends(session, out)
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["trends.csv"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_writer_stopped_in_the_middle_of_a_copy_leaves_a_connection_that_rolls_back(
    backend: Settings, db: Database
) -> None:
    # A job timeout's signal can land while the rows of a batch are being copied, where even
    # psycopg's own ending of the COPY is cut short: the server then waits for more rows.
    if not backend.database_url.startswith("postgresql"):
        pytest.skip("SQLite's writer inserts; it has no COPY to stop")

    def stuck(*_: object) -> None:
        raise TimeoutError("abort() did not return within 10 s")

    with db.session() as session:
        writer = ingest._PostgresWriter(session)
        writer.begin()
        pgconn = writer.conn.pgconn
        pgconn.send_query(b"COPY trend_import (megatrend) FROM STDIN")
        assert pgconn.get_result().status == pq.ExecStatus.COPY_IN
        before = signal.signal(signal.SIGALRM, stuck)
        signal.setitimer(signal.ITIMER_REAL, 10)
        try:
            writer.abort()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before)
        session.rollback()
        assert session.execute(sa.select(sa.func.count()).select_from(TREND_TABLE)).scalar() == 0


class _Stopped(Exception):
    """What a job timeout's signal raises."""


def test_an_import_stopped_while_it_prepares_raises_that_and_leaves_a_session_that_works(
    backend: Settings, db: Database
) -> None:
    if not backend.database_url.startswith("postgresql"):
        pytest.skip(
            "SQLite runs in this process: a signal's exception waits for its call to return"
        )

    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    landed: list[int] = []

    def stop(*_: object) -> None:
        landed.append(locker.execute(waiting).scalar_one())
        raise _Stopped

    # Another transaction's lock holds the import in its first statement, where the signal lands.
    with db.engine.connect() as locker, db.session() as session:
        locker.execute(sa.text("LOCK TABLE trend IN ACCESS EXCLUSIVE MODE"))
        before = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        try:
            with pytest.raises(_Stopped):
                ingest.import_trends(session, SAMPLE)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before)
        locker.rollback()
        assert landed == [1]  # while the import waited for the lock
        assert session.execute(sa.select(sa.func.count()).select_from(TREND_TABLE)).scalar() == 0
