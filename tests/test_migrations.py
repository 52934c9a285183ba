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
    TEST_DATABASE_URL,
    _drop_postgres_database,
    _recreate_postgres_database,
    make_settings,
)
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from trends_gql.cli import alembic_config, migrate
from trends_gql.db import create_db_engine
from trends_gql.settings import Settings


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


INDEXES = {"ux_trend_fingerprint", "ix_trend_megatrend_macrotrend", "ix_trend_macrotrend"}


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
    assert _index_names(fresh) >= INDEXES


# SQLite cannot reflect expression indexes; the test above checks they exist.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrated_schema_matches_the_models(fresh: Settings) -> None:
    migrate(fresh)
    engine = create_db_engine(fresh.database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
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
