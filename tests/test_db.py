"""Database helpers: UTC times, and reads that share a bounded pool."""

import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from conftest import code, generate_csv, http_client, load, post, serve, web_client, with_settings
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from trends_gql.cli import main
from trends_gql.core.db import Database, UTCDateTime, mark_written
from trends_gql.core.models import TREND_TABLE, User
from trends_gql.core.settings import Settings, get_settings
from trends_gql.web.app import create_app

_table = sa.Table("moments", sa.MetaData(), sa.Column("at", UTCDateTime))


@pytest.fixture
def moments(db: Database) -> Iterator[Database]:
    _table.drop(db.engine, checkfirst=True)
    _table.create(db.engine)
    yield db
    _table.drop(db.engine)


def test_times_come_back_timezone_aware_in_utc(moments: Database) -> None:
    paris = timezone(timedelta(hours=1))
    with moments.engine.begin() as conn:
        conn.execute(_table.insert(), {"at": datetime(2026, 1, 1, 13, 0, tzinfo=paris)})
        stored = conn.execute(sa.select(_table.c.at)).scalar_one()
    assert stored == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert stored.utcoffset() == timedelta(0)


def test_naive_times_are_refused(moments: Database) -> None:
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime"),
        moments.engine.begin() as conn,
    ):
        conn.execute(_table.insert(), {"at": datetime(2026, 1, 1, 12, 0)})


def test_ping_answers_for_a_live_database(db: Database) -> None:
    db.ping()


def test_ping_raises_for_an_unreachable_database() -> None:
    dead = Database("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(sa.exc.OperationalError):
        dead.ping()


def test_reads_beyond_the_pool_wait_their_turn_and_all_answer(backend: Settings) -> None:
    small = Database(backend.database_url, pool_size=2)
    running: list[int] = []
    most = 0
    lock = threading.Lock()

    def hold_and_read(session: Session) -> int:
        nonlocal most
        with lock:
            running.append(1)
            most = max(most, len(running))
        time.sleep(0.05)  # so that the reads overlap
        try:
            return int(session.execute(sa.text("SELECT 1")).scalar_one())
        finally:
            with lock:
                running.pop()

    async def many() -> list[int]:
        results: list[int] = []

        async def one() -> None:
            results.append(await small.read(hold_and_read))

        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(one)
        return results

    try:
        assert anyio.run(many) == [1] * 12
        assert most == 2  # as many at once as there are connections, no more
        assert small.engine.pool.checkedout() == 0
    finally:
        small.dispose()


def test_reads_see_a_write_committed_by_another_session(db: Database) -> None:
    with db.session() as session:
        session.execute(sa.text("CREATE TABLE IF NOT EXISTS seen (n INTEGER)"))
        session.execute(sa.text("DELETE FROM seen"))
        session.commit()
    count = "SELECT count(*) FROM seen"
    try:
        assert anyio.run(db.read, lambda s: s.execute(sa.text(count)).scalar_one()) == 0
        with db.session() as session:
            session.execute(sa.text("INSERT INTO seen VALUES (1)"))
            session.commit()
        assert anyio.run(db.read, lambda s: s.execute(sa.text(count)).scalar_one()) == 1
    finally:
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE seen"))


# The commit hook: what a committed transaction wrote, whoever wrote it


@pytest.fixture
def heard(backend: Settings, db: Database) -> Iterator[tuple[Database, list[frozenset[str]]]]:
    """A database whose commit hook records the tables of each committed write."""
    tables: list[frozenset[str]] = []
    hooked = Database(backend.database_url, on_commit=tables.append)
    yield hooked, tables
    hooked.dispose()


def _add_user(session: Session) -> None:
    session.add(User(email="hooked@example.org", password_hash="-", created_at=datetime.now(UTC)))
    session.commit()


def _raw_write(session: Session) -> None:
    session.connection()  # as the import's writers, which use the driver's connection
    mark_written(session, "trend")
    session.commit()


def _rename_trends(session: Session) -> None:
    session.execute(sa.update(TREND_TABLE).values(megatrend="Hooked"))
    session.commit()


def test_the_commit_hook_hears_of_each_table_a_committed_transaction_wrote(
    heard: tuple[Database, list[frozenset[str]]],
) -> None:
    hooked, tables = heard
    hooked.call_sync(_rename_trends)  # a statement, through the session
    hooked.call_sync(_add_user)  # an object, flushed
    hooked.call_sync(_raw_write)  # behind SQLAlchemy's back, said
    assert tables == [frozenset({"trend"}), frozenset({"user"}), frozenset({"trend"})]


def test_the_commit_hook_hears_nothing_of_reads_and_rolled_back_writes(
    heard: tuple[Database, list[frozenset[str]]],
) -> None:
    hooked, tables = heard

    def roll_back_then_commit(session: Session) -> None:
        session.execute(sa.delete(TREND_TABLE))
        session.rollback()
        session.execute(sa.select(TREND_TABLE)).all()
        session.commit()

    hooked.call_sync(roll_back_then_commit)
    with hooked.session() as session:  # closed without a commit
        session.execute(sa.delete(TREND_TABLE))
    assert tables == []


def test_a_failing_commit_hook_leaves_the_commit_standing(
    backend: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(tables: frozenset[str]) -> None:
        raise RuntimeError("the hook broke")

    hooked = Database(backend.database_url, on_commit=broken)
    try:
        hooked.call_sync(_add_user)
    finally:
        hooked.dispose()
    assert db.call_sync(lambda s: s.scalars(sa.select(User.email)).all()) == ["hooked@example.org"]
    assert "the hook broke" in caplog.text


# The web's statement time limit (DB_STATEMENT_TIMEOUT_MS), on PostgreSQL

FACETS_OF_A_SEARCH = '{ trendFacets(filter: {search: "~"}) { total } }'


@pytest.fixture
def many_trends(backend: Settings, db: Database, tmp_path: Path) -> Database:
    """40,000 generated trends in the PostgreSQL database: a scan of them takes a while."""
    if backend.database_url.startswith("sqlite"):
        pytest.skip("the statement time limit is PostgreSQL's")
    assert load(db, tmp_path, generate_csv(40_000, tmp_path / "many.csv")).created == 40_000
    return db


class _Interrupt(Exception):
    """What a signal handler raises in the middle of a database call, as RQ's job timeout does."""


def _interrupted_after(seconds: float, call: Callable[[], object]) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise _Interrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        with pytest.raises(_Interrupt):  # the interruption itself, not what it left behind
            call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def one_connection(db: Database) -> Iterator[Database]:
    """The PostgreSQL database through a pool of one connection (the next call gets it again)."""
    if db.dialect == "sqlite":
        pytest.skip(
            "SQLite runs in this process: a signal's exception waits for its call to return"
        )
    one = Database(db.engine.url.render_as_string(hide_password=False), pool_size=1)
    yield one
    one.dispose()


def _select_one(session: Session) -> object:
    return session.execute(sa.text("SELECT 1")).scalar()


def test_a_statement_interrupted_by_a_signal_raises_that_and_leaves_the_pool_healthy(
    one_connection: Database,
) -> None:
    sleep = sa.text("SELECT pg_sleep(5)")
    _interrupted_after(0.2, lambda: one_connection.call_sync(lambda s: s.execute(sleep).all()))
    assert one_connection.call_sync(_select_one) == 1
    assert one_connection.engine.pool.checkedout() == 0


def _slow_commit(session: Session) -> None:
    # A deferred trigger runs at COMMIT: the interruption lands while the commit waits.
    for statement in (
        "CREATE TEMP TABLE slow_commit (x int)",
        "CREATE FUNCTION pg_temp.sleep_a_while() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON slow_commit "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.sleep_a_while()",
        "INSERT INTO slow_commit VALUES (1)",
    ):
        session.execute(sa.text(statement))
    session.commit()


def test_a_commit_interrupted_by_a_signal_raises_that_and_leaves_the_pool_healthy(
    one_connection: Database,
) -> None:
    _interrupted_after(0.5, lambda: one_connection.call_sync(_slow_commit))
    assert one_connection.call_sync(_select_one) == 1


def test_a_statement_beyond_the_web_time_limit_is_query_timeout_and_the_pool_stays_healthy(
    backend: Settings, many_trends: Database
) -> None:
    # One connection: the request after the cancelled statement gets the very same one.
    settings = with_settings(backend, db_statement_timeout_ms=50, db_pool_size=1, cache_ttl=0)
    app = create_app(settings)
    connections: list[object] = []
    sa.event.listen(app.state.db.engine, "connect", lambda conn, _: connections.append(conn))
    with serve(app) as url, http_client(base_url=url, timeout=30) as client:
        # A one-character term has no trigram: the four facet counts scan every row.
        started = time.monotonic()
        body = post(client, FACETS_OF_A_SEARCH)
        assert time.monotonic() - started < 5
        assert code(body) == "QUERY_TIMEOUT"
        assert "longer than the 50 ms this server allows" in body["errors"][0]["message"]
        assert body["data"] is None
        assert app.state.db.engine.pool.checkedout() == 0

        after = post(client, "{ trends(first: 2) { nodes { macrotrend } } }")
        assert "errors" not in after, after
        assert len(after["data"]["trends"]["nodes"]) == 2
        assert len(connections) == 1  # served by the connection whose statement was cancelled
    # Without the limit the same query answers: it was the limit that stopped it.
    unlimited = create_app(with_settings(settings, db_statement_timeout_ms=0))
    with serve(unlimited) as url, http_client(base_url=url, timeout=60) as client:
        assert post(client, FACETS_OF_A_SEARCH) == {"data": {"trendFacets": {"total": 0}}}


def test_only_the_web_process_gets_the_statement_time_limit(backend: Settings) -> None:
    settings = with_settings(backend, db_statement_timeout_ms=1234)
    web = create_app(settings).state.db
    # Workers and the CLI open their database like this: imports and exports run long.
    other = Database(settings.database_url)
    show = "SHOW statement_timeout"
    try:
        if web.dialect == "postgresql":
            assert web.call_sync(lambda s: s.execute(sa.text(show)).scalar_one()) == "1234ms"
            assert other.call_sync(lambda s: s.execute(sa.text(show)).scalar_one()) == "0"
        assert other.statement_timeout_ms == 0
    finally:
        web.dispose()
        other.dispose()


def test_the_time_limit_keeps_the_options_of_the_database_url(backend: Settings) -> None:
    if backend.database_url.startswith("sqlite"):
        pytest.skip("the statement time limit is PostgreSQL's")
    url = make_url(backend.database_url).update_query_dict({"options": "-c lock_timeout=777"})
    web = Database(url.render_as_string(hide_password=False), statement_timeout_ms=1234)
    try:
        shown = web.call_sync(
            lambda s: s.execute(
                sa.text(
                    "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
                )
            ).one()
        )
        assert tuple(shown) == ("1234ms", "777ms")
    finally:
        web.dispose()


def test_the_cli_imports_past_the_web_time_limit(
    backend: Settings,
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if backend.database_url.startswith("sqlite"):
        pytest.skip("the statement time limit is PostgreSQL's")
    monkeypatch.setenv("DATABASE_URL", backend.database_url)
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "1")  # every insert batch takes longer
    get_settings.cache_clear()
    try:
        assert main(["import", str(generate_csv(5000, tmp_path / "some.csv"))]) == 0
    finally:
        get_settings.cache_clear()
    assert "5000 created" in capsys.readouterr().out


def test_a_postgresql_that_cannot_be_reached_answers_service_unavailable(
    sqlite_settings: Settings,
) -> None:
    down = with_settings(sqlite_settings, database_url="postgresql://postgres@127.0.0.1:1/trends")
    with web_client(down) as client:
        for query in (
            "{ trends { totalCount } }",
            "{ megatrends { name } }",
            'mutation { login(email: "a@example.org", password: "whatever1") { email } }',
        ):
            response = client.post("/graphql", json={"query": query})
            assert response.status_code == 200
            body = response.json()
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", body
            assert "cannot be reached" in body["errors"][0]["message"]
        assert client.get("/healthz").status_code == 503
