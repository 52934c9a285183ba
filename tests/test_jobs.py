"""Job references: each job queued by name resolves to its function; no name is written twice."""

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import with_settings
from rq.utils import import_attribute
from rq_scheduler import Scheduler

from trends_gql.core import queue
from trends_gql.core.settings import Settings
from trends_gql.jobs.schedule import PREFIX, job_name, periodic_jobs, register

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = {name: value for name, value in vars(queue).items() if name.endswith("_JOB")}
DOTTED_JOB = re.compile(r"(trends_gql\.)?jobs\.\w+\.\w+")


def test_the_registry_names_the_import_and_export_jobs() -> None:
    assert set(REGISTRY) == {"IMPORT_JOB", "EXPORT_JOB"}


@pytest.mark.parametrize("name", sorted(REGISTRY.values()))
def test_each_queued_job_name_resolves_to_its_function(name: str) -> None:
    func = import_attribute(name)  # as an RQ worker resolves it
    assert callable(func)
    assert job_name(func) == name


def test_no_job_is_named_outside_the_registry() -> None:
    files = [*(ROOT / "trends_gql").rglob("*.py"), *(ROOT / "jobs").rglob("*.py")]
    found = {
        f"{path.relative_to(ROOT)}: {node.value}"
        for path in files
        if path != ROOT / "trends_gql" / "core" / "queue.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and DOTTED_JOB.fullmatch(node.value)
    }
    assert found == set(), "queue job functions themselves, or add their name to core/queue.py"


def test_periodic_jobs_are_named_after_their_functions(sqlite_settings: Settings) -> None:
    for func, _ in periodic_jobs(sqlite_settings).values():
        assert import_attribute(job_name(func)) is func


@pytest.mark.xdist_group("scheduler")  # with every scheduler on the test Redis
def test_a_periodic_job_registered_under_an_old_name_is_replaced(
    scheduler: Scheduler, sqlite_settings: Settings
) -> None:
    settings = with_settings(sqlite_settings, queues=["schedule-test"], import_interval=30)
    job_id = f"{PREFIX}scan-media"
    scheduler.schedule(  # as the release before jobs/ shipped as trends_gql.jobs left it
        datetime.now(UTC),
        "jobs.scan.scan_media",
        interval=30,
        id=job_id,
        queue_name="schedule-test",
    )
    assert job_id in register(scheduler, settings)
    (job,) = [job for job in scheduler.get_jobs() if job.id == job_id]
    assert job.func_name == "trends_gql.jobs.scan.scan_media"
