"""Settings: environment parsing, defaults and the secret key rules."""

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from trends_gql import cli
from trends_gql.core.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TRENDS_ENV", "CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_sqlite_database_and_local_redis() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///var/trends.db"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.cors_origins == ["http://localhost:8080"]
    assert settings.max_page_size == 500


def test_cors_origins_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_urls_use_the_psycopg3_driver(scheme: str) -> None:
    settings = Settings(database_url=f"{scheme}://u@db:5432/trends")
    assert settings.database_url == "postgresql+psycopg://u@db:5432/trends"


def test_dot_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MAX_PAGE_SIZE=42\n")
    assert Settings().max_page_size == 42


def test_production_refuses_to_start_without_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENDS_ENV", "production")
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings()


def test_cli_names_the_missing_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRENDS_ENV", "production")
    get_settings.cache_clear()
    try:
        assert cli.main(["migrate"]) == 2
    finally:
        get_settings.cache_clear()
    assert "SECRET_KEY must be set" in capsys.readouterr().err


def test_development_secret_is_generated_once_and_kept_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        first = Settings().session_secret
    assert "SECRET_KEY is not set" in caplog.text
    assert len(first) >= 32
    assert Settings().session_secret == first
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0


def test_configured_secret_key_wins() -> None:
    assert Settings(secret_key="s3cret").session_secret == "s3cret"
    assert not Path("var/secret_key").exists()
