"""GET /metrics in the Prometheus text format: who may scrape it, and what it exports.

Per-request figures are counted by each process (core/instruments.py, web/measurement.py),
summed over processes in multiprocess mode. Figures with a source of truth elsewhere are read at
scrape time: runs by outcome, rows and duration from the runs tables, queue lengths and workers
from Redis. They are then right whichever process or machine answers the scrape.
"""

import hmac
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy.orm import Session
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import Response

from trends_gql.core import instruments, queue
from trends_gql.core.db import Database
from trends_gql.core.errors import TrendsError, error_response
from trends_gql.core.models import ExportRun, ImportRun, RunStatus
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ  # as prometheus_client decides, at import
# --- who may scrape ----------------------------------------------------------------------------


def refusal(request: Request, settings: Settings) -> Response | None:
    """401 or 403 unless the request has METRICS_TOKEN or comes from METRICS_ALLOW; None then."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme:
        expected = settings.metrics_token
        if scheme.lower() == "bearer" and expected and hmac.compare_digest(token, expected):
            return None
        return error_response(401, "The metrics token is not valid.", "UNAUTHENTICATED")
    client = request.client.host if request.client else ""
    if _allowed(client, settings.metrics_allow):
        return None
    if settings.metrics_token:
        message = "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>."
        return error_response(401, message, "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"})
    if settings.metrics_allow:
        return error_response(403, f"{client} may not read the metrics.", "FORBIDDEN")
    message = "Metrics are not public: set METRICS_TOKEN or METRICS_ALLOW to read them."
    return error_response(403, message, "FORBIDDEN")


def _allowed(client: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


# --- what the database and Redis say -----------------------------------------------------------


@dataclass
class RunTotals:
    """The runs of one kind with one status: how many, their rows, the time finished ones took."""

    status: RunStatus
    count: int
    rows: dict[str, int]
    seconds: float
    timed: int


def _duration(dialect: str, model: Any) -> Any:
    if dialect == "postgresql":
        return sa.extract("epoch", model.finished_at - model.started_at)
    return (sa.func.julianday(model.finished_at) - sa.func.julianday(model.started_at)) * 86400.0


def run_totals(session: Session, model: Any, rows: dict[str, Any]) -> list[RunTotals]:
    """Runs of `model` by status, with the sums of its `rows` columns and of finished runs' time."""
    duration = _duration(session.get_bind().dialect.name, model)
    sums = [sa.func.coalesce(sa.func.sum(column), 0) for column in rows.values()]
    seconds = sa.func.coalesce(sa.func.sum(duration), 0.0)
    query = sa.select(model.status, sa.func.count(), seconds, sa.func.count(duration), *sums)
    query = query.group_by(model.status)
    return [
        RunTotals(status, count, dict(zip(rows, figures, strict=True)), float(seconds), timed)
        for status, count, seconds, timed, *figures in session.execute(query)
    ]


# A dry run's counts say what an import would have done: none of its rows count.
IMPORT_ROWS = {
    kind: sa.case((col(ImportRun.dry_run), 0), else_=column)
    for kind, column in (
        ("created", ImportRun.rows_created),
        ("skipped", ImportRun.rows_skipped),
        ("invalid", ImportRun.rows_invalid),
    )
}
EXPORT_ROWS = {"written": ExportRun.row_count}


def database_figures(session: Session) -> Iterator[Metric]:
    """Import and export runs by outcome, with their rows and durations, from the runs tables."""
    for kind, model, rows in (
        ("import", ImportRun, IMPORT_ROWS),
        ("export", ExportRun, EXPORT_ROWS),
    ):
        totals = run_totals(session, model, rows)
        finished = [t for t in totals if t.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)]
        runs = CounterMetricFamily(
            f"trends_{kind}_runs", f"Finished {kind} runs.", labels=["outcome"]
        )
        active = GaugeMetricFamily(
            f"trends_{kind}_runs_active",
            f"{kind.title()} runs queued or running.",
            labels=["status"],
        )
        row_sums = CounterMetricFamily(
            f"trends_{kind}_rows", f"Rows of finished {kind} runs, by kind.", labels=["kind"]
        )
        durations = SummaryMetricFamily(
            f"trends_{kind}_run_duration_seconds",
            f"Time finished {kind} runs took, from start to end.",
            labels=["outcome"],
        )
        for status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            found = [t for t in finished if t.status is status]
            outcome = status.value.lower()
            runs.add_metric([outcome], sum(t.count for t in found))
            durations.add_metric(
                [outcome], sum(t.timed for t in found), sum(t.seconds for t in found)
            )
        for status in (RunStatus.QUEUED, RunStatus.RUNNING):
            active.add_metric(
                [status.value.lower()], sum(t.count for t in totals if t.status is status)
            )
        for name in rows:
            row_sums.add_metric([name], sum(t.rows[name] for t in finished))
        yield from (runs, active, row_sums, durations)


def redis_figures(settings: Settings) -> list[Metric]:
    """Jobs of each queue by state, and the RQ workers alive, from Redis."""
    connection = queue.connect(settings, timeout=1.0)
    try:
        jobs = GaugeMetricFamily(
            "trends_queue_jobs", "RQ jobs by queue and state.", labels=["queue", "state"]
        )
        for name in settings.queues:
            q = Queue(name, connection=connection)
            jobs.add_metric([name, "queued"], q.count)
            for state, registry in (
                ("started", StartedJobRegistry),
                ("scheduled", ScheduledJobRegistry),
                ("failed", FailedJobRegistry),
            ):
                jobs.add_metric([name, state], registry(queue=q).get_job_count(cleanup=False))
        workers = GaugeMetricFamily("trends_workers", "RQ workers alive.", Worker.count(connection))
        return [jobs, workers]
    finally:
        connection.close()


async def state_figures(db: Database, settings: Settings) -> list[Metric]:
    """What the database and Redis say now; a source that does not answer is reported down."""
    figures: list[Metric] = []
    up = GaugeMetricFamily(
        "trends_metrics_source_up", "Whether a source answered.", labels=["source"]
    )
    try:
        figures += await db.read(lambda s: list(database_figures(s)))
        up.add_metric(["database"], 1)
    except (sa.exc.SQLAlchemyError, TrendsError) as exc:
        log.warning("metrics: the database did not answer: %s", exc)
        up.add_metric(["database"], 0)
    try:
        figures += await anyio.to_thread.run_sync(redis_figures, settings)
        up.add_metric(["redis"], 1)
    except Exception as exc:  # any failure of Redis or RQ leaves the other figures readable
        log.warning("metrics: Redis did not answer: %s", exc)
        up.add_metric(["redis"], 0)
    return [*figures, up]


class _Figures:
    """What one scrape exports: the instruments (of every process) and the state figures."""

    def __init__(self, state: list[Metric]) -> None:
        self.state = state

    def collect(self) -> Iterable[Metric]:
        if MULTIPROCESS:
            from prometheus_client import multiprocess

            folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
            _forget_dead_processes(folder)
            yield from multiprocess.MultiProcessCollector(None, folder).collect()
        else:
            yield from REGISTRY.collect()
        yield from self.state


def _forget_dead_processes(folder: str) -> None:
    """Drop the live gauges of server processes that died without saying so (killed)."""
    from prometheus_client import multiprocess

    for path in os.scandir(folder):
        kind, _, rest = path.name.rpartition("_")
        if kind.startswith("gauge_live") and rest.endswith(".db") and rest[:-3].isdigit():
            pid = int(rest[:-3])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                multiprocess.mark_process_dead(pid, folder)
            except PermissionError:
                pass  # alive, as another user


def metrics_route(db: Database, settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    """The GET /metrics endpoint of an app."""

    async def metrics(request: Request) -> Response:
        refused = refusal(request, settings)
        if refused is not None:
            return refused
        encoder, media_type = choose_encoder(request.headers.get("accept", ""))
        figures = _Figures(await state_figures(db, settings))
        body = await anyio.to_thread.run_sync(encoder, figures)
        return Response(body, headers={"Content-Type": media_type, "Cache-Control": "no-store"})

    return metrics


def watch_pool(db: Database) -> None:
    """Keep the pool gauges of this process up to date as connections are taken and returned."""
    instruments.PROCESSES.set(1)
    pool: Any = db.engine.pool
    if not hasattr(pool, "checkedout"):
        return  # a pool without figures (an in-memory SQLite database's)
    instruments.POOL_SIZE.set(pool.size())
    instruments.POOL_CHECKED_OUT.set(pool.checkedout())
    # Set, not counted up and down: a value missed in a race is right again at the next event.
    sa.event.listen(
        pool, "checkout", lambda *_: instruments.POOL_CHECKED_OUT.set(pool.checkedout())
    )
    # The returned connection still counts as checked out while its checkin event runs.
    sa.event.listen(
        pool, "checkin", lambda *_: instruments.POOL_CHECKED_OUT.set(pool.checkedout() - 1)
    )
