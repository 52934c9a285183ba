"""The RQ queue: connection, enqueueing, and the worker."""

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import sqlalchemy as sa
from rq import Queue, Worker
from rq.job import Job
from sqlalchemy.orm import Session

from trends_gql.core.db import Database
from trends_gql.core.errors import ServiceUnavailable
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

R = TypeVar("R")
RESULT_TTL = 7 * 24 * 3600  # run tables keep the history; RQ only needs results for a while


def connect(settings: Settings, timeout: float | None = 2.0) -> redis.Redis:
    """A Redis connection for RQ (RQ stores bytes, so no decoding)."""
    return redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )


def get_queue(settings: Settings, connection: redis.Redis | None = None) -> Queue:
    """The queue jobs are enqueued on (the first of QUEUES)."""
    return Queue(settings.queues[0], connection=connection or connect(settings))


def enqueue(settings: Settings, func: Callable[..., Any], *args: Any, **options: Any) -> Job:
    """Enqueue `func(*args)`; ServiceUnavailable when Redis cannot take it."""
    try:
        return get_queue(settings).enqueue(
            func,
            *args,
            job_timeout=settings.job_timeout,
            result_ttl=RESULT_TTL,
            failure_ttl=RESULT_TTL,
            **options,
        )
    except redis.RedisError as exc:
        log.error(
            "cannot enqueue %s: Redis is unavailable: %s", getattr(func, "__name__", func), exc
        )
        raise ServiceUnavailable(
            "the job queue is unavailable: try again later", reason=str(exc)
        ) from None


def _set_job(session: Session, model: type[Any], run_id: int, job_id: str) -> None:
    session.execute(sa.update(model).where(model.id == run_id).values(job_id=job_id))
    session.commit()


def _forget(session: Session, model: type[Any], run_id: int) -> None:
    session.execute(sa.delete(model).where(model.id == run_id))
    session.commit()


def enqueue_run(db: Database, settings: Settings, run: R, job: str) -> R:
    """Queue `job(run.id)` for a recorded run; if that fails the run is forgotten, then re-raised.

    So a caller never leaves a QUEUED run that no job will carry out.
    """
    model = type(run)
    try:
        queued = enqueue(settings, job, run.id)
    except Exception:
        db.call(_forget, model, run.id)
        raise
    db.call(_set_job, model, run.id, queued.id)
    run.job_id = queued.id
    return run


def wait_for_redis(settings: Settings, max_delay: float = 10.0) -> None:
    """Block until Redis answers, retrying with a growing delay (a worker outlives outages)."""
    delay = 0.5
    while True:
        client = connect(settings)
        try:
            client.ping()
            return
        except redis.RedisError as exc:
            log.warning(
                "Redis at %s is unavailable (%s): retrying in %.0f s",
                settings.redis_url,
                exc,
                delay,
            )
        finally:
            client.close()
        time.sleep(delay)
        delay = min(delay * 2, max_delay)


def run_worker(settings: Settings, burst: bool = False, name: str | None = None) -> bool:
    """Run an RQ worker on the configured queues until stopped (or, in burst mode, idle)."""
    connection = connect(settings, timeout=None)
    queues = [Queue(q, connection=connection) for q in settings.queues]
    worker = Worker(queues, connection=connection, name=name)
    return worker.work(burst=burst, with_scheduler=False, logging_level=settings.log_level)
