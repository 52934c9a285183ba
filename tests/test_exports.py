"""Exports: the mutation queues a run, a real RQ worker writes the file, staff download it."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import sqlalchemy as sa
from conftest import (
    SAMPLE,
    code,
    load,
    login,
    make_user,
    post,
    signed_in,
    web_client,
    with_settings,
    work,
)
from rq.job import Job

from trends_gql.core.db import Database
from trends_gql.core.fields import ImpactStrength, Steepl, TechnologyReadinessLevel
from trends_gql.core.models import ExportFormat, ExportRun, RunStatus
from trends_gql.core.pagination import decode_id, encode_id
from trends_gql.core.settings import Settings
from trends_gql.exports import runs as exports
from trends_gql.exports.files import export_trends
from trends_gql.jobs.exports import export_job
from trends_gql.trends import curation
from trends_gql.trends.counts import count_trends
from trends_gql.trends.filters import TrendFilter

STAFF_EMAIL = "staff@example.org"
RUN_FIELDS = """id format status rowCount message triggeredBy createdAt startedAt finishedAt
  downloadUrl"""
EXPORT = f"""mutation($format: ExportFormat, $filter: TrendFilter) {{
  exportTrends(format: $format, filter: $filter) {{ {RUN_FIELDS} }}
}}"""
RUN = f"query($id: ID!) {{ exportRun(id: $id) {{ {RUN_FIELDS} }} }}"
RUNS = """query($first: Int, $after: String) {
  exportRuns(first: $first, after: $after) {
    edges { cursor node { id triggeredBy } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


@pytest.fixture
def web(job_env: Settings) -> Iterator[httpx.Client]:
    with web_client(job_env) as client:
        yield client


@pytest.fixture
def staff(web: httpx.Client, db: Database) -> httpx.Client:
    make_user(db, STAFF_EMAIL, staff=True)
    assert login(web, STAFF_EMAIL)["data"]
    return web


def _runs(db: Database) -> list[ExportRun]:
    return db.call_sync(lambda s: list(s.scalars(sa.select(ExportRun).order_by(ExportRun.id))))


def _finished(db: Database, settings: Settings, fmt: ExportFormat = ExportFormat.CSV) -> int:
    """The id of an export run carried out in this process (no queue)."""
    run = db.call_sync(exports.create_export_run, fmt, None, STAFF_EMAIL)
    assert run.id is not None
    assert exports.execute_export_run(db, settings, run.id).status is RunStatus.SUCCEEDED
    return run.id


def _fresh(db: Database, path: Path, fmt: str, trend_filter: TrendFilter | None = None) -> bytes:
    db.call_sync(export_trends, path, fmt, trend_filter)
    return path.read_bytes()


def _export_and_work(
    staff: httpx.Client, settings: Settings, **variables: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Request an export, let a worker carry it out; the run as queued and as finished."""
    queued = post(staff, EXPORT, **variables)["data"]["exportTrends"]
    work(settings)
    return queued, post(staff, RUN, id=queued["id"])["data"]["exportRun"]


def test_csv_export_runs_on_a_worker_and_downloads_as_a_reimportable_file(
    staff: httpx.Client, db: Database, job_env: Settings, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    before, run = _export_and_work(staff, job_env)
    assert (before["status"], before["format"], before["triggeredBy"]) == (
        "QUEUED",
        "CSV",
        STAFF_EMAIL,
    )
    assert (before["rowCount"], before["downloadUrl"], before["startedAt"]) == (None, None, None)
    assert (run["status"], run["rowCount"], run["message"]) == ("SUCCEEDED", 44, None)
    assert run["createdAt"] <= run["startedAt"] <= run["finishedAt"]
    assert run["downloadUrl"] == f"/exports/{run['id']}"

    response = staff.get(run["downloadUrl"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="trends_export_')
    assert disposition.endswith('.csv"')
    assert response.content == _fresh(db, tmp_path / "fresh.csv", "csv")
    (stored,) = (job_env.backup_dir / "exports").iterdir()
    assert f'filename="{stored.name}"' in disposition

    report = load(db, tmp_path, response.content)
    assert (report.total, report.created, report.skipped, report.invalid) == (44, 0, 44, 0)


def test_json_export_honours_the_filter(
    staff: httpx.Client, db: Database, job_env: Settings, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    wanted = TrendFilter(megatrend="ai", steepl=Steepl.T)
    expected = db.call_sync(count_trends, wanted)
    assert 0 < expected < 44
    _, run = _export_and_work(
        staff, job_env, format="JSON", filter={"megatrend": "ai", "steepl": "T"}
    )
    assert (run["format"], run["status"], run["rowCount"]) == ("JSON", "SUCCEEDED", expected)
    (stored,) = _runs(db)
    assert stored.filter == {"megatrend": "ai", "steepl": "T"}

    response = staff.get(run["downloadUrl"])
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].endswith('.json"')
    assert response.content == _fresh(db, tmp_path / "fresh.json", "json", wanted)
    records = orjson.loads(response.content)
    assert len(records) == expected
    assert {(r["megatrend"], r["steepl"]) for r in records} == {("AI", "T")}


TRENDS = """query($filter: TrendFilter) {
  trends(filter: $filter, first: 500) { nodes { id updatedAt } }
}"""


def _updated_trend(staff: httpx.Client, db: Database) -> datetime:
    """Change one trend through the curation service; its new updatedAt."""
    pk = decode_id(post(staff, TRENDS)["data"]["trends"]["nodes"][7]["id"])
    db.call_sync(lambda s: curation.update_trend(s, pk, {"steepl": "E"}, STAFF_EMAIL))
    nodes = post(staff, TRENDS)["data"]["trends"]["nodes"]
    return max(datetime.fromisoformat(n["updatedAt"]) for n in nodes)


def test_exports_honour_the_lists_bounds_and_updated_since_as_trends_does(
    staff: httpx.Client, db: Database, job_env: Settings, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    since = _updated_trend(staff, db)
    filters: list[dict[str, Any]] = [
        {"megatrendIn": ["ai", "MOBILITY"]},
        {"technologyReadinessLevelIn": ["PILOT", "DEPLOY"], "steeplIn": ["T", "L"]},
        {"impactStrengthIn": ["LOW"]},
        {"publicationsMin": 50000, "publicationsMax": 150000},
        {"patentsMin": 3873, "patentsMax": 3873},
        {"patentsMax": 20000, "megatrendIn": ["ai"], "impactStrengthIn": ["HIGH", "MEDIUM"]},
        {"updatedSince": since.astimezone(timezone(timedelta(hours=2))).isoformat()},
        {"steeplIn": []},
    ]
    queued = [post(staff, EXPORT, format="JSON", filter=f)["data"]["exportTrends"] for f in filters]
    work(job_env)
    sizes = []
    for trend_filter, run in zip(filters, queued, strict=True):
        done = post(staff, RUN, id=run["id"])["data"]["exportRun"]
        assert done["status"] == "SUCCEEDED", trend_filter
        records = orjson.loads(staff.get(done["downloadUrl"]).content)
        nodes = post(staff, TRENDS, filter=trend_filter)["data"]["trends"]["nodes"]
        assert {r["id"] for r in records} == {decode_id(n["id"]) for n in nodes}, trend_filter
        assert done["rowCount"] == len(records)
        sizes.append(len(records))
    assert all(0 < size < 44 for size in sizes[:-2]), sizes
    assert sizes[-2:] == [1, 0]  # the trend changed since; an empty list matches nothing


def test_the_stored_filter_round_trips_every_new_field(staff: httpx.Client, db: Database) -> None:
    given = {
        "megatrendIn": ["AI", "Mobility"],
        "technologyReadinessLevelIn": ["PILOT"],
        "impactStrengthIn": ["LOW", "HIGH"],
        "steeplIn": [],
        "publicationsMin": 0,
        "publicationsMax": 10,
        "patentsMin": 3,
        "patentsMax": 3,
        "updatedSince": "2026-01-31T01:30:00.25+02:00",
    }
    assert "errors" not in post(staff, EXPORT, filter=given)
    (run,) = _runs(db)
    assert run.filter == {
        "megatrend_in": ["AI", "Mobility"],
        "technology_readiness_level_in": ["Pilot"],
        "impact_strength_in": ["Low", "High"],
        "steepl_in": [],
        "publications_min": 0,
        "publications_max": 10,
        "patents_min": 3,
        "patents_max": 3,
        "updated_since": "2026-01-30T23:30:00.250000+00:00",
    }
    restored = exports.filter_from_json(run.filter)
    assert restored == TrendFilter(
        megatrend_in=("AI", "Mobility"),
        technology_readiness_level_in=(TechnologyReadinessLevel.PILOT,),
        impact_strength_in=(ImpactStrength.LOW, ImpactStrength.HIGH),
        steepl_in=(),
        publications_min=0,
        publications_max=10,
        patents_min=3,
        patents_max=3,
        updated_since=datetime(2026, 1, 30, 23, 30, 0, 250000, tzinfo=UTC),
    )
    assert restored is not None
    assert restored.updated_since is not None
    assert restored.updated_since.tzinfo is UTC
    assert exports.filter_to_json(restored) == run.filter


@pytest.mark.parametrize(
    ("trend_filter", "field"),
    [
        ({"publicationsMin": 9, "publicationsMax": 8}, "publicationsMin"),
        ({"patentsMax": -1}, "patentsMax"),
        ({"steeplIn": ["S"] * 101}, "steeplIn"),
        ({"megatrendIn": ["x"] * 101}, "megatrendIn"),
        ({"updatedSince": "2026-01-31T00:00:00"}, "updatedSince"),
    ],
)
def test_a_new_filter_field_that_cannot_be_used_is_refused_before_anything_is_queued(
    staff: httpx.Client, db: Database, trend_filter: dict[str, Any], field: str
) -> None:
    body = post(staff, EXPORT, filter=trend_filter)
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert _runs(db) == []


def test_an_empty_filter_exports_everything(
    staff: httpx.Client, db: Database, job_env: Settings, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    _, run = _export_and_work(staff, job_env, format=None, filter={})
    assert (run["format"], run["rowCount"]) == ("CSV", 44)
    assert _runs(db)[0].filter is None


def test_a_bad_filter_is_refused_before_anything_is_queued(
    staff: httpx.Client, db: Database
) -> None:
    body = post(staff, EXPORT, filter={"search": "a\x00b"})
    assert code(body) == "BAD_USER_INPUT"
    assert _runs(db) == []


def test_redis_down_answers_service_unavailable_and_leaves_no_run(
    job_env: Settings, db: Database
) -> None:
    make_user(db, STAFF_EMAIL, staff=True)
    cookies = signed_in(job_env, STAFF_EMAIL)  # logins need Redis (their limits live there)
    with web_client(with_settings(job_env, redis_url="redis://127.0.0.1:1/15")) as client:
        client.cookies = cookies
        body = post(client, EXPORT, format="JSON")
    assert body["data"] is None
    assert code(body) == "SERVICE_UNAVAILABLE"
    assert _runs(db) == []


def test_a_job_that_cannot_write_fails_the_run(
    staff: httpx.Client, db: Database, job_env: Settings, tmp_path: Path
) -> None:
    load(db, tmp_path, SAMPLE)
    job_env.backup_dir.mkdir(parents=True)
    (job_env.backup_dir / "exports").write_text("a file where the folder should be")
    _, run = _export_and_work(staff, job_env)
    assert run["status"] == "FAILED"
    assert run["message"].startswith("cannot write the file: ")
    assert (run["rowCount"], run["downloadUrl"]) == (None, None)
    assert staff.get(f"/exports/{run['id']}").status_code == 404


def test_the_job_leaves_a_finished_run_alone(db: Database, job_env: Settings) -> None:
    run_id = _finished(db, job_env)
    (path,) = (job_env.backup_dir / "exports").iterdir()
    result = export_job(run_id)
    assert (result["status"], result["rows"], result["path"]) == ("SUCCEEDED", 0, str(path))
    assert list((job_env.backup_dir / "exports").iterdir()) == [path]


ANONYMOUS_CALLS = [
    pytest.param(EXPORT, {}, id="exportTrends"),
    pytest.param(RUN, {"id": encode_id(1, "ExportRun")}, id="exportRun"),
    pytest.param(RUNS, {}, id="exportRuns"),
]


@pytest.mark.parametrize(("document", "variables"), ANONYMOUS_CALLS)
def test_graphql_fields_are_for_staff_only(
    web: httpx.Client, db: Database, document: str, variables: dict[str, Any]
) -> None:
    body = post(web, document, **variables)
    assert code(body) == "UNAUTHENTICATED"
    assert not any((body["data"] or {}).values())
    make_user(db, "reader@example.org")
    login(web, "reader@example.org")
    body = post(web, document, **variables)
    assert code(body) == "FORBIDDEN"
    assert not any((body["data"] or {}).values())
    assert _runs(db) == []


def test_downloads_are_for_staff_sessions_only(
    web: httpx.Client, db: Database, job_env: Settings
) -> None:
    url = f"/exports/{encode_id(_finished(db, job_env), 'ExportRun')}"
    response = web.get(url)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    make_user(db, "reader@example.org")
    login(web, "reader@example.org")
    response = web.get(url)
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    make_user(db, STAFF_EMAIL, staff=True)
    login(web, STAFF_EMAIL)
    assert web.get(url).status_code == 200


def test_unknown_unfinished_and_vanished_exports_are_not_found(
    staff: httpx.Client, db: Database, job_env: Settings
) -> None:
    done = _finished(db, job_env)
    waiting = db.call_sync(exports.create_export_run, ExportFormat.CSV, None, STAFF_EMAIL)
    assert waiting.id is not None
    for public_id in (
        "not-an-id",
        encode_id(done),  # a trend's id, not an export's
        encode_id(done + 100, "ExportRun"),
        encode_id(waiting.id, "ExportRun"),
    ):
        response = staff.get(f"/exports/{public_id}")
        assert response.status_code == 404, public_id
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    url = f"/exports/{encode_id(done, 'ExportRun')}"
    assert staff.get(url).status_code == 200
    for path in (job_env.backup_dir / "exports").iterdir():
        path.unlink()
    assert staff.get(url).status_code == 404


def test_export_runs_come_newest_first_in_pages(staff: httpx.Client, db: Database) -> None:
    ids = []
    for n in range(5):
        run = db.call_sync(
            exports.create_export_run, ExportFormat.JSON, None, f"user{n}@example.org"
        )
        ids.append(encode_id(run.id, "ExportRun"))
    seen: list[str] = []
    after = None
    pages = []
    while True:
        connection = post(staff, RUNS, first=2, after=after)["data"]["exportRuns"]
        page_ids = [node["id"] for node in connection["nodes"]]
        assert [edge["node"]["id"] for edge in connection["edges"]] == page_ids
        info = connection["pageInfo"]
        pages.append((len(page_ids), info["hasNextPage"], info["hasPreviousPage"]))
        seen += page_ids
        if not info["hasNextPage"]:
            break
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
        after = info["endCursor"]
    assert seen == ids[::-1]
    assert pages == [(2, True, False), (2, True, True), (1, False, True)]

    everything = post(staff, RUNS)["data"]["exportRuns"]["edges"]
    assert [e["node"]["triggeredBy"] for e in everything][:2] == [
        "user4@example.org",
        "user3@example.org",
    ]
    assert code(post(staff, RUNS, first=501)) == "BAD_USER_INPUT"
    assert code(post(staff, RUNS, after="garbage")) == "BAD_USER_INPUT"


def test_export_run_by_id(staff: httpx.Client, db: Database, job_env: Settings) -> None:
    done = _finished(db, job_env, ExportFormat.JSON)
    public_id = encode_id(done, "ExportRun")
    run = post(staff, RUN, id=public_id)["data"]["exportRun"]
    assert run["id"] == public_id
    assert (run["format"], run["status"], run["rowCount"]) == ("JSON", "SUCCEEDED", 0)
    assert run["downloadUrl"] == f"/exports/{public_id}"
    assert post(staff, RUN, id=encode_id(done + 100, "ExportRun")) == {"data": {"exportRun": None}}
    assert code(post(staff, RUN, id=encode_id(done))) == "BAD_USER_INPUT"


def test_an_export_whose_job_was_lost_reads_failed_while_a_waiting_one_stays_queued(
    staff: httpx.Client, db: Database, job_env: Settings
) -> None:
    lost = post(staff, EXPORT)["data"]["exportTrends"]
    waiting = post(staff, EXPORT, format="JSON")["data"]["exportTrends"]
    statuses = "{ exportRuns { nodes { id status message rowCount downloadUrl } } }"
    nodes = post(staff, statuses)["data"]["exportRuns"]["nodes"]
    assert [n["status"] for n in nodes] == ["QUEUED", "QUEUED"]  # no worker yet: they wait
    connection = redis.Redis.from_url(job_env.redis_url)
    try:  # as a Redis restarted without its data would lose it
        Job.fetch(_runs(db)[0].job_id or "", connection=connection).delete()
    finally:
        connection.close()
    run = post(staff, RUN, id=lost["id"])["data"]["exportRun"]
    assert (run["status"], run["rowCount"], run["downloadUrl"]) == ("FAILED", None, None)
    assert run["message"].startswith("the job of this export was lost from the queue")
    assert run["message"].endswith("no file was written")
    nodes = post(staff, statuses)["data"]["exportRuns"]["nodes"]
    assert [(n["id"], n["status"]) for n in nodes] == [
        (waiting["id"], "QUEUED"),
        (lost["id"], "FAILED"),
    ]
    work(job_env)
    assert post(staff, RUN, id=waiting["id"])["data"]["exportRun"]["status"] == "SUCCEEDED"
    assert post(staff, RUN, id=lost["id"])["data"]["exportRun"]["status"] == "FAILED"
