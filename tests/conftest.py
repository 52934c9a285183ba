"""Fixtures: real SQLite and PostgreSQL databases, the real app served by uvicorn over HTTP."""

import asyncio
import csv
import fcntl
import gc
import io
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import sqlalchemy as sa
import uvicorn
from browsing import browser, page, pytest_runtest_makereport, site, worker  # noqa: F401
from rq import Queue, SimpleWorker
from rq_scheduler import Scheduler
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import SQLModel
from starlette.applications import Starlette

from trends_gql.accounts import users
from trends_gql.cli import migrate
from trends_gql.core import fields, summary
from trends_gql.core.db import Database
from trends_gql.core.models import TREND_COUNT_BUCKET_TABLE, TREND_SUMMARY_TABLE, TREND_TABLE
from trends_gql.core.settings import Settings, get_settings
from trends_gql.imports.csvio import HEADERS
from trends_gql.imports.ingest import ImportReport, import_trends
from trends_gql.jobs.schedule import PREFIX
from trends_gql.web.app import create_app
from trends_gql.web.transport import OneWriteHttpTools

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "trends_sample.csv"
GENERATOR = DATA / "make_trends_csv.py"
# Under pytest-xdist each worker process (gw0, gw1, ...) has a PostgreSQL database of its own;
# Redis keys of tests are namespaced per test or per process, so the workers share its database.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/trends_test"
)
if WORKER:
    _url = make_url(TEST_DATABASE_URL)
    TEST_DATABASE_URL = _url.set(database=f"{_url.database}_{WORKER}").render_as_string(
        hide_password=False
    )
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ["sqlite", "postgresql"]

# This process is a test environment, as the `trends` processes it starts are (settings_env):
# among others, passwords are hashed with argon2's cheapest parameters (users.password_hasher).
os.environ["TRENDS_ENV"] = "test"
get_settings.cache_clear()

_pg_problem: list[str] = []


def _admin(url: str, *statements: str) -> None:
    """Run statements on the server's `postgres` database; {db} names the database of `url`."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        for statement in statements:
            conn.execute(statement.format(db=f'"{parsed.database}"'))


def _recreate_postgres_database(url: str) -> None:
    _admin(url, "DROP DATABASE IF EXISTS {db} WITH (FORCE)", "CREATE DATABASE {db}")


def _drop_postgres_database(url: str) -> None:
    _admin(url, "DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def make_settings(database_url: str, tmp: Path) -> Settings:
    """Settings of a test process: its own database, Redis logical database and folders."""
    return Settings(
        trends_env="test",
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        secret_key="test-secret-key",
        media_dir=tmp / "media",
        backup_dir=tmp / "backups",
        import_batch_size=7,  # small, so that tests cross batch boundaries
        cache_namespace=f"trends-test-{uuid.uuid4().hex[:8]}",  # one per database
        # Of its own too, so that test processes sharing the Redis database never meet.
        queues=[f"trends-test-{uuid.uuid4().hex[:8]}"],
        rate_limit_namespace=new_rate_namespace(),
        # Pub/sub channels are shared by all logical databases of a Redis: one prefix each.
        pubsub_namespace=f"trends-test-{uuid.uuid4().hex[:8]}",
        # The whole suite calls one app from 127.0.0.1; tests of the limits make apps of their own.
        rate_limit_anon=0,
        rate_limit_user=0,
        # A login is refused, and live changes are not followed, when Redis does not answer in
        # time: on a busy machine a new connection can take longer than production's 0.25 s and
        # 1 s (tests of stalls set their own).
        rate_limit_timeout=5,
        pubsub_timeout=5,
    )


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a migrated, empty database of each backend."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'trends.db'}"
    else:
        url = TEST_DATABASE_URL
        try:
            _recreate_postgres_database(url)
        except psycopg.OperationalError as exc:
            message = f"PostgreSQL at {make_url(url).render_as_string()} is unreachable: {exc}"
            if os.environ.get("CI"):
                pytest.fail(f"{message} (CI requires PostgreSQL)")
            _pg_problem.append(message)
            pytest.skip(message)
    settings = make_settings(url, tmp)
    migrate(settings)
    return settings


def empty_tables(database: Database) -> None:
    """Delete every row of every table, in one committed transaction."""
    with database.session() as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            session.execute(sa.delete(table))
        session.commit()


@pytest.fixture(scope="session")
def backend_database(backend: Settings) -> Iterator[Database]:
    """The backend's database, as the app's: a committed write to trends invalidates."""
    database = Database.of(backend)
    yield database
    database.dispose()


@pytest.fixture
def db(backend_database: Database) -> Database:
    """The backend's database, every table emptied before the test."""
    empty_tables(backend_database)  # a write like any other: cached answers of the last test go
    return backend_database


# One TLS context for every client: httpx would load the CA bundle for each new client (about
# 30 ms of CPU each, for servers that all speak plain HTTP).
_TLS = ssl.create_default_context()


def http_client(**kwargs: Any) -> httpx.Client:
    """An httpx client as `httpx.Client(**kwargs)`, without its cost of a TLS context."""
    return httpx.Client(verify=_TLS, **kwargs)


def http_request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request, as `httpx.request`, without its cost of a TLS context."""
    return httpx.request(method, url, verify=_TLS, **kwargs)


# uvicorn takes about 0.18 s to stop (a tick of 0.1 s, then a grace of 0.1 s), all of it waiting:
# a test does not wait for its servers to stop. A few stop meanwhile, and each holds database
# connections, so a new one waits for the oldest beyond that.
_STOPPING: deque[threading.Thread] = deque()
_MAX_STOPPING = 4


def join_stopped_servers(keep: int = 0) -> None:
    """Wait until the served apps have stopped, lifespan included (all but the `keep` newest)."""
    while len(_STOPPING) > keep:
        thread = _STOPPING.popleft()
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not stop within 10 s"


def pytest_sessionfinish() -> None:
    join_stopped_servers()


@contextmanager
def serve(app: Starlette, http: type[asyncio.Protocol] = OneWriteHttpTools) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port on 127.0.0.1, its HTTP protocol `http` (the one
    `trends serve` uses); yield its base URL. It stops after, while the tests go on."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", http=http
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        _STOPPING.append(thread)
        join_stopped_servers(_MAX_STOPPING)


@pytest.fixture(scope="session")
def app(backend: Settings) -> Starlette:
    """The real app of the backend, as `server` serves it (its engine: `app.state.db.engine`)."""
    return create_app(backend)


@pytest.fixture(scope="session")
def server(app: Starlette) -> Iterator[str]:
    """Base URL of the real app, served by uvicorn on a free port on 127.0.0.1."""
    with serve(app) as url:
        yield url


@pytest.fixture
def client(server: str, db: Database) -> Iterator[httpx.Client]:
    """An HTTP client of the served app, whose database starts empty."""
    with http_client(base_url=server, timeout=30) as c:
        yield c


GraphQL = Callable[..., dict[str, Any]]


@pytest.fixture
def gql(client: httpx.Client) -> GraphQL:
    """POST a GraphQL document; return the decoded response body."""

    def post(query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = client.post("/graphql", json={"query": query, "variables": variables or {}})
        assert response.status_code == 200, response.text
        return response.json()

    return post


PASSWORD = "correct horse battery"
LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { id email isStaff isSuperuser lastLogin }
}"""


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, what uvicorn serves on (older anyio would also try trio)."""
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def post(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    """POST a GraphQL document with variables; the decoded body of a 200 answer."""
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Run the login mutation; the client keeps the session cookie."""
    return post(client, LOGIN, email=email, password=password)


def signed_in(settings: Settings, email: str) -> httpx.Cookies:
    """The session cookie of a login through an app of `settings` (any app of its database
    accepts it: sessions live in the database)."""
    with web_client(settings) as client:
        body = login(client, email)
        assert "errors" not in body, body
        return httpx.Cookies(client.cookies)


def code(body: dict[str, Any]) -> str:
    """The code of the first error of a response."""
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"]


def make_user(db: Database, email: str, **roles: bool) -> None:
    """Create a user (password PASSWORD) through the users service."""
    db.call_sync(lambda s: users.create_user(s, email, PASSWORD, **roles))


def csv_text(rows: Sequence[Mapping[str, Any]], delimiter: str = ";") -> str:
    """A CSV document in the pipeline's format; missing fields are empty cells."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(HEADERS.values())
    for row in rows:
        writer.writerow(["" if row.get(f) is None else row[f] for f in HEADERS])
    return out.getvalue()


def trend_row(**fields: Any) -> dict[str, Any]:
    """A valid record; keyword arguments override its fields."""
    row: dict[str, Any] = {
        "megatrend": "AI",
        "macrotrend": "Edge AI",
        "challenges_and_research_gaps": "High energy consumption",
        "total_count_of_publications": 10,
        "total_count_of_patents": 2,
        "technology_readiness_level": "Pilot",
        "impact_strength": "High",
        "steepl": "T",
        "relevant_industries": "Automotive",
        "real_world_application_and_use_cases": "Route optimisation",
    }
    row.update(fields)
    return row


def load(db: Database, tmp_path: Path, content: str | bytes | Path, **kwargs: Any) -> ImportReport:
    """Import a CSV (text, bytes or a file) through the import service."""
    if isinstance(content, Path):
        path = content
    else:
        path = tmp_path / f"import_{time.monotonic_ns()}.csv"
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)
    with db.session() as session:
        return import_trends(session, path, **kwargs)


def summary_matches(session: Session) -> int:
    """The trend count, once the summaries are found to hold exactly the counts a GROUP BY of
    trend gives (each key once, none of zero): trend_summary, and trend_count_bucket where it
    is kept (empty where it is not)."""
    key = [TREND_TABLE.c[name] for name in summary.KEY]
    grouped = session.execute(sa.select(*key, sa.func.count()).group_by(*key)).all()
    kept = TREND_SUMMARY_TABLE.c
    rows = session.execute(sa.select(*(kept[name] for name in summary.KEY), kept.trend_count))
    assert sorted(map(tuple, rows), key=repr) == sorted(map(tuple, grouped), key=repr)
    buckets = []
    if summary.buckets_kept(session.get_bind().dialect.name):
        for short, name in fields.COUNTS.items():
            bucket = TREND_TABLE.c[name] // summary.BUCKET_WIDTH
            counted = sa.select(sa.literal(short), bucket, sa.func.count()).where(
                bucket.is_not(None)
            )
            buckets += session.execute(counted.group_by(bucket)).all()
    kept = TREND_COUNT_BUCKET_TABLE.c
    rows = session.execute(sa.select(kept.count_name, kept.bucket, kept.trend_count))
    assert sorted(map(tuple, rows)) == sorted(map(tuple, buckets))
    return sum(row[-1] for row in grouped)


def sent_statements(session: Session, run: Callable[[], object]) -> list[tuple[str, Any]]:
    """The SQL statements, with their parameters, that `run` sends through `session`."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def forbid_scans(session: Session, *scans: str) -> None:
    """Plan the transaction's statements without these kinds of scan (`seqscan`, ...)."""
    for scan in scans:
        session.execute(sa.text(f"SET LOCAL enable_{scan} = off"))
    # A plan costed as disabled passes jit_above_cost: compiling each would take 0.1 s.
    session.execute(sa.text("SET LOCAL jit = off"))


# Generated files, made once per test run for all its processes (pytest_configure): a 100,000-row
# file takes a second of CPU to generate, and each worker used to make its own.
GENERATED = "TRENDS_TEST_GENERATED"


def pytest_configure() -> None:
    if not WORKER:  # the run's first process; xdist's workers inherit its environment
        os.environ[GENERATED] = tempfile.mkdtemp(prefix="trends-tests-generated-")


def pytest_unconfigure() -> None:
    if not WORKER:
        shutil.rmtree(os.environ.pop(GENERATED), ignore_errors=True)


def generate_csv(rows: int, out: Path, *args: str) -> Path:
    """A deterministic file from the pipeline's generator, copied to `out`."""
    folder = Path(os.environ[GENERATED])
    made = folder / "_".join([str(rows), *args]).replace("/", "_")
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process generates; the others wait, then copy
        if not made.exists():
            part = folder / f"{made.name}.part"
            command = [sys.executable, str(GENERATOR), str(rows), str(part), *args]
            subprocess.run(command, check=True)
            part.rename(made)
    shutil.copyfile(made, out)
    return out


def new_rate_namespace() -> str:
    """A rate-limit key prefix (`rate_limit_namespace`) no other test or test run uses."""
    return f"trends:rl:test:{uuid.uuid4().hex}"


def delete_keys(namespace: str) -> None:
    """Delete the test Redis keys under a namespace (of rate limits, persisted queries...)."""
    client = redis.Redis.from_url(TEST_REDIS_URL)
    keys = list(client.scan_iter(f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def rate_namespace() -> Iterator[str]:
    """A rate-limit namespace of the test's own, emptied afterwards."""
    namespace = new_rate_namespace()
    yield namespace
    delete_keys(namespace)


@pytest.fixture(scope="session")
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a migrated SQLite database, for apps of tests that need no other backend."""
    tmp = tmp_path_factory.mktemp("sqlite-app")
    settings = make_settings(f"sqlite:///{tmp / 'trends.db'}", tmp)
    migrate(settings)
    return settings


def with_settings(settings: Settings, **overrides: Any) -> Settings:
    """A copy of `settings` with overrides, validated like settings from the environment."""
    return Settings(**{**settings.model_dump(), **overrides})


@contextmanager
def web_client(
    settings: Settings, clock: Callable[[], float] = time.time
) -> Iterator[httpx.Client]:
    """A client of a new app of `settings`, served by uvicorn."""
    with (
        serve(create_app(settings, clock=clock)) as url,
        http_client(base_url=url, timeout=10) as client,
    ):
        yield client


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll `condition` until it is true; its value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.02)
    return value


def pytest_collection_finish() -> None:
    """Out of the collector's way what the imports built, and collect young objects less often:
    about a tenth less CPU for the tests that run in this process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


_UNGROUPED = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)  # after xdist's own, which names each item's group in its id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail the tests that `--dist loadgroup` would not keep on their group's worker."""
    if not config.getoption("loadgroup", False):  # set in xdist's workers only
        return
    for item in items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
            item.stash[_UNGROUPED] = (
                "pytest-xdist does not keep this test's xdist_group on one worker with this "
                "pytest: tests that share global state would run at once (see pyproject.toml)"
            )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _UNGROUPED in item.stash:
        pytest.fail(item.stash[_UNGROUPED], pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for message in sorted(set(_pg_problem)):
        terminalreporter.write_line(f"PostgreSQL tests SKIPPED: {message}", yellow=True, bold=True)


TRENDS = str(Path(sys.executable).with_name("trends"))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a `trends` process these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        TRENDS_ENV=settings.trends_env,
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        SECRET_KEY=settings.secret_key or "",
        QUEUES=",".join(settings.queues),
        MEDIA_DIR=str(settings.media_dir),
        BACKUP_DIR=str(settings.backup_dir),
        IMPORT_BATCH_SIZE=str(settings.import_batch_size),
        IMPORT_INTERVAL=str(settings.import_interval),
        IMPORT_SETTLE_SECONDS=str(settings.import_settle_seconds),
        CACHE_TTL=str(settings.cache_ttl),
        CACHE_NAMESPACE=settings.cache_namespace,
        CACHE_TIMEOUT=str(settings.cache_timeout),
        JOB_TIMEOUT=str(settings.job_timeout),
        DB_STATEMENT_TIMEOUT_MS=str(settings.db_statement_timeout_ms),
        RATE_LIMIT_TIMEOUT=str(settings.rate_limit_timeout),
        RATE_LIMIT_ANON=str(settings.rate_limit_anon),
        RATE_LIMIT_USER=str(settings.rate_limit_user),
        RATE_LIMIT_NAMESPACE=settings.rate_limit_namespace,
        PUBSUB_NAMESPACE=settings.pubsub_namespace,
        PUBSUB_TIMEOUT=str(settings.pubsub_timeout),
    )
    return env


@pytest.fixture(scope="module")
def module_jobs_settings(
    backend: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings with a queue, media and backup folders and a rate-limit namespace of the test
    module's own: its tests run one after the other, and share the apps made of them."""
    tmp = tmp_path_factory.mktemp("jobs")
    settings = with_settings(
        backend,
        queues=[f"test-{uuid.uuid4().hex[:10]}"],
        media_dir=tmp / "media",
        backup_dir=tmp / "backups",
        rate_limit_namespace=new_rate_namespace(),
        import_batch_size=5000,
    )
    yield settings
    delete_keys(settings.rate_limit_namespace)


@pytest.fixture
def jobs_settings(module_jobs_settings: Settings, db: Database) -> Iterator[Settings]:
    """Settings with a queue, media and backup folders: those of the module, as new for each test
    (folders absent at its start; its jobs and its rate-limit counts gone after it)."""
    settings = module_jobs_settings
    for folder in (settings.media_dir, settings.backup_dir):
        shutil.rmtree(folder, ignore_errors=True)
    yield settings
    delete_queue_keys(settings.queues[0])
    delete_keys(settings.rate_limit_namespace)


@pytest.fixture
def job_env(jobs_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test's job settings, also in this process's environment, where jobs read them."""
    for name, value in (
        ("DATABASE_URL", jobs_settings.database_url),
        ("REDIS_URL", jobs_settings.redis_url),
        ("BACKUP_DIR", str(jobs_settings.backup_dir)),
        ("QUEUES", ",".join(jobs_settings.queues)),
    ):
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield jobs_settings
    get_settings.cache_clear()


class InProcessWorker(SimpleWorker):
    """RQ's SimpleWorker, deaf to the commands RQ sends workers over Redis: a burst in a test
    has no time to take one, and leaving their channel costs a second (RQ waits for its thread)."""

    def subscribe(self) -> None:
        pass


@contextmanager
def trends_environment(settings: Settings) -> Iterator[None]:
    """Meanwhile this process's environment (and so its settings) is that of a `trends` process
    with these settings: what jobs and commands run here read."""
    environment = os.environ.copy()
    os.environ.clear()
    os.environ.update(settings_env(settings))
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environment)
        get_settings.cache_clear()


def work(settings: Settings, worker_class: type[SimpleWorker] = InProcessWorker) -> bool:
    """Carry out the jobs of the test's queue in this process with `worker_class`, until the
    queue is empty; whether any job ran. Jobs read their settings from the environment, so the
    environment of `trends worker` with these settings is theirs while they run."""
    connection = redis.Redis.from_url(settings.redis_url)
    queues = [Queue(name, connection=connection) for name in settings.queues]
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with trends_environment(settings):
            return worker_class(queues, connection=connection).work(burst=True)
    finally:
        for sig, handler in handlers.items():  # the worker's own stop their process on Ctrl-C
            signal.signal(sig, handler)
        connection.close()


def work_in_a_worker_process(
    settings: Settings, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a real RQ worker (`trends worker --burst`) until the test's queue is empty."""
    result = subprocess.run(
        [TRENDS, "worker", "--burst"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result


def delete_queue_keys(name: str) -> None:
    """Delete an RQ queue of the test Redis with its registries and every job they list."""
    connection = redis.Redis.from_url(TEST_REDIS_URL)
    queue = Queue(name, connection=connection)
    registries = [
        queue.started_job_registry,
        queue.finished_job_registry,
        queue.failed_job_registry,
        queue.deferred_job_registry,
        queue.scheduled_job_registry,
        queue.canceled_job_registry,
    ]
    job_ids = {*queue.get_job_ids(), *(i for r in registries for i in r.get_job_ids())}
    marks = tuple(f":{i}".encode() for i in job_ids)
    # One pass over RQ's keys, a thousand a round trip (SCAN's default is ten).
    rq_keys = list(connection.scan_iter("rq:*", count=1000))
    keys = [k for k in rq_keys if k.endswith(b":" + name.encode()) or any(m in k for m in marks)]
    # Burst workers leave their (expiring) record behind when they stop.
    workers = connection.scan_iter("rq:worker:*", count=1000, _type="hash")
    mine = [k for k in workers if connection.hget(k, "queues") == name.encode()]
    keys += [*mine, *(k + b":executions" for k in mine)]
    queue.delete(delete_jobs=True)
    if keys:
        connection.delete(*keys)
    connection.close()


@contextmanager
def other_database(backend: Settings, tmp: Path, name: str = "other") -> Iterator[Settings]:
    """Settings of a second, migrated and empty database of the backend's kind; dropped after."""
    if make_url(backend.database_url).get_backend_name() == "sqlite":
        url = f"sqlite:///{tmp / f'{name}.db'}"
    else:
        parsed = make_url(TEST_DATABASE_URL)
        url = parsed.set(database=f"{parsed.database}_{name}").render_as_string(hide_password=False)
        _recreate_postgres_database(url)
    settings = with_settings(backend, database_url=url)
    migrate(settings)
    try:
        yield settings
    finally:
        if not url.startswith("sqlite"):
            _drop_postgres_database(url)


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    """An rq-scheduler on the test Redis (queue schedule-test); our periodic jobs go after."""
    connection = redis.Redis.from_url(TEST_REDIS_URL)
    scheduler = Scheduler(queue_name="schedule-test", connection=connection)
    yield scheduler
    for job in scheduler.get_jobs():
        if job.id.startswith(PREFIX):
            scheduler.cancel(job)
            job.delete()
    connection.close()


@pytest.fixture(scope="module")
def staff_server(module_jobs_settings: Settings) -> Iterator[str]:
    """Base URL of an app of the module's job settings, served for the module's `staff` tests
    (an app per test would cost a start and a stop each)."""
    with serve(create_app(module_jobs_settings)) as url:
        yield url


@pytest.fixture
def staff(
    jobs_settings: Settings, module_jobs_settings: Settings, db: Database, staff_server: str
) -> Iterator[httpx.Client]:
    """A staff member's client of an app with the test's queue and folders."""
    assert jobs_settings == module_jobs_settings, "the shared app serves the module's settings"
    make_user(db, "staff@example.org", staff=True)
    with http_client(base_url=staff_server, timeout=10) as client:
        login(client, "staff@example.org")
        yield client
