"""The `trends` command line."""

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from trends_gql.csvio import CsvFormatError
from trends_gql.db import Database
from trends_gql.ingest import ImportReport, export_trends, import_trends
from trends_gql.settings import Settings, get_settings

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("trends_gql.cli")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings) -> "Config":
    """Alembic configuration for the settings' database."""
    from alembic.config import Config  # imported here: it doubles the start-up time of the CLI

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = settings.database_url
    return config


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


def _log_progress(report: ImportReport) -> None:
    log.info("%s: %d rows read, %d new so far", report.file, report.total, report.created)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url)
    started = time.perf_counter()
    try:
        with db.session() as session:
            report = import_trends(
                session,
                args.file,
                dry_run=args.dry_run,
                batch_size=settings.import_batch_size,
                max_errors=settings.import_max_errors,
                on_progress=_log_progress,
            )
    except FileNotFoundError:
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except CsvFormatError as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    _print_report(report, args.show_errors, time.perf_counter() - started)
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            count = export_trends(session, args.file, args.format)
    except OSError as exc:
        print(f"error: cannot write {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"{args.file}: {count} trends written ({args.format})")
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    migrate(settings, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    uvicorn.run(
        "trends_gql.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        reload=args.reload,
        log_level=settings.log_level.lower(),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="trends", description="Trends GraphQL server")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_migrate)

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

    p = sub.add_parser("export", help="export all trends as CSV (re-importable) or JSON")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `trends` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]).upper() or "settings"
            print(f"configuration error: {where}: {error['msg']}", file=sys.stderr)
        return 2
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
