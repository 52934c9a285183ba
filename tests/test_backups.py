"""Backups: the job on a real worker, pruning, and `trends restore` into an empty database."""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from conftest import SAMPLE, empty_tables, load, other_database, trend_row, work

from trends_gql.cli import main
from trends_gql.core import queue
from trends_gql.core.db import Database
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.settings import Settings, get_settings
from trends_gql.exports import backups
from trends_gql.exports.backups import BackupError, create_backup, list_backups, prune_backups
from trends_gql.jobs.backups import backup_database
from trends_gql.trends import curation

ACTOR = "staff@example.org"


def _rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        stmt = sa.select(TREND_TABLE).order_by(TREND_TABLE.c.id)
        return [dict(row) for row in conn.execute(stmt).mappings()]


@pytest.fixture
def filled(db: Database, tmp_path: Path) -> Database:
    """The sample, plus one edited trend (updated_at != uploaded_at) and one with empty fields."""
    load(db, tmp_path, SAMPLE)
    with db.session() as session:
        pk = session.execute(sa.select(sa.func.min(TREND_TABLE.c.id))).scalar_one()
        curation.update_trend(session, pk, {"total_count_of_patents": 7}, ACTOR)
        curation.delete_trend(session, pk + 1, ACTOR)  # leaves a gap in the ids
    raw = trend_row(
        macrotrend="Sparse",
        total_count_of_publications=None,
        total_count_of_patents=None,
        technology_readiness_level=None,
        relevant_industries=None,
        real_world_application_and_use_cases=None,
    )
    db.call_sync(curation.create_trend, raw, ACTOR)
    return db


@pytest.fixture(scope="module")
def restore_target(
    backend: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A second database of the backend's kind, migrated once for the module."""
    with other_database(backend, tmp_path_factory.mktemp("restore"), "restore") as settings:
        database = Database(settings.database_url)
        yield database
        database.dispose()


@pytest.fixture
def empty(restore_target: Database) -> Database:
    """The second database, every table emptied before the test."""
    empty_tables(restore_target)
    return restore_target


def _restore_cli(db: Database, path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("DATABASE_URL", db.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        return main(["restore", str(path)])
    finally:
        get_settings.cache_clear()


def test_the_job_backs_up_on_a_worker_and_restore_gives_identical_rows(
    filled: Database,
    empty: Database,
    job_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = _rows(filled)
    assert len(original) == 44
    assert any(r["updated_at"] != r["uploaded_at"] for r in original)
    queue.enqueue(job_env, backup_database)
    work(job_env)
    (path,) = list_backups(job_env)
    assert backups.NAME.fullmatch(path.name)

    assert _restore_cli(empty, path, monkeypatch) == 0
    assert capsys.readouterr().out == f"{path}: 44 trends restored\n"
    assert _rows(empty) == original

    # The ids were restored as they were: new ones still come after them.
    new = empty.call_sync(curation.create_trend, trend_row(macrotrend="After the restore"), ACTOR)
    assert new > max(r["id"] for r in original)


def test_the_backup_file_is_one_json_document_with_a_header(
    filled: Database, job_env: Settings
) -> None:
    before = datetime.now(UTC)
    path = filled.call_sync(create_backup, job_env)
    document = orjson.loads(path.read_bytes())
    assert set(document) == {"format", "version", "created_at", "count", "state", "trends"}
    assert (document["format"], document["version"], document["count"]) == ("trends-backup", 1, 44)
    assert datetime.fromisoformat(document["created_at"]) >= before
    assert backups.NAME.fullmatch(path.name)
    rows = _rows(filled)
    assert [t["id"] for t in document["trends"]] == [r["id"] for r in rows]
    first = document["trends"][0]
    assert first["fingerprint"] == rows[0]["fingerprint"].hex()
    assert datetime.fromisoformat(first["updated_at"]) == rows[0]["updated_at"]
    assert not list(job_env.backup_dir.glob(".*"))  # no temporary file left


def test_an_empty_database_backs_up_and_restores(
    db: Database, empty: Database, job_env: Settings
) -> None:
    path = db.call_sync(create_backup, job_env)
    assert orjson.loads(path.read_bytes())["count"] == 0
    assert empty.call_sync(backups.restore_backup, path) == 0
    assert _rows(empty) == []


def test_restore_refuses_a_database_that_holds_trends(
    filled: Database,
    job_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _rows(filled)
    path = filled.call_sync(create_backup, job_env)
    assert _restore_cli(filled, path, monkeypatch) == 1
    err = capsys.readouterr().err
    assert "the database already holds trends: restore needs an empty one" in err
    assert "nothing was restored" in err
    assert _rows(filled) == before


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _edit_record(line: bytes, **changes: Any) -> bytes:
    end = b",\n" if line.endswith(b",\n") else b"\n"
    return orjson.dumps({**orjson.loads(line.rstrip(b",\n")), **changes}) + end


def _duplicate_last(lines: list[bytes]) -> list[bytes]:
    """The last trend twice (under another id), with a header that counts both."""
    header, *records, end = lines
    last = records.pop()
    copy = _edit_record(last, id=10**6)
    return [header.replace(b'"count":44', b'"count":45'), *records, last[:-1] + b",\n", copy, end]


CORRUPTIONS = [
    pytest.param(lambda lines: [], "not a trends backup", id="empty"),
    pytest.param(lambda lines: [b"\x00\xff binary\n"], "not a trends backup", id="binary"),
    pytest.param(lambda lines: [b'[{"megatrend": "AI"}]\n'], "not a trends backup", id="export"),
    pytest.param(
        lambda lines: [lines[0].replace(b'"trends-backup"', b'"other"'), *lines[1:]],
        "another format",
        id="format",
    ),
    pytest.param(
        lambda lines: [lines[0].replace(b'"version":1', b'"version":9'), *lines[1:]],
        "unsupported backup version 9",
        id="version",
    ),
    pytest.param(lambda lines: lines[:-1], "truncated", id="truncated"),
    pytest.param(lambda lines: lines[:20], "truncated", id="cut-mid-way"),
    pytest.param(
        lambda lines: [*lines[:3], lines[3][:40] + b"\n", *lines[4:]], "line 4", id="broken-line"
    ),
    pytest.param(
        lambda lines: [lines[0], *lines[2:]], "43 trends, the header says 44", id="line-missing"
    ),
    pytest.param(
        lambda lines: [*lines[:5], _edit_record(lines[5], macrotrend="Changed"), *lines[6:]],
        "line 6: the fingerprint does not match",
        id="tampered",
    ),
    pytest.param(
        lambda lines: [*lines[:5], _edit_record(lines[5], megatrend=" "), *lines[6:]],
        "line 6: megatrend: is required",
        id="invalid-value",
    ),
    pytest.param(
        lambda lines: [*lines[:5], _edit_record(lines[5], extra=1), *lines[6:]],
        "line 6: unexpected fields",
        id="extra-field",
    ),
    pytest.param(
        lambda lines: [
            *lines[:5],
            _edit_record(lines[5], uploaded_at="2026-01-01T00:00:00"),
            *lines[6:],
        ],
        "line 6: naive datetime",
        id="naive-time",
    ),
    pytest.param(_duplicate_last, "duplicate trends or ids", id="duplicate"),
    pytest.param(lambda lines: [*lines, b"{}\n"], "data after the end", id="trailing-data"),
]


@pytest.mark.parametrize(("corrupt", "message"), CORRUPTIONS)
def test_restore_refuses_a_corrupt_file_and_writes_nothing(
    filled: Database,
    empty: Database,
    job_env: Settings,
    tmp_path: Path,
    corrupt: Any,
    message: str,
) -> None:
    good = filled.call_sync(create_backup, job_env)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"".join(corrupt(_lines(good))))
    with pytest.raises(BackupError, match=message):
        empty.call_sync(backups.restore_backup, bad)
    assert _rows(empty) == []
    assert empty.call_sync(backups.restore_backup, good) == 44


def test_restore_cli_reports_a_corrupt_or_missing_file(
    empty: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world"}\n')
    assert _restore_cli(empty, bad, monkeypatch) == 1
    err = capsys.readouterr().err
    assert f"error: cannot restore {bad}: not a trends backup" in err
    assert _restore_cli(empty, tmp_path / "missing.json", monkeypatch) == 2
    assert "error: no such file" in capsys.readouterr().err
    assert _rows(empty) == []


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("{}")


def test_pruning_keeps_the_newest_backups_and_no_other_file(job_env: Settings) -> None:
    folder = job_env.backup_dir
    backups_by_age = [
        "trends_backup_20251231T235959Z.json",
        "trends_backup_20260101T000000Z.json",
        "trends_backup_20260101T000000Z_1.json",
        "trends_backup_20260101T000000Z_2.json",
        "trends_backup_20260101T000000Z_10.json",
        "trends_backup_20260102T000000Z.json",
    ]
    others = [
        "trends_backup_manual.json",
        "trends_backup_20250101T000000Z.json.bak",
        "notes.txt",
        ".trends_backup_20240101T000000Z.json",
    ]
    _touch(folder, *reversed(backups_by_age), *others)
    (folder / "exports").mkdir()
    settings = job_env.model_copy(update={"backup_keep": 3})
    assert [p.name for p in list_backups(settings)] == backups_by_age
    deleted = prune_backups(settings)
    assert [p.name for p in deleted] == backups_by_age[:3]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*backups_by_age[3:], *others, "exports"]
    )
    assert prune_backups(settings) == []


def test_names_are_unique_within_one_second(
    db: Database, job_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = datetime(2026, 11, 27, 15, 30, 12, 345678, tzinfo=UTC)
    monkeypatch.setattr(backups, "utcnow", lambda: moment)
    paths = [db.call_sync(create_backup, job_env) for _ in range(3)]
    assert [p.name for p in paths] == [
        "trends_backup_20261127T153012Z.json",
        "trends_backup_20261127T153012Z_1.json",
        "trends_backup_20261127T153012Z_2.json",
    ]
    assert list_backups(job_env) == paths


def test_backup_command_prints_the_path_and_prunes(
    filled: Database,
    job_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _touch(job_env.backup_dir, "trends_backup_20200101T000000Z.json", "keep.txt")
    monkeypatch.setenv("BACKUP_KEEP", "1")
    get_settings.cache_clear()
    assert main(["backup"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == job_env.backup_dir
    assert list_backups(job_env) == [path]
    assert orjson.loads(path.read_bytes())["count"] == 44
    assert (job_env.backup_dir / "keep.txt").exists()


def _job_result(settings: Settings) -> Any:
    job = queue.enqueue(settings, backup_database)
    work(settings)
    return job.return_value()


def test_the_job_backs_up_only_when_the_data_changed_since_the_last_backup(
    filled: Database, job_env: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    first = _job_result(job_env)
    assert list_backups(job_env) == [Path(first["path"])]
    with caplog.at_level(logging.INFO, logger="trends_gql"):
        second = _job_result(job_env)
    assert second == {"path": None, "unchanged_since": first["path"], "pruned": []}
    assert list_backups(job_env) == [Path(first["path"])]
    assert f"no backup needed: the data has not changed since {first['path']}" in caplog.text
    with filled.session() as session:
        pk = session.execute(sa.select(sa.func.max(TREND_TABLE.c.id))).scalar_one()
        curation.update_trend(session, pk, {"total_count_of_patents": 8}, ACTOR)
    third = _job_result(job_env)
    assert list_backups(job_env) == [Path(first["path"]), Path(third["path"])]


@pytest.mark.parametrize("write", ["update", "delete", "create", "delete-and-create"])
def test_every_kind_of_write_changes_the_state_a_backup_records(
    filled: Database, job_env: Settings, write: str
) -> None:
    before = filled.call_sync(backups.data_state)
    with filled.session() as session:
        pk = session.execute(sa.select(sa.func.max(TREND_TABLE.c.id))).scalar_one()
        if write == "update":
            curation.update_trend(session, pk, {"total_count_of_patents": 9}, ACTOR)
        if write.startswith("delete"):
            curation.delete_trend(session, pk, ACTOR)  # the last id: SQLite may give it again
        if write.endswith("create"):
            curation.create_trend(session, trend_row(macrotrend="New"), ACTOR)
    assert filled.call_sync(backups.data_state) != before
