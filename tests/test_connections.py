"""Redis clients shared by a process: the hooks after each commit do not connect each time."""

from pathlib import Path

import redis
from conftest import csv_text, load, trend_row, with_settings
from private_redis import private_redis
from test_changes import _new_run

from trends_gql.core.connections import shared_client
from trends_gql.core.db import Database
from trends_gql.core.settings import Settings


def connections_received(url: str) -> int:
    """How many connections the Redis at `url` has accepted since it started."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


def test_one_client_per_url_and_timeout() -> None:
    url = "redis://127.0.0.1:6379/0"
    assert shared_client(url, 1) is shared_client(url, 1)
    assert shared_client(url, 1) is not shared_client(url, 2)
    assert shared_client(url, 1) is not shared_client("redis://127.0.0.1:6379/1", 1)


def test_commits_that_bump_and_publish_reuse_their_connections(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    with private_redis() as server:
        settings = with_settings(sqlite_settings, redis_url=server.url)
        db = Database.of(settings)
        try:
            load(db, tmp_path, csv_text([trend_row(macrotrend="First")]))
            db.call_sync(_new_run)
            before = connections_received(server.url)
            for n in range(10):  # each commit writes trends (a bump), then an import run (told)
                assert load(db, tmp_path, csv_text([trend_row(macrotrend=f"M{n}")])).created == 1
                db.call_sync(_new_run)
            # One connection: the count's own. Connecting per commit made it 21.
            assert connections_received(server.url) - before == 1
        finally:
            db.dispose()
