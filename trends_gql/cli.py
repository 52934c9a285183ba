"""The `trends` command line."""

from __future__ import annotations

import argparse
import gc
import getpass
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from trends_gql.core.settings import Settings, configure_logging, get_settings

# Each command imports what it uses: `trends --help`, and the supervisor of `trends up`, import
# neither the database's models nor the web.
if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.orm import Session
    from starlette.applications import Starlette

    from trends_gql.imports.ingest import ImportReport

log = logging.getLogger("trends_gql.cli")


def alembic_config(settings: Settings) -> Config:
    """Alembic configuration for the settings' database."""
    from trends_gql.core import revisions

    return revisions.alembic_config(settings.database_url)


def migrate(settings: Settings, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision` on the configured database."""
    from alembic import command

    command.upgrade(alembic_config(settings), revision)


def _print_report(report: ImportReport, shown: int, seconds: float) -> None:
    verb = "would create" if report.dry_run else "created"
    print(
        f"{report.file}: {report.total} rows ({report.encoding}, separator {report.delimiter!r}): "
        f"{report.created} {verb}, {report.skipped} duplicates skipped, {report.invalid} invalid"
    )
    print(f"took {seconds:.3f} s ({report.total / max(seconds, 1e-9):,.0f} rows/s)")
    for warning in report.warnings:
        print(f"warning: {warning}")
    for error in report.errors[:shown]:
        column = f", {error.column}" if error.column else ""
        print(f"  line {error.line}{column}: {error.message}", file=sys.stderr)
    if len(report.errors) > shown or report.invalid > len(report.errors):
        print(f"  ... {report.invalid} invalid rows in all", file=sys.stderr)
    if report.invalid and not report.dry_run:
        print("nothing was imported: fix the rows above and import the file again", file=sys.stderr)


def unreadable(path: object, exc: OSError) -> int:
    """Say in one line why a file given on the command line cannot be read; its exit status."""
    if isinstance(exc, FileNotFoundError):
        print(f"error: no such file: {path}", file=sys.stderr)
    else:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
    return 2


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from trends_gql.core.db import open_database
    from trends_gql.imports import intake

    started = time.perf_counter()
    try:
        with open_database(settings) as db:
            run, report = intake.import_now(db, settings, args.file, args.dry_run)
    except OSError as exc:
        return unreadable(args.file, exc)
    if report is None:
        print(f"error: {args.file}: {run.message}", file=sys.stderr)
        return 1
    if not report.encoding:  # not read at all: the same bytes were imported before
        counts = f"0 created, {report.skipped} duplicates skipped, 0 invalid"
        print(f"{args.file}: {report.total} rows: {counts} ({run.message})")
        return 0
    _print_report(report, args.show_errors, time.perf_counter() - started)
    return 0 if report.ok else 1


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from trends_gql.processes import PrivateRedisError, run_all

    try:
        return run_all(settings, args.host, args.port, force_private_redis=args.private_redis)
    except PrivateRedisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from trends_gql.core.db import open_database
    from trends_gql.core.queue import run_worker, wait_for_redis
    from trends_gql.exports.runs import sweep_export_runs
    from trends_gql.imports.runs import sweep_import_runs

    wait_for_redis(settings)
    with open_database(settings) as db:
        # Runs whose worker died (killed, machine lost) end now rather than at the next scan.
        for run in sweep_import_runs(db, settings):
            print(f"import run {run.id} ({run.file_name}) failed: {run.message}", file=sys.stderr)
        sweep_export_runs(db, settings)
    run_worker(settings, burst=args.burst, name=args.name)
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from trends_gql.core.queue import wait_for_redis
    from trends_gql.jobs.schedule import run_scheduler

    wait_for_redis(settings)
    run_scheduler(settings, burst=args.burst)
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from trends_gql.core.db import open_database
    from trends_gql.exports.files import export_trends

    try:
        with open_database(settings) as db:
            count = db.call_sync(export_trends, args.file, args.format)
    except OSError as exc:
        print(f"error: cannot write {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: {count} trends written ({args.format})")
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from trends_gql.core.db import open_database
    from trends_gql.exports import backups

    try:
        with open_database(settings) as db:
            path = db.call_sync(backups.create_backup, settings)
    except OSError as exc:
        folder = settings.backup_dir
        print(f"error: cannot write to {folder}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    backups.prune_backups(settings)
    print(path)
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from trends_gql.core.db import open_database
    from trends_gql.exports import backups

    try:
        with open_database(settings) as db:
            count = db.call_sync(backups.restore_backup, args.file)
    except OSError as exc:
        return unreadable(args.file, exc)
    except backups.BackupError as exc:
        print(f"error: cannot restore {args.file}: {exc}", file=sys.stderr)
        print("nothing was restored", file=sys.stderr)
        return 1
    print(f"{args.file}: {count} trends restored")
    return 0


def cmd_persist(args: argparse.Namespace, settings: Settings) -> int:
    from graphql import build_schema

    from trends_gql.core.db import open_database
    from trends_gql.core.errors import BadUserInput
    from trends_gql.schema import allowlist, schema

    try:
        with open_database(settings) as db:
            done = db.call_sync(allowlist.persist_file, args.file, build_schema(schema.as_str()))
    except OSError as exc:
        return unreadable(args.file, exc)
    except BadUserInput as exc:
        print(f"error: {args.file}: {exc} (nothing was registered)", file=sys.stderr)
        return 1
    count = len(done.operations)
    print(
        f"{args.file}: {count} operation{'' if count == 1 else 's'}, {done.added} newly registered"
    )
    for operation in done.operations:
        print(f"{operation.key}\t{operation.name or ''}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    from trends_gql.core.errors import BadUserInput

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise BadUserInput("the two passwords differ", field="password")
    return first


def _with_users(action: Callable[[Session, argparse.Namespace], str]) -> Callable[..., int]:
    """A subcommand that runs `action` in a session and prints what it returns."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        from trends_gql.core.db import open_database
        from trends_gql.core.errors import ServiceUnavailable, TrendsError

        try:
            with open_database(settings) as db, db.session() as session:
                print(action(session, args))
        except ServiceUnavailable:
            raise  # the database: said in main, as for every command
        except TrendsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0

    return run


def _create_user(session: Session, args: argparse.Namespace) -> str:
    from trends_gql.accounts import users
    from trends_gql.core.errors import BadUserInput

    email = users.normalise_email(args.email)
    if users.get_user_by_email(session, email):
        raise BadUserInput(f"a user with email {email} exists")
    users.check_password(email, password := _read_password(args))
    user = users.create_user(session, email, password, staff=args.staff, superuser=args.superuser)
    return f"created {user.email}" + (
        " (superuser)" if args.superuser else " (staff)" if args.staff else ""
    )


def _set_password(session: Session, args: argparse.Namespace) -> str:
    from trends_gql.accounts import users
    from trends_gql.core.errors import NotFound

    if users.get_user_by_email(session, args.email) is None:
        raise NotFound(f"no user with email {args.email.strip().lower()}")
    user = users.set_password(session, args.email, _read_password(args))
    return f"password of {user.email} changed: their sessions have ended"


def _set_active(active: bool) -> Callable[[Session, argparse.Namespace], str]:
    def action(session: Session, args: argparse.Namespace) -> str:
        from trends_gql.accounts import users

        user = users.set_active(session, args.email, active)
        return f"{user.email} {'activated' if active else 'deactivated: their sessions have ended'}"

    return action


def _list_users(session: Session, args: argparse.Namespace) -> str:
    from trends_gql.accounts import users

    rows = [
        f"{u.email}\t{'superuser' if u.is_superuser else 'staff' if u.is_staff else 'user'}"
        f"\t{'active' if u.is_active else 'inactive'}"
        f"\t{u.last_login.isoformat(timespec='seconds') if u.last_login else 'never'}"
        for u in users.list_users(session)
    ]
    return "\n".join(["email\trole\tstatus\tlast login", *rows])


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _list_sessions(session: Session, args: argparse.Namespace) -> str:
    from trends_gql.accounts import sessions, users
    from trends_gql.core.db import utcnow
    from trends_gql.core.models import stored_id

    user_id = stored_id(users.require_user(session, args.email))
    idle = get_settings().session_idle_seconds
    rows = [
        f"{row.token_hash.hex()[:8]}\t{_when(row.created_at)}\t{_when(row.last_seen_at)}"
        f"\t{_when(sessions.idle_end(row, idle))}\t{row.client_address or ''}"
        f"\t{row.user_agent or ''}"
        for row in sessions.list_user_sessions(session, user_id, now=utcnow(), idle_seconds=idle)
    ]
    return "\n".join(["id\tcreated\tlast seen\texpires\taddress\tuser agent", *rows])


def _end_sessions(session: Session, args: argparse.Namespace) -> str:
    from trends_gql.accounts import sessions, users
    from trends_gql.core.models import stored_id

    user = users.require_user(session, args.email)
    ended = sessions.end_user_sessions(session, stored_id(user))
    return f"{ended} session{'' if ended == 1 else 's'} of {user.email} ended"


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def server_app() -> Starlette:
    """The app of a server process (uvicorn's factory): built, then frozen for the collector."""
    from trends_gql.web.app import create_app

    app = create_app()
    # What start-up built lives as long as the process: out of the collector's way, so that
    # full collections under load walk only what requests allocate (shorter pauses). Here, in
    # the server process only: an app built elsewhere (a test's) must not freeze its host.
    gc.collect()
    gc.freeze()
    return app


def metrics_folder(workers: int) -> Path | None:
    """Prepare prometheus_client's multiprocess folder, inherited by the server processes.

    PROMETHEUS_MULTIPROC_DIR when set, emptied of an earlier run's figures; otherwise, for
    several workers, a new temporary folder. Returns the folder made here, to remove at exit.
    """
    import os
    import tempfile

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for old in Path(given).glob("*.db"):
            old.unlink()
        return None
    if workers < 2:
        return None  # one process counts in memory
    made = Path(tempfile.mkdtemp(prefix="trends-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(made)  # before any worker imports the library
    return made


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import shutil

    import uvicorn

    from trends_gql.web.transport import OneWriteHttpTools

    made = metrics_folder(args.workers)
    try:
        uvicorn.run(
            "trends_gql.cli:server_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            reload=args.reload,
            log_level=settings.log_level.lower(),
            # A subscription message is a small document: the body limit applies to it as well.
            ws_max_size=settings.max_body_bytes,
            http=OneWriteHttpTools,
        )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="trends", description="Trends GraphQL server")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("create-user", help="create a user (password prompted twice)")
    p.add_argument("email")
    p.add_argument("--staff", action="store_true", help="may change trend data")
    p.add_argument("--superuser", action="store_true", help="staff, and more later")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=_with_users(_create_user))

    p = sub.add_parser("set-password", help="change a user's password (ends their sessions)")
    p.add_argument("email")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=_with_users(_set_password))

    for name, active in (("activate-user", True), ("deactivate-user", False)):
        p = sub.add_parser(name, help=f"{name.split('-')[0]} a user's account")
        p.add_argument("email")
        p.set_defaults(func=_with_users(_set_active(active)))

    p = sub.add_parser("list-users", help="list users with their role and last login")
    p.set_defaults(func=_with_users(_list_users))

    p = sub.add_parser("list-sessions", help="list a user's live sessions")
    p.add_argument("email")
    p.set_defaults(func=_with_users(_list_sessions))

    p = sub.add_parser("end-sessions", help="end all of a user's sessions (sign them out)")
    p.add_argument("email")
    p.set_defaults(func=_with_users(_end_sessions))

    p = sub.add_parser("serve", help="serve the GraphQL API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("import", help="import a trends CSV file (all rows or none)")
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="validate and count, write nothing")
    p.add_argument("--show-errors", type=int, default=20, metavar="N", help="row errors to print")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("up", help="run web, worker and scheduler together (Procfile)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--private-redis", action="store_true", help="start a private Redis under var/ in any case"
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="run an RQ worker on the configured QUEUES")
    p.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    p.add_argument("--name", help="worker name (default: RQ's)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("scheduler", help="run rq-scheduler with the periodic jobs")
    p.add_argument("--burst", action="store_true", help="enqueue what is due once, then stop")
    p.set_defaults(func=cmd_scheduler)

    p = sub.add_parser("export", help="export all trends as CSV (re-importable) or JSON")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("backup", help="back all trends up to BACKUP_DIR now (prints the path)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="load a backup into an empty database (all or nothing)")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "persist", help="register the operations of a .graphql file or a JSON manifest"
    )
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_persist)
    return parser


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or while handling, in turn."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _migration_state(settings: Settings) -> str | None:
    """The database's migration state when this code cannot use it; None when it can."""
    import sqlalchemy as sa

    from trends_gql.core import revisions
    from trends_gql.core.db import create_db_engine

    engine = create_db_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            state, usable = revisions.describe(
                revisions.current_revision(conn), revisions.shipped_revisions()
            )
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return None if usable else state


def database_problem(exc: BaseException, settings: Settings) -> str | None:
    """What is wrong with the database and what to do, in one line, if `exc` says; else None."""
    import sqlite3

    import psycopg
    import psycopg.errors
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    shown = url.render_as_string(hide_password=True)
    for error in _causes(exc):
        text = str(error)
        if isinstance(error, psycopg.OperationalError) and "connection" in text:
            if f'database "{url.database}" does not exist' in text:
                return (
                    f'{where} has no database "{url.database}": create it '
                    f"(createdb {url.database}) and run `trends migrate`, or set DATABASE_URL"
                )
            if "authentication failed" in text or "pg_hba.conf" in text or "role " in text:
                return f"{where} refused user {url.username!r}: check DATABASE_URL"
            return f"{where} does not answer: start it or set DATABASE_URL"
        missing = isinstance(error, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn)
        if missing or (isinstance(error, sqlite3.OperationalError) and "no such" in text):
            state = _migration_state(settings) or f"missing {text.splitlines()[0]}"
            return f"the database {shown} is {state}: run `trends migrate`"
        if isinstance(error, sqlite3.OperationalError) and "unable to open" in text:
            return f"cannot open the SQLite database {shown}: check the path of DATABASE_URL"
    return None


def missing_sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file the settings name, when it does not exist (absolute); otherwise None."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    return None if path.exists() else path.resolve()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `trends` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]).upper() or "settings"
            message = error["msg"].removeprefix("Value error, ")
            print(f"configuration error: {where}: {message}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, verbose=args.verbose)
    # SQLite would create an empty file (a relative default, run from another folder, say).
    # `trends up` runs commands that say it themselves.
    missing = missing_sqlite_file(settings) if args.command not in ("migrate", "up") else None
    if missing is not None:
        print(
            f"error: no database at {missing}: run `trends migrate` (or set DATABASE_URL)",
            file=sys.stderr,
        )
        return 1
    try:
        status: int = args.func(args, settings)  # the subcommand's handler (argparse: Any)
    except Exception as exc:
        problem = database_problem(exc, settings)
        if problem is None:
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
