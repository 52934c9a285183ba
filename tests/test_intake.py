"""Ways in for files, through real RQ workers: uploads, the media scan, dead workers."""

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    SAMPLE,
    TRENDS,
    InProcessWorker,
    code,
    csv_text,
    generate_csv,
    login,
    make_user,
    post,
    settings_env,
    signed_in,
    trend_row,
    wait_for,
    web_client,
    with_settings,
    work,
    work_in_a_worker_process,
)
from rq.timeouts import BaseDeathPenalty

from trends_gql.core.db import Database
from trends_gql.core.pagination import encode_id
from trends_gql.core.settings import Settings
from trends_gql.imports import intake
from trends_gql.imports import runs as import_runs

RUN_FIELDS = """id fileName source dryRun status rowsTotal rowsProcessed rowsCreated rowsSkipped
  rowsInvalid errors { line column message } message triggeredBy createdAt startedAt finishedAt"""
UPLOAD = f"""mutation($file: Upload!, $dryRun: Boolean) {{
  importTrends(file: $file, dryRun: $dryRun) {{ {RUN_FIELDS} }}
}}"""
RUN = f"query($id: ID!) {{ importRun(id: $id) {{ {RUN_FIELDS} }} }}"
SCAN = f"mutation {{ runMediaImport {{ {RUN_FIELDS} }} }}"
PREFLIGHT = {"GraphQL-Require-Preflight": "1"}
PAGE = """query($after: String) {
  importRuns(first: 2, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } }
}"""


def upload(
    client: httpx.Client,
    content: bytes,
    name: str = "trends.csv",
    dry_run: bool = False,
    status: int = 200,
) -> dict[str, Any]:
    """POST a GraphQL multipart request (the upload spec) for importTrends.

    Built by hand, so that the file name reaches the server byte for byte (httpx escapes it).
    """
    operations = {"query": UPLOAD, "variables": {"file": None, "dryRun": dry_run}}
    boundary = "trends-test-boundary"
    parts = [
        ("operations", None, json.dumps(operations).encode()),
        ("map", None, json.dumps({"0": ["variables.file"]}).encode()),
        ("0", name, content),
    ]
    body = b""
    for field, filename, value in parts:
        disposition = f'form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    headers = {**PREFLIGHT, "content-type": f"multipart/form-data; boundary={boundary}"}
    response = client.post("/graphql", content=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def run_of(client: httpx.Client, run_id: str) -> dict[str, Any]:
    """The import run with that id, as GraphQL shows it to staff."""
    return post(client, RUN, id=run_id)["data"]["importRun"]


def total(client: httpx.Client) -> int:
    """How many trends the API reports."""
    return post(client, "{ trends { totalCount } }")["data"]["trends"]["totalCount"]


def files(folder: Path) -> list[str]:
    """Names in a folder, sorted."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_upload_is_queued_and_imported_by_a_worker(
    staff: httpx.Client, jobs_settings: Settings
) -> None:
    queued = upload(staff, SAMPLE.read_bytes(), "sample.csv")["data"]["importTrends"]
    assert (queued["status"], queued["source"], queued["fileName"]) == (
        "QUEUED",
        "UPLOAD",
        "sample.csv",
    )
    assert queued["triggeredBy"] == "staff@example.org"
    assert total(staff) == 0
    work_in_a_worker_process(jobs_settings)  # end to end, as deployed
    run = run_of(staff, queued["id"])
    assert run["status"] == "SUCCEEDED", run
    assert (run["rowsTotal"], run["rowsProcessed"], run["rowsCreated"]) == (44, 44, 44)
    assert run["startedAt"] <= run["finishedAt"]
    assert total(staff) == 44
    media = jobs_settings.media_dir
    assert files(media / "incoming") == []
    assert len(files(media / "processed")) == 1


def test_a_dry_run_counts_and_writes_nothing(staff: httpx.Client, jobs_settings: Settings) -> None:
    queued = upload(staff, SAMPLE.read_bytes(), dry_run=True)["data"]["importTrends"]
    assert queued["dryRun"] is True
    work(jobs_settings)
    run = run_of(staff, queued["id"])
    assert (run["status"], run["rowsCreated"], run["rowsSkipped"]) == ("SUCCEEDED", 44, 0)
    assert total(staff) == 0


def test_the_same_file_again_is_all_skipped_without_reading_it(
    staff: httpx.Client, jobs_settings: Settings
) -> None:
    first = upload(staff, SAMPLE.read_bytes())["data"]["importTrends"]
    work(jobs_settings)
    again = upload(staff, SAMPLE.read_bytes())["data"]["importTrends"]
    work(jobs_settings)
    run = run_of(staff, again["id"])
    assert (run["status"], run["rowsCreated"], run["rowsSkipped"]) == ("SUCCEEDED", 0, 44)
    assert "imported by run" in run["message"]
    assert run_of(staff, first["id"])["rowsCreated"] == 44
    assert total(staff) == 44


BAD_FILES = [
    pytest.param(b"", "the file is empty", id="empty"),
    pytest.param(csv_text([]).encode(), "no data rows", id="header-only"),
    pytest.param(bytes(range(256)) * 4, "NUL bytes", id="binary"),
    pytest.param(b"name;colour\r\nx;red\r\n", "header not recognised", id="wrong-columns"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_an_unreadable_upload_fails_its_run_and_keeps_the_file(
    staff: httpx.Client, jobs_settings: Settings, content: bytes, message: str
) -> None:
    queued = upload(staff, content)["data"]["importTrends"]
    work(jobs_settings)
    run = run_of(staff, queued["id"])
    assert run["status"] == "FAILED"
    assert message in run["message"]
    failed = jobs_settings.media_dir / "failed"
    [kept, report] = files(failed)
    assert report == kept + ".errors.json"
    assert (failed / kept).read_bytes() == content
    assert message in json.loads((failed / report).read_text())["message"]


def test_invalid_rows_fail_the_run_with_their_errors(
    staff: httpx.Client, jobs_settings: Settings
) -> None:
    content = csv_text([trend_row(), trend_row(steepl="Q"), trend_row(megatrend="")]).encode()
    queued = upload(staff, content)["data"]["importTrends"]
    work(jobs_settings)
    run = run_of(staff, queued["id"])
    assert (run["status"], run["rowsInvalid"], run["rowsCreated"]) == ("FAILED", 2, 0)
    assert [(e["line"], e["column"]) for e in run["errors"]] == [(3, "STEEPL"), (4, "Megatrend")]
    assert total(staff) == 0


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(
    jobs_settings: Settings, db: Database
) -> None:
    settings = with_settings(jobs_settings, upload_max_bytes=1000)
    make_user(db, "staff@example.org", staff=True)
    with web_client(settings) as client:
        login(client, "staff@example.org")
        body = upload(client, b"x" * 1001)
        assert code(body) == "BAD_USER_INPUT"
        assert body["errors"][0]["extensions"]["field"] == "file"
        assert "1000 bytes" in body["errors"][0]["message"]
        assert upload(client, SAMPLE.read_bytes()[:1000])["data"]["importTrends"]
        huge = client.post(
            "/graphql",
            files={"0": ("big.csv", b"x" * ((1 << 20) + 5000))},
            data={"operations": "{}", "map": "{}"},
            headers=PREFLIGHT,
        )
        assert huge.status_code == 413
    assert len(files(settings.media_dir / "incoming")) == 1


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("a\x00b.csv", "ab.csv"),
        ("C:\\x\\y.csv", "y.csv"),
        ("", "upload.csv"),
    ],
)
def test_the_client_file_name_is_only_data(
    staff: httpx.Client, jobs_settings: Settings, name: str, shown: str
) -> None:
    queued = upload(staff, SAMPLE.read_bytes(), name)["data"]["importTrends"]
    assert queued["fileName"] == shown
    [stored] = files(jobs_settings.media_dir / "incoming")
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{12}\.csv", stored), stored


def test_uploads_need_staff_and_the_csrf_header(jobs_settings: Settings, db: Database) -> None:
    make_user(db, "reader@example.org")
    with web_client(jobs_settings) as client:
        # Refused before the body is read (protection.Protections).
        assert code(upload(client, b"x", status=401)) == "UNAUTHENTICATED"
        login(client, "reader@example.org")
        assert code(upload(client, b"x", status=403)) == "FORBIDDEN"
        operations = {"query": UPLOAD, "variables": {"file": None}}
        response = client.post(
            "/graphql",
            data={"operations": json.dumps(operations), "map": '{"0": ["variables.file"]}'},
            files={"0": ("x.csv", b"x")},
        )
        assert response.status_code == 400
    assert files(jobs_settings.media_dir / "incoming") == []


def test_with_redis_down_uploads_are_refused_and_leave_nothing(
    jobs_settings: Settings, db: Database
) -> None:
    settings = with_settings(jobs_settings, redis_url="redis://127.0.0.1:1/0")
    make_user(db, "staff@example.org", staff=True)
    cookies = signed_in(jobs_settings, "staff@example.org")  # logins need Redis
    with web_client(settings) as client:
        client.cookies = cookies
        body = upload(client, SAMPLE.read_bytes())
        assert code(body) == "SERVICE_UNAVAILABLE"
        assert total(client) == 0
        runs = post(client, "{ importRuns { nodes { id } } }")["data"]["importRuns"]["nodes"]
        assert runs == []
    assert files(settings.media_dir / "incoming") == []


def test_import_runs_are_listed_newest_first(staff: httpx.Client, jobs_settings: Settings) -> None:
    ids = [
        upload(staff, csv_text([trend_row(macrotrend=f"M{i}")]).encode())["data"]["importTrends"][
            "id"
        ]
        for i in range(5)
    ]
    seen, after = [], None
    while True:
        page = post(
            staff,
            PAGE,
            after=after,
        )["data"]["importRuns"]
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ids[::-1]


def test_import_runs_are_for_staff_only(jobs_settings: Settings) -> None:
    with web_client(jobs_settings) as client:
        assert code(post(client, "{ importRuns { nodes { id } } }")) == "UNAUTHENTICATED"
        assert code(post(client, SCAN)) == "UNAUTHENTICATED"


# The media folder


def drop(folder: Path, name: str, content: bytes, age: float = 60) -> Path:
    """A file as the pipeline leaves it, last written `age` seconds ago."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def test_a_scan_imports_settled_csv_files_only(
    staff: httpx.Client, jobs_settings: Settings
) -> None:
    media = jobs_settings.media_dir
    drop(media, "ready.csv", SAMPLE.read_bytes())
    drop(media, "fresh.csv", csv_text([trend_row()]).encode(), age=0)
    drop(media, "partial.csv.part", csv_text([trend_row()]).encode())
    drop(media, ".hidden.csv", csv_text([trend_row()]).encode())
    drop(media, "notes.txt", b"hello")
    drop(media, "upper.CSV", csv_text([trend_row()]).encode())
    drop(media, "written.csv.tmp", csv_text([trend_row()]).encode())
    found = post(staff, SCAN)["data"]["runMediaImport"]
    assert [(r["fileName"], r["source"], r["status"]) for r in found] == [
        ("ready.csv", "MEDIA", "QUEUED")
    ]
    assert found[0]["triggeredBy"] == "staff@example.org"
    work(jobs_settings)
    assert run_of(staff, found[0]["id"])["status"] == "SUCCEEDED"
    assert total(staff) == 44
    left = set(files(media))
    assert left >= {
        "fresh.csv",
        "partial.csv.part",
        ".hidden.csv",
        "notes.txt",
        "upper.CSV",
        "written.csv.tmp",
    }
    assert "ready.csv" not in left
    assert len(files(media / "processed")) == 1


def test_a_file_claimed_half_written_leaves_its_rest_refused_not_read_as_a_header(
    staff: httpx.Client, jobs_settings: Settings
) -> None:
    rows = [trend_row(macrotrend=f"M{i}") for i in range(4)]
    whole = csv_text(rows).encode()
    cut = whole.index(b"M2")
    cut = whole.rindex(b"\r\n", 0, cut) + 2  # the writer paused after two rows
    drop(jobs_settings.media_dir, "report.csv", whole[:cut])
    [first] = post(staff, SCAN)["data"]["runMediaImport"]
    work(jobs_settings)
    assert run_of(staff, first["id"])["status"] == "SUCCEEDED"
    drop(jobs_settings.media_dir, "report.csv", whole[cut:])  # the rest, written later
    [rest] = post(staff, SCAN)["data"]["runMediaImport"]
    work(jobs_settings)
    run = run_of(staff, rest["id"])
    assert (run["status"], run["rowsCreated"]) == ("FAILED", 0)
    assert "the first line must be the header" in run["message"]
    assert "renamed when complete" in run["message"]
    assert total(staff) == 2
    [kept] = [f for f in files(jobs_settings.media_dir / "failed") if f.endswith(".csv")]
    assert (jobs_settings.media_dir / "failed" / kept).read_bytes() == whole[cut:]


def test_two_concurrent_scans_import_each_file_once(jobs_settings: Settings, db: Database) -> None:
    for i in range(12):
        drop(
            jobs_settings.media_dir,
            f"f{i:02}.csv",
            csv_text([trend_row(macrotrend=f"M{i}")]).encode(),
        )
    found: list[list[Any]] = []
    barrier = threading.Barrier(2)

    def scan() -> None:
        barrier.wait()
        found.append(intake.scan(db, jobs_settings))

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(run.file_name for runs in found for run in runs)
    assert names == [f"f{i:02}.csv" for i in range(12)]
    work(jobs_settings)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM trend").scalar_one() == 12


@pytest.mark.xdist_group("scheduler")  # rq-scheduler's keys are global to a Redis database
def test_the_scheduler_picks_up_a_dropped_file_within_one_interval(
    staff: httpx.Client, jobs_settings: Settings
) -> None:
    settings = with_settings(jobs_settings, import_interval=1, import_settle_seconds=0.5)
    env = settings_env(settings)
    procs = [
        subprocess.Popen(
            [TRENDS, cmd],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for cmd in ("scheduler", "worker")
    ]
    try:
        time.sleep(1)
        dropped = time.monotonic()
        drop(settings.media_dir, "pipeline.csv", SAMPLE.read_bytes(), age=0)
        while total(staff) < 44:
            assert time.monotonic() - dropped < 15, "not imported within 15 s"
            time.sleep(0.1)
        print(f"dropped file queryable after {time.monotonic() - dropped:.2f} s")
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)


def children(pid: int) -> list[int]:
    """Process ids of the children of `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


BIG_ROWS = 100_000  # seconds to import, even on SQLite: time to kill the worker midway
PART_ROWS = 8_000


@pytest.fixture(scope="session")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file whose import takes seconds; tests only read it."""
    return generate_csv(BIG_ROWS, tmp_path_factory.mktemp("big") / "big.csv")


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """A real `trends worker` (not burst) on the test's queue, in a session of its own."""
    return subprocess.Popen(
        [TRENDS, "worker"],
        env=settings_env(settings),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(*pids: int) -> None:
    """SIGKILL each process that is still there."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_killed_worker_leaves_no_rows_its_run_read_as_failed_and_its_file_back(
    staff: httpx.Client, jobs_settings: Settings, db: Database, big: Path
) -> None:
    drop(jobs_settings.media_dir, "big.csv", big.read_bytes())
    [queued] = post(staff, SCAN)["data"]["runMediaImport"]
    worker = start_worker(jobs_settings)
    try:
        wait_for("running", lambda: run_of(staff, queued["id"])["status"] == "RUNNING")
        if jobs_settings.database_url.startswith("postgresql"):
            # Progress is committed per batch while the import's own transaction is open: how
            # far it got, never rows created that the table does not hold yet.
            batches = 3 * jobs_settings.import_batch_size
            run = wait_for(
                "3 batches in",
                lambda: (r := run_of(staff, queued["id"]))["rowsProcessed"] >= batches and r,
            )
            assert run["status"] == "RUNNING"
            assert run["rowsProcessed"] < BIG_ROWS
            assert (run["rowsCreated"], run["rowsSkipped"]) == (0, 0)
        else:
            time.sleep(0.3)
    finally:
        # The work horse runs in a session of its own: kill it too, as a lost machine would.
        kill(*children(worker.pid), worker.pid)
        worker.wait()
    # No sweep is called, no worker or scheduler is left: reading the run is what notices.
    run = wait_for(
        "failed",
        lambda: (r := run_of(staff, queued["id"]))["status"] != "RUNNING" and r,
        timeout=10,
    )
    assert run["status"] == "FAILED"
    assert run["message"].startswith("the worker running this import stopped before it ended")
    assert run["message"].endswith("nothing was imported")
    assert (run["rowsCreated"], run["rowsSkipped"]) == (0, 0)
    if jobs_settings.database_url.startswith("postgresql"):
        assert run["rowsProcessed"] >= 3 * jobs_settings.import_batch_size  # where it stopped
    assert import_runs.sweep_import_runs(db, jobs_settings) == []  # failed once, not again
    assert total(staff) == 0
    [back] = [f for f in files(jobs_settings.media_dir) if f.endswith(".csv")]
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{12}\.csv", back), back  # a name of our own
    assert (jobs_settings.media_dir / back).read_bytes() == big.read_bytes()


def test_a_run_goes_on_when_only_its_worker_is_killed_while_its_work_horse_lives(
    staff: httpx.Client, jobs_settings: Settings, db: Database, big: Path
) -> None:
    with big.open("rb") as whole:  # a part of the big file: a second to import, more when busy
        part = b"".join(line for _, line in zip(range(PART_ROWS + 1), whole, strict=False))
    drop(jobs_settings.media_dir, "part.csv", part)
    [queued] = post(staff, SCAN)["data"]["runMediaImport"]
    worker = start_worker(jobs_settings)
    horses: list[int] = []
    try:
        wait_for("running", lambda: run_of(staff, queued["id"])["status"] == "RUNNING")
        horses = children(worker.pid)
        assert horses, "the import ended before its worker was killed: use a larger part"
        kill(worker.pid)
        worker.wait()
        # RQ's record of the worker is stale and its process gone, but the import goes on.
        assert import_runs.sweep_import_runs(db, jobs_settings) == []
        run = wait_for(
            "ended", lambda: (r := run_of(staff, queued["id"]))["status"] != "RUNNING" and r
        )
    finally:
        kill(*horses, worker.pid)
    assert (run["status"], run["message"]) == ("SUCCEEDED", None)
    assert run["rowsCreated"] == total(staff) == PART_ROWS


class _LostAlarm(BaseDeathPenalty):
    """RQ's time limit whose alarm never arrives: as when its exception is raised inside a
    finalizer, where Python only prints it (seen under load)."""

    def setup_death_penalty(self) -> None:
        pass

    def cancel_death_penalty(self) -> None:
        pass


class _AlarmLosingWorker(InProcessWorker):
    death_penalty_class = _LostAlarm


# The real alarm can land in a garbage collector's finalizer, where Python reports the exception
# as unraisable and drops it: the very case the import's own deadline check is there for.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "worker_class", [InProcessWorker, _AlarmLosingWorker], ids=["alarm", "alarm lost"]
)
def test_an_import_stopped_by_the_job_timeout_fails_with_nothing_created(
    staff: httpx.Client,
    jobs_settings: Settings,
    db: Database,
    big: Path,
    worker_class: type[InProcessWorker],
) -> None:
    settings = with_settings(jobs_settings, job_timeout=1)
    drop(settings.media_dir, "big.csv", big.read_bytes())
    [queued] = intake.scan(db, settings)
    assert queued.id is not None
    work(settings, worker_class)
    run = run_of(staff, encode_id(queued.id, "ImportRun"))
    assert run["status"] == "FAILED"
    assert run["message"] == (
        "the import ran longer than JOB_TIMEOUT (1 s) and was stopped: nothing was imported"
    )
    assert (run["rowsCreated"], run["rowsSkipped"]) == (0, 0)
    assert total(staff) == 0


def test_an_upload_of_50_mib_and_one_byte_is_refused_by_default(
    staff: httpx.Client, jobs_settings: Settings
) -> None:
    assert jobs_settings.upload_max_bytes == 50 << 20
    body = upload(staff, b"x" * ((50 << 20) + 1))
    assert code(body) == "BAD_USER_INPUT"
    assert files(jobs_settings.media_dir / "incoming") == []
    runs = post(staff, "{ importRuns { nodes { id } } }")["data"]["importRuns"]["nodes"]
    assert runs == []
