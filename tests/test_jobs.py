"""The import job an RQ worker runs: the configured database, the report as a dict."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import SAMPLE, csv_text, trend_row

from jobs.imports import import_file
from trends_gql.db import Database
from trends_gql.models import TREND_TABLE
from trends_gql.settings import Settings, get_settings


def _count(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(TREND_TABLE)).scalar_one()


@pytest.fixture
def configured(db: Database, backend: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings read from the environment point at the backend's (empty) database."""
    monkeypatch.setenv("DATABASE_URL", backend.database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("configured")
def test_import_file_imports_into_the_configured_database(db: Database) -> None:
    result = import_file(str(SAMPLE))
    assert result["file"] == str(SAMPLE)
    assert (result["total"], result["created"], result["skipped"], result["invalid"]) == (
        44,
        44,
        0,
        0,
    )
    assert (result["encoding"], result["dry_run"], result["errors"]) == ("UTF-8", False, [])
    assert _count(db) == 44
    assert import_file(str(SAMPLE))["skipped"] == 44


@pytest.mark.usefixtures("configured")
def test_import_file_dry_run_writes_nothing(db: Database) -> None:
    result = import_file(str(SAMPLE), dry_run=True)
    assert (result["dry_run"], result["created"]) == (True, 44)
    assert _count(db) == 0


@pytest.mark.usefixtures("configured")
def test_import_file_returns_row_errors_as_plain_data(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(csv_text([trend_row(), trend_row(macrotrend="")]), encoding="utf-8")
    result = import_file(str(path))
    assert (result["created"], result["invalid"]) == (0, 1)
    assert result["errors"] == [{"line": 3, "column": "Macrotrend", "message": "is required"}]
    assert _count(db) == 0
