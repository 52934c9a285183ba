"""The RQ queue: connection, enqueueing, how a job ended, and the worker; whether Redis answers."""

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import redis
import sqlalchemy as sa
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus, get_current_job
from rq.timeouts import JobTimeoutException
from rq.types import FunctionReferenceType
from sqlalchemy.orm import Session

from trends_gql.core.db import Database
from trends_gql.core.errors import ServiceUnavailable
from trends_gql.core.models import stored_id
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)


class _Run(Protocol):
    id: int | None
    job_id: str | None


R = TypeVar("R", bound=_Run)
RESULT_TTL = 7 * 24 * 3600  # run tables keep the history; RQ only needs results for a while
# The jobs services queue, by name: the job functions (trends_gql.jobs) call the services, so the
# services cannot import them. tests/test_jobs.py resolves each name and finds no other.
IMPORT_JOB = "trends_gql.jobs.imports.import_run_job"
EXPORT_JOB = "trends_gql.jobs.exports.export_job"


def connect(settings: Settings, timeout: float | None = 2.0) -> redis.Redis:
    """A Redis connection for RQ (RQ stores bytes, so no decoding)."""
    return redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )


def get_queue(settings: Settings, connection: redis.Redis | None = None) -> Queue:
    """The queue jobs are enqueued on (the first of QUEUES)."""
    return Queue(settings.queues[0], connection=connection or connect(settings))


def enqueue(settings: Settings, func: FunctionReferenceType, *args: Any, **options: Any) -> Job:
    """Enqueue `func(*args)` (`func` or its dotted name); ServiceUnavailable if Redis cannot."""
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
    model, run_id = type(run), stored_id(run)
    try:
        queued = enqueue(settings, job, run_id)
    except Exception:
        db.call_sync(_forget, model, run_id)
        raise
    db.call_sync(_set_job, model, run_id, queued.id)
    run.job_id = queued.id
    return run


# Raised inside a job that runs longer than JOB_TIMEOUT.
JobTimeout = JobTimeoutException
# Where an RQ job records the process that carries it out (note_process).
PROCESS_META = "trends_process"
_WAITING = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def _here() -> str:
    """This host and, where the OS names it, its process namespace: where a pid means the same."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()} {namespace}".strip()


def _process_start(pid: int) -> str | None:
    """When process `pid` started (so that a reused pid is told apart); None if not known."""
    try:
        state, *fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if state in ("Z", "X") else fields[18]  # a zombie has stopped running


def _pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process `pid` runs (not a zombie; when `started` is known, the same process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not Path("/proc/self/stat").exists():
        return True  # without /proc, os.kill is all that can be told
    now = _process_start(pid)
    return now is not None and started in (None, now)


def note_process() -> None:
    """Record on the RQ job being carried out here (if any) which process it is.

    A sweep on the same host then sees at once when that process is gone (killed, crashed),
    without waiting for RQ's heartbeats to expire.
    """
    job = get_current_job()
    if job is None:
        return
    pid = os.getpid()
    job.meta[PROCESS_META] = {"where": _here(), "pid": pid, "started": _process_start(pid)}
    try:
        job.save_meta()
    except redis.RedisError as exc:
        log.warning("cannot note the process of job %s: %s", job.id, exc)


def current_timeout(default: int) -> int:
    """The timeout (s) of the RQ job being carried out here; `default` outside a job."""
    job = get_current_job()
    return int(job.timeout) if job is not None and job.timeout else default


def deadline_check() -> Callable[[], None]:
    """A check that raises JobTimeout once the RQ job carried out here has run past its timeout.

    RQ stops a job with an alarm signal, whose exception is lost when it lands in a finalizer
    (Python only prints it): a long job calls this between steps as well."""
    job = get_current_job()
    if job is None or not job.timeout or job.timeout < 0:
        return lambda: None
    timeout, deadline = job.timeout, time.monotonic() + job.timeout

    def check() -> None:
        if time.monotonic() > deadline:
            raise JobTimeout(f"Task exceeded maximum timeout value ({timeout} seconds)")

    return check


def _job_process_alive(job: Job) -> bool | None:
    """Whether the process that noted itself on `job` is alive; None when it cannot be told here."""
    process = job.meta.get(PROCESS_META)
    if not isinstance(process, dict) or process.get("where") != _here():
        return None
    return _pid_alive(int(process["pid"]), process.get("started"))


class _Worker(Worker):
    """RQ's worker, whose record also says where its pid means something (see _here)."""

    def serialize(self) -> dict[str, Any]:
        return {**super().serialize(), PROCESS_META: _here()}


def _worker_alive(connection: redis.Redis, name: str | None) -> bool:
    """Whether RQ's record of the worker is alive: present (its heartbeat has not expired), not
    marked dead, and, when it runs here, its process still running."""
    if not name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
    if worker is None or worker.death_date is not None:
        return False
    where = connection.hget(worker.key, PROCESS_META)
    if where:
        here = (where.decode() if isinstance(where, bytes) else where) == _here()
    else:
        here = worker.hostname == socket.gethostname()  # a worker of plain RQ
    return _pid_alive(worker.pid) if here and worker.pid else True


def dead_job(connection: redis.Redis, job_id: str, running: bool = False) -> str | None:
    """How a job ended without its run being told; None while it may still finish.

    `running`: its run was started, so the job must be carried out now, not waiting. A job
    carried out is alive while the process that runs it is (seen at once on the same host), or
    else while RQ's record of its worker is (which lapses when the worker's heartbeat expires).
    """
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return "lost"
    # As fetched: read again, the status could be newer than the worker name and meta.
    status = job.get_status(refresh=False)
    if status == JobStatus.FINISHED:
        return None  # it recorded the outcome itself
    if status in _WAITING:
        # Started, then put back by RQ: dead, unless the process that started it goes on.
        return "requeued" if running and not _job_process_alive(job) else None
    if status == JobStatus.STARTED:
        alive = _job_process_alive(job)
        if alive or (alive is None and _worker_alive(connection, job.worker_name)):
            return None
        return "abandoned"
    return status.value if status else "lost"


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
    worker = _Worker(queues, connection=connection, name=name)
    return worker.work(burst=burst, with_scheduler=False, logging_level=settings.log_level)
