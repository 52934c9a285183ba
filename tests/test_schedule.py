"""Periodic jobs: registered once however often the scheduler starts, replaced when changed."""

from collections.abc import Iterator

import pytest
import redis
from conftest import TEST_REDIS_URL, with_settings
from rq_scheduler import Scheduler

from jobs.schedule import PREFIX, register
from trends_gql.settings import Settings


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    """An rq-scheduler on the test Redis; our periodic jobs are removed afterwards."""
    connection = redis.Redis.from_url(TEST_REDIS_URL)
    scheduler = Scheduler(queue_name="schedule-test", connection=connection)
    yield scheduler
    for job in scheduler.get_jobs():
        if job.id.startswith(PREFIX):
            scheduler.cancel(job)
            job.delete()
    connection.close()


def periodic(scheduler: Scheduler) -> dict[str, tuple[str, int, str]]:
    """Our periodic jobs: id -> (function, interval, queue)."""
    return {
        job.id: (job.func_name, job.meta["interval"], job.origin)
        for job in scheduler.get_jobs()
        if job.id.startswith(PREFIX)
    }


def test_registering_again_keeps_one_job_each(
    scheduler: Scheduler, sqlite_settings: Settings
) -> None:
    settings = with_settings(sqlite_settings, queues=["schedule-test"], import_interval=30)
    assert sorted(register(scheduler, settings)) == [f"{PREFIX}backup", f"{PREFIX}scan-media"]
    assert register(scheduler, settings) == []
    second = Scheduler(queue_name="schedule-test", connection=scheduler.connection)
    assert register(second, settings) == []
    assert periodic(scheduler) == {
        f"{PREFIX}scan-media": ("jobs.scan.scan_media", 30, "schedule-test"),
        f"{PREFIX}backup": ("jobs.backups.backup_database", 86400, "schedule-test"),
    }


def test_a_changed_interval_replaces_the_old_schedule(
    scheduler: Scheduler, sqlite_settings: Settings
) -> None:
    settings = with_settings(sqlite_settings, queues=["schedule-test"], import_interval=30)
    register(scheduler, settings)
    changed = with_settings(settings, import_interval=5)
    assert register(scheduler, changed) == [f"{PREFIX}scan-media"]
    jobs = periodic(scheduler)
    assert len(jobs) == 2
    assert jobs[f"{PREFIX}scan-media"][1] == 5
