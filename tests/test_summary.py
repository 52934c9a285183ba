"""trend_summary stays exactly what a GROUP BY of trend gives, whatever writes and however."""

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import (
    SAMPLE,
    csv_text,
    generate_csv,
    load,
    other_database,
    summary_matches,
    trend_row,
)

from trends_gql.core.db import Database
from trends_gql.core.models import TREND_SUMMARY_TABLE, TREND_TABLE
from trends_gql.core.settings import Settings
from trends_gql.exports.backups import create_backup, restore_backup
from trends_gql.trends import curation

T = TREND_TABLE.c
ACTOR = "staff@example.org"
# Keys that differ only in case or in a missing TRL, which the summary keeps apart.
VARIANTS = [
    trend_row(megatrend="ai", challenges_and_research_gaps="lower case"),
    trend_row(technology_readiness_level=None, challenges_and_research_gaps="unrated"),
    trend_row(technology_readiness_level=None, challenges_and_research_gaps="unrated too"),
    trend_row(macrotrend="EDGE AI", steepl="L", challenges_and_research_gaps="upper case"),
]


def matches(db: Database) -> int:
    with db.session() as session:
        return summary_matches(session)


def keys(db: Database) -> int:
    with db.session() as session:
        return session.execute(sa.select(sa.func.count()).select_from(TREND_SUMMARY_TABLE)).one()[0]


def test_imports_add_their_rows_and_skipped_duplicates_nothing(
    db: Database, tmp_path: Path
) -> None:
    assert load(db, tmp_path, SAMPLE).created == 44
    assert matches(db) == 44
    assert load(db, tmp_path, csv_text(VARIANTS)).created == 4
    assert matches(db) == 48
    assert load(db, tmp_path, SAMPLE.read_bytes() + b"\r\n").skipped == 44
    assert matches(db) == 48


def test_a_rolled_back_import_leaves_the_summary_as_it_was(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, SAMPLE)
    before = keys(db)
    invalid = csv_text([*VARIANTS, trend_row(steepl="nonsense")])
    report = load(db, tmp_path, invalid)
    assert (report.invalid, report.created) == (1, 0)
    assert load(db, tmp_path, csv_text(VARIANTS), dry_run=True).created == 4
    assert matches(db) == 44
    assert keys(db) == before


def test_staff_edits_move_counts_between_keys_and_drop_emptied_keys(
    db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    pk = db.call_sync(curation.create_trend, trend_row(megatrend="Robotics"), ACTOR)
    assert matches(db) == 45
    db.call_sync(curation.update_trend, pk, {"technology_readiness_level": None}, ACTOR)
    db.call_sync(curation.update_trend, pk, {"megatrend": "ROBOTICS", "steepl": "E"}, ACTOR)
    db.call_sync(curation.update_trend, pk, {"total_count_of_patents": 99}, ACTOR)
    assert matches(db) == 45
    with db.session() as session:
        robotics = TREND_SUMMARY_TABLE.c.megatrend.in_(["Robotics", "ROBOTICS"])
        rows = session.execute(sa.select(TREND_SUMMARY_TABLE).where(robotics)).mappings().all()
    assert [(r["megatrend"], r["technology_readiness_level"], r["trend_count"]) for r in rows] == [
        ("ROBOTICS", None, 1)
    ]
    before = keys(db)
    db.call_sync(curation.delete_trend, pk, ACTOR)
    assert matches(db) == 44
    assert keys(db) == before - 1  # no key of count zero is left behind


def test_any_sql_write_keeps_it_exact_and_a_rollback_undoes_it(
    db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    with db.session() as session:
        session.execute(sa.update(TREND_TABLE).where(T.steepl == "S").values(steepl="T"))
        session.execute(sa.delete(TREND_TABLE).where(T.megatrend == "Mobility"))
        session.rollback()
    assert matches(db) == 44
    with db.session() as session:
        lowered = sa.update(TREND_TABLE).values(megatrend=sa.func.lower(T.megatrend))
        session.execute(lowered.where(T.id % 2 == 0))
        session.execute(sa.delete(TREND_TABLE).where(T.macrotrend.like("%AI%")))
        session.commit()
    with db.session() as session:
        remaining = session.execute(sa.select(sa.func.count()).select_from(TREND_TABLE)).one()[0]
    assert 0 < remaining < 44
    assert matches(db) == remaining


def test_a_write_rolled_back_to_a_savepoint_is_not_counted(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, SAMPLE)
    with db.session() as session:
        nested = session.begin_nested()
        session.execute(sa.delete(TREND_TABLE).where(T.megatrend == "AI"))
        nested.rollback()
        session.execute(sa.delete(TREND_TABLE).where(T.megatrend == "Mobility"))
        nested = session.begin_nested()
        session.execute(sa.delete(TREND_TABLE).where(T.megatrend == "Biotechnology"))
        nested.commit()
        session.commit()
    assert matches(db) == 44 - 5 - 6


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: one writer at a time
def test_writers_do_not_wait_for_each_other_before_their_commits(
    db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    pk = db.call_sync(curation.create_trend, trend_row(challenges_and_research_gaps="x"), ACTOR)
    columns = [c.name for c in TREND_TABLE.columns if c.name != "id"]
    copied = [sa.func.sha256(T[c]) if c == "fingerprint" else T[c] for c in columns]
    with db.session() as importing:
        # A write in flight (as a long import is) of the very key a staff edit then changes.
        copy = sa.insert(TREND_TABLE).from_select(columns, sa.select(*copied).where(T.id == pk))
        importing.execute(copy)
        with db.session() as session:
            session.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            curation.update_trend(session, pk, {"technology_readiness_level": None}, ACTOR)
        assert matches(db) == 45  # the edit is committed, the copy not yet
        importing.commit()
    assert matches(db) == 46


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite has no TRUNCATE
def test_truncate_empties_the_summary(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, SAMPLE)
    with db.session() as session:
        session.execute(sa.text("TRUNCATE trend"))
        session.commit()
    assert matches(db) == 0
    assert keys(db) == 0


def test_a_restore_fills_the_summary_of_the_restored_trends(
    backend: Settings, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    load(db, tmp_path, csv_text(VARIANTS))
    path = db.call_sync(create_backup, backend.model_copy(update={"backup_dir": tmp_path}))
    with other_database(backend, tmp_path, "summary_restore") as settings:
        target = Database(settings.database_url)
        try:
            assert target.call_sync(restore_backup, path) == 48
            assert matches(target) == 48
            assert keys(target) == keys(db)
        finally:
            target.dispose()


def test_concurrent_imports_of_the_same_keys_both_count(db: Database, tmp_path: Path) -> None:
    files = [
        generate_csv(300, tmp_path / f"part{seed}.csv", "--seed", str(seed)) for seed in (1, 2)
    ]
    reports = []

    def run(path: Path) -> None:
        reports.append(load(db, tmp_path, path, batch_size=7))

    threads = [threading.Thread(target=run, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(r.created for r in reports) == [300, 300]
    assert matches(db) == 600
