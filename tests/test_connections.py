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
    backend: Settings, db: Database, tmp_path: Path
) -> None:
    with private_redis() as server:
        # The test's emptied database, its commits told to a Redis that counts connections.
        told = Database.of(with_settings(backend, redis_url=server.url))
        try:
            load(told, tmp_path, csv_text([trend_row(macrotrend="First")]))
            told.call_sync(_new_run)
            before = connections_received(server.url)
            for n in range(10):  # each commit writes trends (a bump), then an import run (told)
                assert load(told, tmp_path, csv_text([trend_row(macrotrend=f"M{n}")])).created == 1
                told.call_sync(_new_run)
            # One connection: the count's own. Connecting per commit made it 21.
            assert connections_received(server.url) - before == 1
        finally:
            told.dispose()
