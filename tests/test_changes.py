"""Changes of import runs told through Redis pub/sub after each commit, by whoever wrote them."""

import logging
import time
from datetime import UTC, datetime

import anyio
import pytest
import redis
import sqlalchemy as sa
from conftest import TEST_REDIS_URL, with_settings
from private_redis import private_redis
from sqlalchemy.orm import Session

from trends_gql.core import changes
from trends_gql.core.db import IMPORT_RUN, Database
from trends_gql.core.errors import ServiceUnavailable
from trends_gql.core.models import ImportRun, RunSource, RunStatus, stored_id, table_of
from trends_gql.core.settings import Settings

R = table_of(ImportRun).c
NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens there


def _new_run(session: Session) -> int:
    run = ImportRun(
        file_name="a.csv",
        stored_path="/nowhere/a.csv",
        sha256="0" * 64,
        source=RunSource.CLI,
        triggered_by="test",
        created_at=datetime.now(UTC),
    )
    session.add(run)
    session.commit()
    return stored_id(run)


def test_each_commit_tells_which_import_runs_it_wrote(backend: Settings, db: Database) -> None:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(changes.channel(backend, IMPORT_RUN, "*"))
    assert pubsub.get_message(timeout=1) is None  # the confirmation, ignored

    def heard() -> list[str]:
        found = []
        while (message := pubsub.get_message(timeout=0.5)) is not None:
            found.append(message["channel"].decode().removeprefix(backend.pubsub_namespace))
        return found

    try:
        first, second = db.call_sync(_new_run), db.call_sync(_new_run)  # objects, flushed
        assert heard() == [f":import_run:{first}", f":import_run:{second}"]

        def progress(session: Session) -> None:  # a statement limited to one run, and more
            session.execute(
                sa.update(ImportRun)
                .where(R.id == second, R.status == RunStatus.QUEUED)
                .values(rows_processed=7)
            )
            session.execute(sa.update(ImportRun).where(R.id.in_([first])).values(message="m"))
            session.commit()

        db.call_sync(progress)
        assert heard() == [f":import_run:{first}", f":import_run:{second}"]

        def all_queued(session: Session) -> None:  # which rows, the statement does not say
            session.execute(
                sa.update(ImportRun).where(R.status == RunStatus.QUEUED).values(message="q")
            )
            session.commit()

        db.call_sync(all_queued)
        assert heard() == [f":import_run:{changes.SOME}"]

        def rolled_back(session: Session) -> None:
            session.execute(sa.delete(ImportRun))
            session.rollback()

        db.call_sync(rolled_back)
        assert heard() == []
    finally:
        pubsub.close()
        client.close()


def test_without_redis_the_write_stands_and_a_warning_is_logged_once_in_a_while(
    backend: Settings,
    db: Database,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(changes, "_warned_at", None)  # whatever earlier tests logged
    cut_off = Database.of(with_settings(backend, redis_url=NOWHERE))
    try:
        with caplog.at_level(logging.WARNING, logger="trends_gql.core.changes"):
            ids = [cut_off.call_sync(_new_run) for _ in range(3)]
    finally:
        cut_off.dispose()
    stored = db.call_sync(lambda s: s.scalars(sa.select(R.id).order_by(R.id)).all())
    assert stored == ids
    warnings = [r.getMessage() for r in caplog.records if r.name == "trends_gql.core.changes"]
    assert len(warnings) == 1, warnings
    assert "not told to live followers" in warnings[0]


def test_following_without_redis_is_service_unavailable(sqlite_settings: Settings) -> None:
    cut_off = with_settings(sqlite_settings, redis_url=NOWHERE)

    async def follow() -> None:
        async with changes.follow(cut_off, IMPORT_RUN, 1):
            pass

    with pytest.raises(ServiceUnavailable):
        anyio.run(follow)


def test_a_redis_that_does_not_answer_is_given_up_on_after_pubsub_timeout(
    sqlite_settings: Settings,
) -> None:
    async def follow(settings: Settings) -> None:
        async with changes.follow(settings, IMPORT_RUN, 1):
            pass

    with private_redis() as server:
        settings = with_settings(sqlite_settings, redis_url=server.url, pubsub_timeout=1.5)
        with server.stalled():
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                anyio.run(follow, settings)
            waited = time.monotonic() - started
            started = time.monotonic()
            told = changes.publish(settings, IMPORT_RUN, frozenset({1}))
            waited_to_tell = time.monotonic() - started
    assert not told  # the write stands, its change untold
    # A wait can end late on a busy machine, never early: the setting's 1.5 s, not a fixed 1 s.
    assert 1.4 < waited < 15
    assert 1.4 < waited_to_tell < 15


def test_a_follower_hears_of_its_run_and_of_writes_to_unknown_runs_only(
    sqlite_settings: Settings,
) -> None:
    async def follow() -> list[bool]:
        async with changes.follow(sqlite_settings, IMPORT_RUN, 5) as follower:
            heard = []
            for ids in (frozenset({6}), frozenset({5, 6}), None):
                await anyio.to_thread.run_sync(changes.publish, sqlite_settings, IMPORT_RUN, ids)
                heard.append(await follower.changed(0.5))
            return heard

    assert anyio.run(follow) == [False, True, True]
