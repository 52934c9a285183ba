"""The `trends` command: migrate, import (with dry run and error reporting) and export."""

import ast
import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import (
    PASSWORD,
    SAMPLE,
    TEST_DATABASE_URL,
    TRENDS,
    _drop_postgres_database,
    _recreate_postgres_database,
    csv_text,
    http_client,
    load,
    login,
    make_user,
    post,
    settings_env,
    trend_row,
    with_settings,
    work_in_a_worker_process,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from trends_gql.accounts import sessions, users
from trends_gql.cli import main
from trends_gql.core.db import Database, utcnow
from trends_gql.core.models import TREND_TABLE, ExportFormat
from trends_gql.core.revisions import shipped_revisions
from trends_gql.core.settings import Settings, get_settings
from trends_gql.exports import runs as export_runs
from trends_gql.imports import intake


def _count(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(TREND_TABLE)).scalar_one()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DATABASE_URL of a new SQLite file, seen by freshly read settings."""
    url = f"sqlite:///{tmp_path / 'cli' / 'trends.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.fixture
def cli_db(database_url: str, capsys: pytest.CaptureFixture[str]) -> Iterator[Database]:
    """The migrated database the command uses."""
    assert main(["migrate"]) == 0
    capsys.readouterr()
    database = Database(database_url)
    yield database
    database.dispose()


def test_migrate_creates_the_trend_table(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == "database migrated to head\n"
    database = Database(database_url)
    try:
        assert sa.inspect(database.engine).has_table("trend")
        assert _count(database) == 0
    finally:
        database.dispose()


def test_import_prints_the_counts_and_stores_the_rows(
    cli_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert f"{SAMPLE}: 44 rows (UTF-8, separator ';'): " in out
    assert "44 created, 0 duplicates skipped, 0 invalid" in out
    assert _count(cli_db) == 44
    assert main(["import", str(SAMPLE)]) == 0
    again = capsys.readouterr().out
    assert "44 rows: 0 created, 44 duplicates skipped, 0 invalid" in again
    assert "the same file was imported by run" in again
    assert _count(cli_db) == 44


def test_import_dry_run_prints_what_would_happen_and_writes_nothing(
    cli_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(SAMPLE), "--dry-run"]) == 0
    assert "44 would create, 0 duplicates skipped, 0 invalid" in capsys.readouterr().out
    assert _count(cli_db) == 0


def test_import_of_an_invalid_file_fails_and_prints_the_first_errors(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    rows = [trend_row(), trend_row(megatrend=""), trend_row(total_count_of_patents="-4")]
    path.write_text(csv_text(rows), encoding="utf-8", newline="")
    assert main(["import", str(path)]) == 1
    captured = capsys.readouterr()
    assert "0 created, 0 duplicates skipped, 2 invalid" in captured.out
    assert "line 3, Megatrend: is required" in captured.err
    assert "line 4, Total Count of Patents: must not be negative (got -4)" in captured.err
    assert "nothing was imported" in captured.err
    assert _count(cli_db) == 0


def test_show_errors_limits_the_printed_errors(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(csv_text([trend_row(megatrend="")] * 3), encoding="utf-8", newline="")
    assert main(["import", str(path), "--show-errors", "1"]) == 1
    err = capsys.readouterr().err
    assert "line 2, Megatrend" in err
    assert "line 3" not in err
    assert "... 3 invalid rows in all" in err


def test_dry_run_of_an_invalid_file_fails_too(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(csv_text([trend_row(steepl="Q")]), encoding="utf-8", newline="")
    assert main(["import", str(path), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "0 would create, 0 duplicates skipped, 1 invalid" in captured.out
    assert "line 2, STEEPL: unknown value 'Q'" in captured.err


def test_import_of_an_unreadable_file_fails_with_the_reason(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert main(["import", str(path)]) == 1
    assert capsys.readouterr().err == f"error: {path}: the file is empty\n"


def test_import_of_a_missing_file_exits_2(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.csv"
    assert main(["import", str(path)]) == 2
    assert capsys.readouterr().err == f"error: no such file: {path}\n"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_writes_every_trend(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    assert main(["import", str(SAMPLE)]) == 0
    out = tmp_path / f"trends.{fmt}"
    assert main(["export", str(out), "--format", fmt]) == 0
    assert capsys.readouterr().out.endswith(f"{out}: 44 trends written ({fmt})\n")
    if fmt == "json":
        assert len(json.loads(out.read_text(encoding="utf-8"))) == 44
    else:
        assert main(["import", str(out)]) == 0
        assert "0 created, 44 duplicates skipped" in capsys.readouterr().out


def test_export_defaults_to_csv(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trends.csv"
    assert main(["export", str(out)]) == 0
    assert capsys.readouterr().out == f"{out}: 0 trends written (csv)\n"
    assert out.read_text(encoding="utf-8").startswith("Megatrend;Macrotrend;")


def test_invalid_configuration_exits_2(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMPORT_BATCH_SIZE", "0")
    assert main(["import", str(SAMPLE)]) == 2
    assert "configuration error: IMPORT_BATCH_SIZE:" in capsys.readouterr().err


def test_import_of_a_directory_exits_2_with_the_reason(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: cannot read {tmp_path}: Is a directory\n"


def test_export_to_an_unwritable_place_exits_2(
    cli_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["export", str(blocker / "trends.csv")]) == 2
    assert "error: cannot write" in capsys.readouterr().err


def _open_session(db: Database, email: str, at: datetime, agent: str) -> str:
    def open_one(session: Session) -> str:
        user_id = users.require_user(session, email).id
        token, _ = sessions.open_session(
            session, user_id, now=at, max_age=3600, client_address="10.0.0.7", user_agent=agent
        )
        return token

    return db.call_sync(open_one)


def test_list_sessions_shows_the_live_sessions_of_a_user(
    cli_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_db.call_sync(lambda s: users.create_user(s, "ann@example.org", PASSWORD))
    now = utcnow().replace(microsecond=0)
    older = _open_session(cli_db, "ann@example.org", now - timedelta(minutes=5), "Firefox")
    newer = _open_session(cli_db, "ann@example.org", now, "Safari")
    _open_session(cli_db, "ann@example.org", now - timedelta(hours=2), "Expired")
    assert main(["list-sessions", "ANN@example.org"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "id\tcreated\tlast seen\texpires\taddress\tuser agent"
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == [sessions.hash_token(t).hex()[:8] for t in (newer, older)]
    assert rows[0][1:] == [
        now.isoformat(),
        now.isoformat(),
        (now + timedelta(hours=1)).isoformat(),
        "10.0.0.7",
        "Safari",
    ]
    assert newer not in "\n".join(lines)  # the id itself is never shown


def test_end_sessions_signs_a_user_out_everywhere(
    cli_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    for email in ("ann@example.org", "bob@example.org"):
        cli_db.call_sync(lambda s, e=email: users.create_user(s, e, PASSWORD))
    for agent in ("Firefox", "Safari"):
        _open_session(cli_db, "ann@example.org", utcnow(), agent)
    _open_session(cli_db, "bob@example.org", utcnow(), "Safari")
    assert main(["end-sessions", "ann@example.org"]) == 0
    assert capsys.readouterr().out == "2 sessions of ann@example.org ended\n"
    assert main(["list-sessions", "ann@example.org"]) == 0
    assert capsys.readouterr().out == "id\tcreated\tlast seen\texpires\taddress\tuser agent\n"
    assert main(["end-sessions", "bob@example.org"]) == 0
    assert capsys.readouterr().out == "1 session of bob@example.org ended\n"


@pytest.mark.parametrize("command", ["list-sessions", "end-sessions"])
def test_session_commands_of_an_unknown_user_fail_with_a_message(
    cli_db: Database, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main([command, "nobody@example.org"]) == 1
    assert capsys.readouterr().err == "error: no user with email nobody@example.org\n"


def test_samesite_none_without_secure_cookies_stops_at_start(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SESSION_COOKIE_SAMESITE", "None")
    assert main(["list-users"]) == 2
    err = capsys.readouterr().err
    assert "SESSION_COOKIE_SAMESITE=none needs secure cookies" in err
    assert "SESSION_COOKIE_SECURE=1" in err


def test_the_server_process_freezes_what_its_start_up_built(sqlite_settings: Settings) -> None:
    script = (
        "import gc; from trends_gql.cli import server_app; frozen = gc.get_freeze_count(); "
        "server_app(); print(gc.get_freeze_count() > frozen)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=settings_env(sqlite_settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "True", result.stderr


# The mistakes operators make most: each ends with one line that says what to do, exit 1.
def _main_with(monkeypatch: pytest.MonkeyPatch, url: str, *argv: str) -> int:
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        return main(list(argv))
    finally:
        get_settings.cache_clear()


def _pg_url(database: str) -> str:
    return make_url(TEST_DATABASE_URL).set(database=database).render_as_string(hide_password=False)


COMMANDS = [["list-users"], ["import", str(SAMPLE)], ["backup"], ["export", "out.csv"]]
HEAD = shipped_revisions().head  # the newest migration this release ships


@pytest.mark.parametrize("argv", [*COMMANDS, ["migrate"]], ids=lambda a: a[0])
def test_a_postgresql_that_does_not_answer_is_one_line_and_exit_1(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _main_with(monkeypatch, "postgresql://postgres@127.0.0.1:1/trends", *argv) == 1
    assert capsys.readouterr().err == (
        "error: PostgreSQL at 127.0.0.1:1 does not answer: start it or set DATABASE_URL\n"
    )


def test_a_database_that_does_not_exist_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"trends_missing_{uuid.uuid4().hex[:8]}"
    url = make_url(TEST_DATABASE_URL)
    assert _main_with(monkeypatch, _pg_url(name), "list-users") == 1
    assert capsys.readouterr().err == (
        f'error: PostgreSQL at {url.host}:{url.port or 5432} has no database "{name}": '
        f"create it (createdb {name}) and run `trends migrate`, or set DATABASE_URL\n"
    )


@pytest.fixture
def unmigrated(backend: Settings, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, never migrated, of the backend's kind."""
    if backend.database_url.startswith("sqlite"):
        path = tmp_path / "empty.db"
        path.touch()
        yield f"sqlite:///{path}"
        return
    url = _pg_url(f"{make_url(TEST_DATABASE_URL).database}_unmigrated")
    _recreate_postgres_database(url)
    try:
        yield url
    finally:
        _drop_postgres_database(url)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_database_not_migrated_is_one_line_and_exit_1(
    unmigrated: str,
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _main_with(monkeypatch, unmigrated, *argv) == 1
    shown = make_url(unmigrated).render_as_string(hide_password=True)
    assert capsys.readouterr().err == (
        f"error: the database {shown} is not migrated, head {HEAD}: run `trends migrate`\n"
    )


def test_a_database_behind_says_which_revision_it_is_at(
    unmigrated: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main_with(monkeypatch, unmigrated, "migrate", "0004") == 0  # before user_session
    capsys.readouterr()
    database = Database(unmigrated)
    database.call_sync(lambda s: users.create_user(s, "ann@example.org", PASSWORD))
    database.dispose()
    assert _main_with(monkeypatch, unmigrated, "list-sessions", "ann@example.org") == 1
    shown = make_url(unmigrated).render_as_string(hide_password=True)
    assert capsys.readouterr().err == (
        f"error: the database {shown} is behind: 0004, head {HEAD}: run `trends migrate`\n"
    )


@pytest.mark.parametrize("url", ["mysql://trends@localhost/trends", "trends.db"])
def test_an_unsupported_database_url_is_one_line_and_exit_2(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main_with(monkeypatch, url, "list-users") == 2
    what = "unsupported database 'mysql'" if "://" in url else "not a database URL"
    assert capsys.readouterr().err == (
        f"configuration error: DATABASE_URL: {what}: "
        "use sqlite:///PATH or postgresql://USER@HOST/DATABASE\n"
    )


def test_verbose_shows_the_traceback_before_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _main_with(monkeypatch, "postgresql://postgres@127.0.0.1:1/trends", "-v", "list-users") == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith(
        "error: PostgreSQL at 127.0.0.1:1 does not answer: start it or set DATABASE_URL\n"
    )


def _trends(
    *argv: str, cwd: Path, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRENDS, *argv], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_a_real_command_prints_one_line_not_a_traceback(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    env = {**settings_env(sqlite_settings), "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"}
    result = _trends("list-users", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "error: PostgreSQL at 127.0.0.1:1 does not answer: start it or set DATABASE_URL\n"
    )


def test_the_default_sqlite_file_is_not_made_up_in_another_folder(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    env = {k: v for k, v in settings_env(sqlite_settings).items() if k != "DATABASE_URL"}
    result = _trends("import", str(SAMPLE), cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: no database at {tmp_path / 'var' / 'trends.db'}: "
        "run `trends migrate` (or set DATABASE_URL)\n"
    )
    assert not (tmp_path / "var" / "trends.db").exists()
    assert _trends("migrate", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "var" / "trends.db").exists()


# Logs: our INFO lines by default in every process, LOG_LEVEL everywhere, -v for DEBUG.
def test_the_cli_logs_info_by_default_and_obeys_log_level(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(sqlite_settings)
    email = f"{uuid.uuid4().hex[:8]}@example.org"
    made = _trends("create-user", email, "--password-stdin", cwd=tmp_path, env=env, stdin=PASSWORD)
    assert made.returncode == 0, made.stderr
    assert f"INFO trends_gql.accounts.users: user {email} created" in made.stderr
    quiet = {**env, "LOG_LEVEL": "warning"}
    result = _trends(
        "set-password", email, "--password-stdin", cwd=tmp_path, env=quiet, stdin=PASSWORD
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    result = _trends(
        "-v", "set-password", email, "--password-stdin", cwd=tmp_path, env=quiet, stdin=PASSWORD
    )
    assert f"INFO trends_gql.accounts.users: password of {email} changed" in result.stderr


def test_an_unknown_log_level_is_a_configuration_error(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "loud")
    assert main(["list-users"]) == 2
    assert capsys.readouterr().err.startswith(
        "configuration error: LOG_LEVEL: unknown level 'loud'"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What a process logs, the same on either backend: the service's writes are tested on both.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_web_process_logs_each_staff_write_with_the_email(
    db: Database, backend: Settings, tmp_path: Path
) -> None:
    load(db, tmp_path, csv_text([trend_row()]))
    make_user(db, "staff@example.org", staff=True)
    port = _free_port()
    process = subprocess.Popen(
        [TRENDS, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=settings_env(backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with http_client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.HTTPError:
                    assert process.poll() is None
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            login(client, "staff@example.org")
            (node,) = post(client, "{ trends { nodes { id } } }")["data"]["trends"]["nodes"]
            body = post(client, "mutation($id: ID!) { deleteTrend(id: $id) }", id=node["id"])
            assert "errors" not in body, body
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "deleted by staff@example.org" in output
    assert process.returncode == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # as above: a process's log
def test_the_worker_logs_each_run_with_its_outcome_and_counts(
    jobs_settings: Settings, db: Database
) -> None:
    settings = with_settings(jobs_settings, import_settle_seconds=0)
    media = settings.media_dir
    media.mkdir(parents=True)
    (media / "good.csv").write_bytes(SAMPLE.read_bytes())
    bad = [trend_row(), trend_row(megatrend=""), trend_row(total_count_of_patents="-4")]
    (media / "bad.csv").write_text(csv_text(bad), encoding="utf-8", newline="")
    good_run, bad_run = sorted(
        intake.scan(db, settings), key=lambda run: run.file_name != "good.csv"
    )
    export = export_runs.request_export(db, settings, ExportFormat.CSV, None, "staff@example.org")
    err = work_in_a_worker_process(settings).stderr
    assert re.search(
        rf"INFO trends_gql\.jobs\.imports: import run {good_run.id} succeeded: "
        r"44 created, 0 skipped, 0 invalid in \d+\.\d\d s\n",
        err,
    ), err
    assert re.search(
        rf"WARNING trends_gql\.jobs\.imports: import run {bad_run.id} failed: "
        r"0 created, 0 skipped, 2 invalid in \d+\.\d\d s: ",
        err,
    ), err
    assert re.search(
        rf"INFO trends_gql\.jobs\.exports: export run {export.id} succeeded: "
        r"\d+ trends written in \d+\.\d\d s\n",
        err,
    ), err


def test_the_cli_and_the_jobs_start_without_importing_strawberry_or_graphql_core() -> None:
    # Each `trends` process would spend a third of a second importing what only the web needs.
    probe = (
        "import sys, trends_gql.cli, trends_gql.jobs.imports, trends_gql.jobs.exports; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'strawberry', 'graphql'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def _modules_after(code: str) -> list[str]:
    """The database driver's, the ORM's and our core's modules (settings aside) that a fresh
    process has imported after running `code`."""
    probe = (
        f"import sys; {code}; print(sorted(m for m in sys.modules if m.startswith(("
        "'psycopg', 'sqlalchemy.orm', 'trends_gql.core.')) and m != 'trends_gql.core.settings'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return list(ast.literal_eval(result.stdout))


def test_help_and_the_supervisor_of_up_run_without_the_database_layer() -> None:
    # `trends --help` took 1.5 s of CPU, and the supervisor of `trends up` carried the models it
    # never uses; each command imports what it runs.
    assert _modules_after("import trends_gql.cli; assert 'sqlalchemy' not in sys.modules") == []
    up = "from trends_gql.cli import get_settings; get_settings(); import trends_gql.processes"
    assert _modules_after(up) == []
