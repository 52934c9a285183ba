"""rq-scheduler: the periodic jobs, registered idempotently, and the scheduler process."""

import logging
from datetime import UTC, datetime
from typing import Any

from rq_scheduler import Scheduler

from trends_gql.queue import RESULT_TTL, connect
from trends_gql.settings import Settings

log = logging.getLogger(__name__)

PREFIX = "trends-periodic-"


def periodic_jobs(settings: Settings) -> dict[str, tuple[str, int]]:
    """Job id -> (function, interval in seconds)."""
    return {
        f"{PREFIX}scan-media": ("jobs.scan.scan_media", settings.import_interval),
        f"{PREFIX}backup": ("jobs.backups.backup_database", settings.backup_interval),
    }


def _registered(scheduler: Scheduler) -> dict[str, Any]:
    return {job.id: job for job in scheduler.get_jobs() if job.id.startswith(PREFIX)}


def register(scheduler: Scheduler, settings: Settings) -> list[str]:
    """Schedule each periodic job once: kept when unchanged, replaced when its interval changed."""
    wanted = periodic_jobs(settings)
    existing = _registered(scheduler)
    changed = []
    for job_id, job in list(existing.items()):
        func, interval = wanted.get(job_id, (None, None))
        if (job.func_name, job.meta.get("interval"), job.origin) != (
            func,
            interval,
            settings.queues[0],
        ):
            scheduler.cancel(job)
            job.delete()
            del existing[job_id]
    for job_id, (func, interval) in wanted.items():
        if job_id in existing:
            continue
        scheduler.schedule(
            datetime.now(UTC),
            func,
            interval=interval,
            repeat=None,
            id=job_id,
            queue_name=settings.queues[0],
            result_ttl=RESULT_TTL,
            timeout=settings.job_timeout,
        )
        changed.append(job_id)
        log.info("scheduled %s every %d s", func, interval)
    return changed


def run_scheduler(settings: Settings, burst: bool = False) -> None:
    """Register the periodic jobs and run rq-scheduler (one holds the lock; others wait)."""
    scheduler = Scheduler(
        queue_name=settings.queues[0], connection=connect(settings, timeout=None), interval=1
    )
    register(scheduler, settings)
    scheduler.run(burst=burst)
