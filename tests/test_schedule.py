"""Periodic jobs: registered once however often the scheduler starts, replaced when changed."""

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from conftest import TRENDS, settings_env, with_settings
from private_redis import private_redis
from rq_scheduler import Scheduler

from trends_gql.core.settings import Settings
from trends_gql.jobs.schedule import PREFIX, register


def periodic(scheduler: Scheduler) -> dict[str, tuple[str, int, str]]:
    """Our periodic jobs: id -> (function, interval, queue)."""
    return {
        job.id: (job.func_name, job.meta["interval"], job.origin)
        for job in scheduler.get_jobs()
        if job.id.startswith(PREFIX)
    }


@pytest.mark.xdist_group("scheduler")  # with every scheduler on the test Redis
def test_registering_again_keeps_one_job_each(
    scheduler: Scheduler, sqlite_settings: Settings
) -> None:
    settings = with_settings(sqlite_settings, queues=["schedule-test"], import_interval=30)
    assert sorted(register(scheduler, settings)) == [
        f"{PREFIX}backup",
        f"{PREFIX}prune-sessions",
        f"{PREFIX}scan-media",
    ]
    assert register(scheduler, settings) == []
    second = Scheduler(queue_name="schedule-test", connection=scheduler.connection)
    assert register(second, settings) == []
    assert periodic(scheduler) == {
        f"{PREFIX}scan-media": ("trends_gql.jobs.scan.scan_media", 30, "schedule-test"),
        f"{PREFIX}backup": ("trends_gql.jobs.backups.backup_database", 86400, "schedule-test"),
        f"{PREFIX}prune-sessions": (
            "trends_gql.jobs.sessions.prune_sessions",
            3600,
            "schedule-test",
        ),
    }


@pytest.mark.xdist_group("scheduler")  # with every scheduler on the test Redis
def test_a_changed_interval_replaces_the_old_schedule(
    scheduler: Scheduler, sqlite_settings: Settings
) -> None:
    settings = with_settings(sqlite_settings, queues=["schedule-test"], import_interval=30)
    register(scheduler, settings)
    changed = with_settings(settings, import_interval=5)
    assert register(scheduler, changed) == [f"{PREFIX}scan-media"]
    jobs = periodic(scheduler)
    assert len(jobs) == 3
    assert jobs[f"{PREFIX}scan-media"][1] == 5


def test_the_scheduler_outlives_a_redis_outage_and_puts_its_jobs_back(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    with private_redis() as server:
        settings = with_settings(sqlite_settings, redis_url=server.url, queues=["schedule-test"])
        process = subprocess.Popen(
            [TRENDS, "scheduler"],
            env=settings_env(settings),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            connection = redis.Redis.from_url(server.url)
            scheduler = Scheduler(queue_name="schedule-test", connection=connection)
            wait_for(lambda: len(periodic(scheduler)) == 3)
            server.stop()  # without persistence: what it held is gone
            time.sleep(1.5)
            assert process.poll() is None
            server.start()
            wait_for(lambda: len(periodic(scheduler)) == 3)
            assert process.poll() is None
            connection.close()
        finally:
            process.terminate()
            output = process.communicate(timeout=30)[0]
    assert output.count("Redis is unavailable") == 1, output
    assert "Redis answers again" in output


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    """Wait until `condition()` holds, however slow the machine; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
