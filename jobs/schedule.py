"""rq-scheduler: the periodic jobs, registered idempotently, and the scheduler process."""

import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from rq_scheduler import Scheduler

from trends_gql.core.queue import RESULT_TTL, connect
from trends_gql.core.settings import Settings

from .backups import backup_database
from .scan import scan_media
from .sessions import prune_sessions

log = logging.getLogger(__name__)

PREFIX = "trends-periodic-"
# A Redis that does not answer within this is taken as down (without it, a silent host would
# hold the scheduler forever).
REDIS_TIMEOUT = 10.0
# Ended sessions are refused when used whatever their age: pruning only keeps the table small.
SESSION_PRUNE_INTERVAL = 3600


def job_name(func: Callable[..., Any]) -> str:
    """The dotted name RQ stores for `func`, which registrations are compared by."""
    return f"{func.__module__}.{func.__qualname__}"


def periodic_jobs(settings: Settings) -> dict[str, tuple[Callable[..., Any], int]]:
    """Job id -> (function, interval in seconds)."""
    return {
        f"{PREFIX}scan-media": (scan_media, settings.import_interval),
        f"{PREFIX}backup": (backup_database, settings.backup_interval),
        f"{PREFIX}prune-sessions": (prune_sessions, SESSION_PRUNE_INTERVAL),
    }


def _registered(scheduler: Scheduler) -> dict[str, Any]:
    return {job.id: job for job in scheduler.get_jobs() if job.id.startswith(PREFIX)}


def register(scheduler: Scheduler, settings: Settings) -> list[str]:
    """Schedule each periodic job once: kept when unchanged, replaced when it changed.

    A change is one of interval, queue or function name (a job renamed or moved by an upgrade).
    """
    wanted = periodic_jobs(settings)
    existing = _registered(scheduler)
    changed = []
    for job_id, job in list(existing.items()):
        func, interval = wanted.get(job_id, (None, None))
        if (job.func_name, job.meta.get("interval"), job.origin) != (
            func and job_name(func),
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
        log.info("scheduled %s every %d s", job_name(func), interval)
    return changed


class _Scheduler(Scheduler):  # type: ignore[misc]  # rq-scheduler has no type hints
    """rq-scheduler that puts its periodic jobs back when Redis has lost them (a restart)."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings

    def enqueue_jobs(self) -> Any:
        register(self, self.settings)
        return super().enqueue_jobs()


# Waits between tries while Redis is unavailable: doubling from the first to the last.
RETRY_FIRST, RETRY_MAX = 0.5, 30.0


def run_scheduler(settings: Settings, burst: bool = False) -> None:
    """Register the periodic jobs and run rq-scheduler (one holds the lock; others wait).

    A Redis outage of any length is waited out, with a warning once per outage.
    """
    delay, outage = RETRY_FIRST, False
    while True:
        scheduler = _Scheduler(
            settings,
            queue_name=settings.queues[0],
            connection=connect(settings, timeout=REDIS_TIMEOUT),
            interval=1,
        )
        try:
            register(scheduler, settings)
            if outage:
                log.warning("Redis answers again: the scheduler goes on")
                delay, outage = RETRY_FIRST, False
            scheduler.run(burst=burst)
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if not outage:
                log.warning("Redis is unavailable (%s): the scheduler waits for it", exc)
                outage = True
            # rq-scheduler's handlers would talk to Redis on SIGTERM; while waiting, stop plainly.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
