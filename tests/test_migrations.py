"""Alembic migrations: they build exactly the models' schema, both ways, on both backends."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import (
    SAMPLE,
    TEST_DATABASE_URL,
    _drop_postgres_database,
    _recreate_postgres_database,
    load,
    make_settings,
    summary_matches,
)
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from trends_gql.cli import alembic_config, migrate
from trends_gql.core.db import Database, create_db_engine, created_on
from trends_gql.core.settings import Settings


@pytest.fixture
def fresh(backend: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a new, empty database of the backend under test."""
    if backend.database_url.startswith("sqlite"):
        yield make_settings(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path)
        return
    base = make_url(TEST_DATABASE_URL)
    # One database per test process, so that parallel runs do not drop each other's.
    url = base.set(database=f"{base.database}_migrations_{os.getpid()}")
    rendered = url.render_as_string(hide_password=False)
    _recreate_postgres_database(rendered)
    yield make_settings(rendered, tmp_path)
    _drop_postgres_database(rendered)


def _tables(settings: Settings) -> set[str]:
    engine = create_db_engine(settings.database_url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


INDEXES = {
    "ux_trend_fingerprint",
    "ix_trend_megatrend_macrotrend",
    "ix_trend_macrotrend",
    "ix_trend_updated_at",
}


def _index_names(settings: Settings) -> set[str]:
    engine = create_db_engine(settings.database_url)
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'trend'"
        if engine.dialect.name == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'trend'"
    )
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text(sql)).scalars())
    finally:
        engine.dispose()


def test_migration_creates_the_filter_indexes(fresh: Settings) -> None:
    migrate(fresh)
    found = _index_names(fresh)
    assert found >= INDEXES
    if not fresh.database_url.startswith("sqlite"):  # SQLite's cannot say NULLS LAST
        assert found >= {"ix_trend_publications", "ix_trend_patents"}


SUMMARISED = "('trend', 'trend_summary', 'trend_count_bucket', 'trend_count_bucket_change')"


def _index_definitions(settings: Settings) -> dict[str, str]:
    engine = create_db_engine(settings.database_url)
    # SQLite keeps the statement's own text, which Alembic and SQLAlchemy spell differently.
    sql = (
        f"SELECT name, name FROM sqlite_master WHERE type = 'index' AND tbl_name IN {SUMMARISED}"
        if engine.dialect.name == "sqlite"
        else f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN {SUMMARISED}"
    )
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


@pytest.fixture
def modelled(fresh: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings of another new database, whose schema the models create (no migrations)."""
    if fresh.database_url.startswith("sqlite"):
        settings = make_settings(f"sqlite:///{tmp_path / 'modelled.db'}", tmp_path)
    else:
        url = make_url(fresh.database_url)
        rendered = url.set(database=f"{url.database}_models").render_as_string(hide_password=False)
        _recreate_postgres_database(rendered)
        settings = make_settings(rendered, tmp_path)
    engine = create_db_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("CREATE EXTENSION pg_trgm"))  # what migration 0004 does
            SQLModel.metadata.create_all(conn)
    finally:
        engine.dispose()
    yield settings
    if not settings.database_url.startswith("sqlite"):
        _drop_postgres_database(settings.database_url)


def test_migrated_indexes_are_those_the_models_create(fresh: Settings, modelled: Settings) -> None:
    # Alembic's comparison sees neither an index's method nor its operator classes.
    migrate(fresh)
    migrated = _index_definitions(fresh)
    assert migrated == _index_definitions(modelled)
    if fresh.database_url.startswith("sqlite"):
        assert "ix_trend_search" not in migrated  # a scan serves search on SQLite
    else:
        assert migrated["ix_trend_search"] == (
            "CREATE INDEX ix_trend_search ON public.trend USING gin (megatrend gin_trgm_ops, "
            "macrotrend gin_trgm_ops, challenges_and_research_gaps gin_trgm_ops, "
            "relevant_industries gin_trgm_ops, real_world_application_and_use_cases gin_trgm_ops)"
        )


def _triggers(settings: Settings) -> dict[str, str]:
    """The triggers (and PostgreSQL's trigger functions) by name, each definition's words."""
    engine = create_db_engine(settings.database_url)
    sql = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
        if engine.dialect.name == "sqlite"
        else "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
        " UNION ALL SELECT proname, prosrc FROM pg_proc"
        " WHERE proname LIKE 'trend_summary_%' OR proname LIKE 'trend_count_bucket_%'"
    )
    try:
        with engine.connect() as conn:
            return {name: " ".join(text.split()) for name, text in conn.execute(sa.text(sql))}
    finally:
        engine.dispose()


def test_migrated_triggers_are_those_the_models_create(fresh: Settings, modelled: Settings) -> None:
    migrate(fresh)
    migrated = _triggers(fresh)
    assert migrated == _triggers(modelled)
    if fresh.database_url.startswith("sqlite"):  # no TRUNCATE, no fold, no buckets kept
        assert set(migrated) == {f"trend_summary_{name}" for name in ("insert", "update", "delete")}
        return
    names = {"insert", "update", "delete", "truncate", "fold", "apply"}
    summaries = ("trend_summary", "trend_count_bucket")
    assert set(migrated) == {f"{table}_{name}" for table in summaries for name in names}


def test_the_migration_fills_the_summary_from_the_trends_already_there(
    fresh: Settings, tmp_path: Path
) -> None:
    migrate(fresh, "0007")
    database = Database(fresh.database_url)
    try:
        load(database, tmp_path, SAMPLE)
        migrate(fresh)
        with database.session() as session:
            assert summary_matches(session) == 44
    finally:
        database.dispose()


# SQLite cannot reflect expression indexes; the test above checks they exist.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrated_schema_matches_the_models(fresh: Settings) -> None:
    migrate(fresh)
    engine = create_db_engine(fresh.database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_object": created_on(conn.dialect.name)}
            )
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_downgrade_to_base_then_upgrade_again(fresh: Settings) -> None:
    migrate(fresh)
    assert "trend" in _tables(fresh)
    command.downgrade(alembic_config(fresh), "base")
    assert _tables(fresh) == set()
    migrate(fresh)
    assert "trend" in _tables(fresh)
