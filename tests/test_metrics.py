"""GET /metrics: who may read it, what requests, the cache and logins count, what the runs tables
and Redis say at scrape time, and the sum over the processes of `trends serve --workers 2`."""

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    TRENDS,
    code,
    csv_text,
    http_client,
    http_request,
    login,
    make_user,
    serve,
    settings_env,
    trend_row,
    web_client,
    with_settings,
    work,
)
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from test_cache import free_port

from trends_gql.cli import metrics_folder
from trends_gql.core.db import Database
from trends_gql.core.models import ExportFormat
from trends_gql.core.settings import Settings
from trends_gql.exports.runs import request_export
from trends_gql.imports.intake import import_now
from trends_gql.web.app import create_app

TOKEN = "metrics-token-" + "x" * 16
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def figures(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.text
    return figures(response.text)


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """A sample's value; 0 when it is not (yet) exported."""
    return found.get((name, frozenset(labels.items())), 0.0)


REQUESTS = "trends_graphql_requests_total"


@pytest.fixture
def settings(backend: Settings, rate_namespace: str) -> Settings:
    return with_settings(backend, metrics_token=TOKEN, rate_limit_namespace=rate_namespace)


@pytest.fixture
def web(settings: Settings, db: Database) -> Iterator[httpx.Client]:
    with web_client(settings) as client:
        yield client


def post(client: httpx.Client, query: str, operation: str | None = None) -> httpx.Response:
    return client.post("/graphql", json={"query": query, "operationName": operation})


# --- who may read them -------------------------------------------------------------------------


def test_metrics_need_the_token(web: httpx.Client) -> None:
    refused = web.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert code(refused.json()) == "UNAUTHENTICATED"
    wrong = web.get("/metrics", headers={"Authorization": "Bearer " + "y" * 30})
    assert (wrong.status_code, code(wrong.json())) == (401, "UNAUTHENTICATED")
    allowed = web.get("/metrics", headers=BEARER)
    assert allowed.status_code == 200
    assert allowed.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert allowed.headers["cache-control"] == "no-store"
    assert "# TYPE trends_graphql_requests_total counter" in allowed.text


def test_metrics_are_refused_to_addresses_not_allowed(backend: Settings, db: Database) -> None:
    with web_client(with_settings(backend, metrics_allow="10.0.0.0/8, 192.168.1.7")) as client:
        refused = client.get("/metrics")
        assert (refused.status_code, code(refused.json())) == (403, "FORBIDDEN")
    with web_client(with_settings(backend, metrics_allow="10.0.0.0/8,127.0.0.0/8")) as client:
        assert client.get("/metrics").status_code == 200


def test_metrics_are_not_public_by_default(backend: Settings, db: Database) -> None:
    with web_client(backend) as client:
        refused = client.get("/metrics")
    assert (refused.status_code, code(refused.json())) == (403, "FORBIDDEN")
    assert "METRICS_TOKEN or METRICS_ALLOW" in refused.json()["errors"][0]["message"]


def test_a_bad_allow_list_fails_at_start_naming_the_entry(backend: Settings) -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300/8' is not an address or a CIDR network"):
        with_settings(backend, metrics_allow="127.0.0.1,10.0.0.300/8")


def test_scrapes_are_not_rate_limited_and_not_counted_as_graphql_requests(
    settings: Settings, db: Database
) -> None:
    with web_client(with_settings(settings, rate_limit_anon=2)) as client:
        before = scrape(client)
        for _ in range(5):
            after = scrape(client)
        total = sum(v for (name, _), v in after.items() if name == REQUESTS)
        assert total == sum(v for (name, _), v in before.items() if name == REQUESTS)
        assert client.post("/graphql", json={"query": "{ __typename }"}).status_code == 200


# --- what requests, the cache, logins and the pool count --------------------------------------


def test_requests_are_counted_by_operation_name_and_outcome(web: httpx.Client) -> None:
    name = f"Named{uuid.uuid4().hex[:8]}"
    in_document = f"InDocument{uuid.uuid4().hex[:8]}"
    before = scrape(web)
    assert post(web, f"query {name} {{ __typename }}", name).status_code == 200
    assert post(web, f"query {name} {{ __typename }}", name).status_code == 200
    assert post(web, f"# the name is read from the document\nquery {in_document} {{ __typename }}")
    assert code(post(web, f"query {name} {{ nope }}", name).json()) == "GRAPHQL_VALIDATION_FAILED"
    refused = web.post(
        "/graphql", content=b"{ __typename }", headers={"content-type": "text/plain"}
    )
    assert code(refused.json()) == "CSRF_PREVENTED"
    after = scrape(web)

    def moved(**labels: str) -> float:
        return value(after, REQUESTS, **labels) - value(before, REQUESTS, **labels)

    assert moved(operation=name, outcome="ok") == 2
    assert moved(operation=in_document, outcome="ok") == 1
    assert moved(operation=name, outcome="GRAPHQL_VALIDATION_FAILED") == 1
    assert moved(operation="other", outcome="CSRF_PREVENTED") == 1  # refused before it was read
    latency = "trends_graphql_request_duration_seconds_count"
    assert value(after, latency, operation=name, result="ok") == 2
    assert value(after, latency, operation=name, result="error") == 1


def test_operation_names_beyond_the_limit_are_counted_as_other(
    settings: Settings, db: Database
) -> None:
    first, second, third = (f"Op{uuid.uuid4().hex[:8]}" for _ in range(3))
    with web_client(with_settings(settings, metrics_max_operations=2)) as client:
        before = scrape(client)
        # A name that has not succeeded yet takes no place: an error cannot fill the list.
        assert code(post(client, f"query {third} {{ nope }}", third).json())
        for name in (first, second, third):
            assert post(client, f"query {name} {{ __typename }}", name).status_code == 200
        after = scrape(client)
    assert value(after, REQUESTS, operation=first, outcome="ok") == 1
    assert value(after, REQUESTS, operation=second, outcome="ok") == 1
    assert (REQUESTS, frozenset({("operation", third), ("outcome", "ok")})) not in after
    other = value(after, REQUESTS, operation="other", outcome="ok")
    assert other - value(before, REQUESTS, operation="other", outcome="ok") == 1


def test_cache_hits_and_misses_are_counted_with_their_operation(web: httpx.Client) -> None:
    name = f"Cached{uuid.uuid4().hex[:8]}"
    query = f"query {name} {{ trends(first: 1) {{ totalCount }} }}"
    before = scrape(web)
    assert post(web, query, name).headers["x-trends-cache"] == "miss"
    assert post(web, query, name).headers["x-trends-cache"] == "hit"
    # A hit is clean without a look at its body; the next request of the process is looked at.
    assert code(post(web, f"query {name} {{ nope }}", name).json()) == "GRAPHQL_VALIDATION_FAILED"
    after = scrape(web)
    cache = "trends_cache_responses_total"
    for outcome, count in (("hit", 1), ("miss", 2)):  # the invalid one is a miss too
        moved = value(after, cache, outcome=outcome) - value(before, cache, outcome=outcome)
        assert moved == count, outcome
    assert value(after, REQUESTS, operation=name, outcome="ok") == 2  # the hit is a request too
    assert value(after, REQUESTS, operation=name, outcome="GRAPHQL_VALIDATION_FAILED") == 1


def test_login_failures_and_refusals_are_counted_by_reason(
    settings: Settings, db: Database
) -> None:
    make_user(db, "someone@example.org")
    with web_client(with_settings(settings, login_max_failures_per_email=1)) as client:
        before = scrape(client)
        assert code(login(client, "someone@example.org", "wrong password")) == "UNAUTHENTICATED"
        assert code(login(client, "someone@example.org")) == "TOO_MANY_REQUESTS"
        after = scrape(client)
    logins = "trends_logins_total"
    for outcome in ("invalid_credentials", "too_many_failures"):
        moved = value(after, logins, outcome=outcome) - value(before, logins, outcome=outcome)
        assert moved == 1, outcome
    assert value(after, logins, outcome="ok") == value(before, logins, outcome="ok")


def test_the_pool_gauges_show_connections_in_use(settings: Settings, db: Database) -> None:
    app = create_app(with_settings(settings, db_pool_size=3))
    with serve(app) as url, http_client(base_url=url) as client:
        found = scrape(client)
        pool: Any = app.state.db.engine.pool
        assert value(found, "trends_db_pool_size") == pool.size()
        assert app.state.db.dialect == "sqlite" or pool.size() == 3  # SQLite keeps its own size
        assert value(found, "trends_db_pool_checked_out") == 0
        with app.state.db.engine.connect():
            assert value(scrape(client), "trends_db_pool_checked_out") == 1
        assert value(scrape(client), "trends_db_pool_checked_out") == 0


# --- what the runs tables and Redis say ---------------------------------------------------------


def test_import_runs_are_reported_by_outcome_with_rows_and_time(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(csv_text([trend_row(macrotrend=f"M{i}") for i in range(3)]), newline="")
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text([trend_row(), trend_row(steepl="nonsense")]), newline="")
    import_now(db, settings, good, dry_run=True)  # a run whose rows count nowhere
    import_now(db, settings, good)
    import_now(db, settings, bad)
    with web_client(settings) as client:
        found = scrape(client)
    assert value(found, "trends_import_runs_total", outcome="succeeded") == 2
    assert value(found, "trends_import_runs_total", outcome="failed") == 1
    assert value(found, "trends_import_rows_total", kind="created") == 3
    assert value(found, "trends_import_rows_total", kind="invalid") == 1
    seconds = "trends_import_run_duration_seconds"
    assert value(found, f"{seconds}_count", outcome="succeeded") == 2
    assert 0 <= value(found, f"{seconds}_sum", outcome="succeeded") < 60
    assert value(found, "trends_metrics_source_up", source="database") == 1


def test_queue_length_and_export_runs_reflect_real_jobs(
    jobs_settings: Settings, db: Database, tmp_path: Path
) -> None:
    settings = with_settings(jobs_settings, metrics_token=TOKEN)
    path = tmp_path / "some.csv"
    path.write_text(csv_text([trend_row(macrotrend=f"M{i}") for i in range(4)]), newline="")
    import_now(db, settings, path)
    queue = settings.queues[0]
    with web_client(settings) as client:
        request_export(db, settings, ExportFormat.CSV, None, "metrics test")
        request_export(db, settings, ExportFormat.JSON, None, "metrics test")
        found = scrape(client)
        assert value(found, "trends_queue_jobs", queue=queue, state="queued") == 2
        assert value(found, "trends_export_runs_active", status="queued") == 2
        assert value(found, "trends_export_runs_total", outcome="succeeded") == 0
        assert work(settings)
        found = scrape(client)
    assert value(found, "trends_queue_jobs", queue=queue, state="queued") == 0
    assert value(found, "trends_export_runs_active", status="queued") == 0
    assert value(found, "trends_export_runs_total", outcome="succeeded") == 2
    assert value(found, "trends_export_rows_total", kind="written") == 8
    assert value(found, "trends_export_run_duration_seconds_count", outcome="succeeded") == 2
    assert value(found, "trends_metrics_source_up", source="redis") == 1


def test_sources_that_do_not_answer_are_reported_down_and_the_rest_still_served(
    settings: Settings,
) -> None:
    down = with_settings(
        settings,
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
        redis_url="redis://127.0.0.1:1/0",
    )
    with serve(create_app(down)) as url, http_client(base_url=url) as client:
        found = scrape(client)
    assert value(found, "trends_metrics_source_up", source="database") == 0
    assert value(found, "trends_metrics_source_up", source="redis") == 0
    assert any(name == "trends_web_processes" for name, _ in found)


# --- several server processes -------------------------------------------------------------------


def test_serve_prepares_the_multiprocess_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored as it was after the test
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert metrics_folder(1) is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # one process counts in memory
    made = metrics_folder(2)
    assert made is not None
    assert made.is_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(made)
    made.rmdir()
    given = tmp_path / "prometheus"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"an earlier run")
    (given / "notes.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    assert metrics_folder(2) is None  # the operator's: kept, emptied of old figures
    assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]


def _started(folder: Path) -> set[str]:
    """The server processes (pids) that have built their app."""
    started = set()
    for path in folder.glob("gauge_livesum_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            if any(s.name == "trends_web_processes" and s.value == 1 for s in metric.samples):
                started.add(path.stem.rpartition("_")[2])
    return started


def _per_process(folder: Path, operation: str) -> dict[str, float]:
    """The requests of `operation` each server process counted in its file."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            for s in metric.samples:
                if s.name == REQUESTS and s.labels.get("operation") == operation:
                    counts[path.stem.split("_")[-1]] = s.value
    return counts


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_counts_of_several_server_processes_are_summed(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    name = f"Multi{uuid.uuid4().hex[:8]}"
    # What a process of an earlier run counted: `trends serve` empties the folder at start.
    stale = MmapedDict(str(folder / "counter_4194304.db"))
    key = mmap_key(
        REQUESTS.removesuffix("_total"), REQUESTS, ["operation", "outcome"], [name, "ok"], ""
    )
    stale.write_value(key, 1000.0, 0.0)
    stale.close()
    assert _per_process(folder, name) == {"4194304": 1000.0}
    env = settings_env(settings) | {"METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [TRENDS, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    body: dict[str, Any] = {"query": f"query {name} {{ __typename }}", "operationName": name}

    def ask(_: int) -> int:  # a new connection each time, so that either process may take it
        return http_request("POST", f"{url}/graphql", json=body, timeout=10).status_code

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_request("GET", f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "trends serve did not start"
            time.sleep(0.2)
        # On a busy machine the second process may start well after the first answers: until
        # it has, the first takes every request.
        while len(_started(folder)) < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline + 60, "the second server process did not start"
            time.sleep(0.2)
        sent = 0
        spread = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while len(_per_process(folder, name)) < 2:
                assert time.monotonic() < spread, "one process took every request"
                assert set(pool.map(ask, range(16))) == {200}
                sent += 16
        # A request is counted once its response has gone: the last ones may land just after.
        while sum((per_process := _per_process(folder, name)).values()) < sent:
            assert time.monotonic() < spread + 10, f"{per_process} do not add up to {sent}"
            time.sleep(0.05)
        assert sum(per_process.values()) == sent
        for _ in range(4):  # whichever process answers the scrape, it sums both
            with http_client(base_url=url) as client:
                found = scrape(client)
            assert value(found, REQUESTS, operation=name, outcome="ok") == sent
            assert value(found, "trends_web_processes") == 2

        # A worker killed: uvicorn starts another; the dead one's counts stay in the sum, and
        # it is no longer counted among the processes.
        os.kill(int(next(iter(per_process))), signal.SIGKILL)
        while not _started(folder) - set(per_process):
            assert time.monotonic() < deadline + 60, "no process replaced the one killed"
            time.sleep(0.2)
        with http_client(base_url=url) as client:
            found = scrape(client)
        assert value(found, REQUESTS, operation=name, outcome="ok") == sent
        assert value(found, "trends_web_processes") == 2
    finally:
        process.terminate()
        process.wait(timeout=30)
