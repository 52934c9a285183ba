"""Prepared reads answer byte for byte what graphql-core's execution answers, and only then.

The same requests go to two apps on the same database, uncached: one with prepared reads, one
without (PREPARED_READS=0). Each is sent twice to the first app (the first answer proves the
document valid, the second is prepared) and once to the second, and every answer (status,
headers, body) must be the same; the prepared-read counter says which ones were prepared.
"""

import itertools
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from conftest import SAMPLE, csv_text, load, login, make_user, web_client, with_settings
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from trends_gql.core.db import Database
from trends_gql.core.models import TREND_TABLE
from trends_gql.core.pagination import encode_id
from trends_gql.core.reads import Reads
from trends_gql.core.settings import Settings
from trends_gql.schema import schema
from trends_gql.schema.limits import parse_document
from trends_gql.schema.prepared import plan, prepare

FIELDS = (
    "id megatrend macrotrend challengesAndResearchGaps totalCountOfPublications "
    "totalCountOfPatents technologyReadinessLevel impactStrength steepl relevantIndustries "
    "realWorldApplicationAndUseCases uploadedAt updatedAt"
)
PAGE = f"""query Page($filter: TrendFilter, $orderBy: [TrendOrder!], $first: Int, $after: String) {{
  trends(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {{
    totalCount
    edges {{ cursor node {{ id steepl }} }}
    nodes {{ {FIELDS} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}"""
ONE = f"query One($id: ID!) {{ trend(id: $id) {{ {FIELDS} }} }}"
COSTLY = f"{{ trends(first: 500) {{ nodes {{ {FIELDS} }} edges {{ cursor }} }} }}"
READINESS = """query Radar($m: String!) {
  macrotrendReadiness(megatrend: $m) { macrotrend trendCount ratedCount averageTrlScore }
}"""
# Text that JSON escapes, and text it does not: quotes, backslashes, tabs, accents, emoji.
ODD = [
    {
        "megatrend": "ai",
        "macrotrend": 'Edge "AI"',
        "challenges_and_research_gaps": "tab\there \\ back/slash, naïve café, 日本語, 🚀",
        "impact_strength": "Low",
        "steepl": "P",
    },
    {
        "megatrend": "Robotics",
        "macrotrend": "Cobots",
        "challenges_and_research_gaps": "Safety <certification> & cost\x01\x1f\x7f\u2028 end",
        "total_count_of_publications": 0,
        "total_count_of_patents": 7,
        "technology_readiness_level": "Deploy",
        "impact_strength": "Medium",
        "steepl": "E",
        "relevant_industries": "Manufacturing",
    },
]

Exchange = tuple[int, dict[str, str], bytes]


def answered() -> float:
    """How many requests prepared reads have answered in this process."""
    found = REGISTRY.get_sample_value("trends_prepared_reads_total", {"outcome": "answered"})
    return found or 0.0


def exchange(client: httpx.Client, body: dict[str, Any], get: bool, accept: str) -> Exchange:
    """Status, headers (but the date) and body of one request."""
    headers = {"accept": accept}
    if get:
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        headers["graphql-require-preflight"] = "1"
        response = client.get("/graphql", params=params, headers=headers)
    else:
        response = client.post("/graphql", json=body, headers=headers)
    kept = {k: v for k, v in response.headers.items() if k != "date"}
    return response.status_code, kept, response.content


@pytest.fixture
def apps(backend: Settings, db: Database, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Clients of two uncached apps on the backend's data: with prepared reads, and without."""
    load(db, tmp_path, SAMPLE)
    load(db, tmp_path, csv_text(ODD))
    # Times without microseconds, and with leading zeros in them (isoformat writes both its way).
    whole, tiny = (
        datetime(2026, 1, 31, 10, tzinfo=UTC),
        datetime(2026, 2, 1, 9, 8, 7, 5, tzinfo=UTC),
    )

    def retime(session: Session) -> None:
        odd = TREND_TABLE.c.id % 3
        session.execute(sa.update(TREND_TABLE).where(odd == 0).values(uploaded_at=whole))
        session.execute(sa.update(TREND_TABLE).where(odd == 1).values(updated_at=tiny))
        session.commit()

    db.call_sync(retime)
    # A cost budget that a page of 500 with all fields fits, and variables can go over.
    settings = with_settings(backend, cache_ttl=0, max_query_cost=8000)
    with (
        web_client(settings) as prepared,
        web_client(with_settings(settings, prepared_reads=False)) as usual,
    ):
        yield prepared, usual


def same_answers(
    apps: tuple[Any, Any], body: dict[str, Any], get: bool = False, accept: str = "*/*"
) -> tuple[float, dict[str, Any]]:
    """Send `body` twice to the prepared app and once to the other; assert that all three
    answers are equal; return how many the prepared reads answered, and the decoded body."""
    prepared, usual = apps
    before = answered()
    first = exchange(prepared, body, get, accept)
    second = exchange(prepared, body, get, accept)
    expected = exchange(usual, body, get, accept)
    assert first == expected, body
    assert second == expected, body
    return answered() - before, json.loads(expected[2])


def test_plain_reads_are_prepared_and_answer_as_graphql_core(apps: tuple[Any, Any]) -> None:
    documents = [
        f"{{ trends(first: 500) {{ nodes {{ {FIELDS} }} }} }}",
        f'{{ trends(filter: {{megatrend: "AI"}}) {{ nodes {{ {FIELDS} }} totalCount }} }}',
        '{ trends(filter: {search: "SAFETY", steeplIn: [P, E, T]}) { nodes { id steepl } } }',
        "{ trends(filter: {technologyReadinessLevelIn: []}) { totalCount nodes { id } } }",
        "{ trends(filter: {publicationsMin: 0, patentsMax: 5000}, first: 3) { totalCount } }",
        '{ trends(filter: {updatedSince: "2000-01-01T00:00:00Z"}) { totalCount } }',
        # A first page of what changed counts the matches it collected (queries.page_query).
        """{ trends(filter: {updatedSince: "2000-01-01T00:00:00Z"}, first: 3) {
             totalCount nodes { id megatrend } } }""",
        """{ trends(filter: {updatedSince: "2999-01-01T00:00:00Z", steeplIn: [T]}, first: 3) {
             totalCount nodes { id } } }""",
        "{ trends(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage endCursor } } }",
        """{ trends(orderBy: [{field: PUBLICATIONS, direction: DESC}, {field: MEGATREND}],
             first: 7) { edges { cursor node { totalCountOfPublications megatrend } } } }""",
        # Aliases, fragments, __typename and fields given twice, merged as graphql-core does.
        """query Mixed { __typename
             a: trends(first: 2) { t: totalCount nodes { ...F } nodes { megatrend id }
                                   edges { node { ... on Trend { steepl } } __typename } }
             b: trend(id: "VHJlbmQ6MQ") { ...F }
             r: macrotrendReadiness(megatrend: "ai") { __typename macrotrend n: trendCount }
             m: megatrends { n: trendCount __typename name } }
           fragment F on Trend { __typename id updatedAt technologyReadinessLevel }""",
        '{ macrotrendReadiness(megatrend: "no such megatrend") { macrotrend } }',
        "{ megatrends { name trendCount macrotrendCount } }",
        """{ trendFacets { total steepl { value count } megatrend { value count }
             technologyReadinessLevel { value count } impactStrength { count value } } }""",
        """query Facets($f: TrendFilter) { trendFacets(filter: $f) { total steepl { value } } }""",
        """{ trendFacets(filter: {search: "safety", publicationsMin: 0}) {
             total megatrend { value count } } }""",
        '{ trendFacets(filter: {megatrend: "ai", steeplIn: [E, T]}) { impactStrength { value } } }',
        '{ trend(id: "VHJlbmQ6OTk5OTk5") { id } }',  # well formed, no such row: null
    ]
    for document in documents:
        prepared, body = same_answers(apps, {"query": document})
        assert prepared == 1, document
        if document is documents[0]:  # every kind of value is in the data
            text = json.dumps(body, ensure_ascii=False)
            assert all(c in text for c in ("\\u001f", "\u2028", "🚀", ".000005+00:00", ":00+00:00"))


@pytest.mark.parametrize(
    "start",
    [
        {"orderBy": [{"field": "PATENTS", "direction": "DESC"}], "filter": {"megatrendIn": ["AI"]}},
        {"filter": {"updatedSince": "2000-01-01T00:00:00Z"}},  # ids matched first, then paged
        {"orderBy": [{"field": "UPDATED_AT"}, {"field": "MEGATREND", "direction": "DESC"}]},
    ],
)
def test_pages_walked_with_variables_are_prepared(
    apps: tuple[Any, Any], start: dict[str, Any]
) -> None:
    variables = {"first": 10, **start}
    seen = 0
    while True:
        prepared, body = same_answers(apps, {"query": PAGE, "variables": variables})
        assert prepared == (1 if seen == 0 else 2)  # the document proved valid on page 1
        page = body["data"]["trends"]
        seen += len(page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        variables = {**variables, "after": page["pageInfo"]["endCursor"]}
    assert seen == page["totalCount"] > 10


def test_gets_and_graphql_response_media_type_are_prepared(apps: tuple[Any, Any]) -> None:
    body = {"query": READINESS, "variables": {"m": "AI"}, "operationName": "Radar"}
    counts = []
    for get in (False, True):
        for accept in ("application/json", "application/graphql-response+json"):
            prepared, data = same_answers(apps, body, get=get, accept=accept)
            counts.append(prepared)
            assert data["data"]["macrotrendReadiness"]
    assert counts == [1, 2, 2, 2]


def test_the_operation_named_is_the_one_prepared(apps: tuple[Any, Any]) -> None:
    document = f"{ONE} query Other {{ trends(first: 1) {{ nodes {{ id }} }} }}"
    for name, variables in (("One", {"id": encode_id(2)}), ("Other", None)):
        body = {"query": document, "operationName": name, "variables": variables}
        prepared, data = same_answers(apps, body)
        assert prepared == 1
        assert "errors" not in data


def test_refusals_and_errors_are_answered_the_usual_way(apps: tuple[Any, Any]) -> None:
    refused = [
        ({"query": "{ trends(first: 501) { nodes { id } } }"}, "BAD_USER_INPUT"),
        ({"query": '{ trends(after: "junk") { nodes { id } } }'}, "BAD_USER_INPUT"),
        ({"query": '{ trend(id: "bad") { id } }'}, "BAD_USER_INPUT"),
        ({"query": '{ macrotrendReadiness(megatrend: "a\\u0000b") { macrotrend } }'}, None),
        ({"query": COSTLY}, "QUERY_TOO_COSTLY"),
        ({"query": f"{ONE} {READINESS}"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": ONE, "variables": {"id": 5}}, "BAD_USER_INPUT"),
        ({"query": ONE}, None),
    ]
    for body, code in refused:
        prepared, data = same_answers(apps, body)
        assert prepared == 0, body
        assert data["errors"], body
        assert code is None or data["errors"][0]["extensions"]["code"] == code


def test_a_valid_document_with_variables_it_cannot_take_is_answered_the_usual_way(
    apps: tuple[Any, Any],
) -> None:
    assert same_answers(apps, {"query": ONE, "variables": {"id": encode_id(1)}})[0] == 1
    assert same_answers(apps, {"query": PAGE, "variables": {"first": 2}})[0] == 1
    cursor = same_answers(apps, {"query": PAGE, "variables": {"first": 1}})[1]
    after = cursor["data"]["trends"]["pageInfo"]["endCursor"]
    for body in (
        {"query": ONE, "variables": {"id": "not an id"}},
        {"query": ONE, "variables": {"id": None}},
        {"query": PAGE, "variables": {"first": 500}},  # over the cost budget
        {"query": PAGE, "variables": {"after": after, "orderBy": [{"field": "MEGATREND"}]}},
        {"query": PAGE, "variables": {"filter": {"publicationsMin": -1}}},
    ):
        prepared, data = same_answers(apps, body)
        assert prepared == 0, body
        assert data["errors"], body


CONDITIONAL = """query View($m: String!, $withMegatrends: Boolean!, $noPage: Boolean!) {
  megatrends @include(if: $withMegatrends) { name trendCount }
  macrotrendReadiness(megatrend: $m) { macrotrend trendCount }
  trends(first: 3) @skip(if: $noPage) { totalCount nodes { id macrotrend } }
  again: megatrends @include(if: true) @skip(if: false) { name }
}"""


def test_root_fields_included_or_skipped_by_variables_are_prepared(
    apps: tuple[Any, Any],
) -> None:
    counts = []
    for with_megatrends in (True, False):
        for no_page in (False, True):
            variables = {"m": "AI", "withMegatrends": with_megatrends, "noPage": no_page}
            prepared, body = same_answers(apps, {"query": CONDITIONAL, "variables": variables})
            counts.append(prepared)
            assert ("megatrends" in body["data"]) is with_megatrends
            assert ("trends" in body["data"]) is not no_page
    assert counts == [1, 2, 2, 2]  # the document proved valid by its first answer


def test_selections_that_are_not_plain_are_answered_the_usual_way(apps: tuple[Any, Any]) -> None:
    for document in (
        "{ trends(first: 2) { nodes { id megatrend @include(if: true) } } }",
        "{ a: megatrends @include(if: true) { name } a: megatrends { name trendCount } }",
        '{ me { email } trend(id: "VHJlbmQ6MQ") { id } }',
        "{ __schema { queryType { name } } }",
    ):
        prepared, data = same_answers(apps, {"query": document})
        assert prepared == 0, document
        assert "errors" not in data


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_prepared_read_whose_connection_died_is_answered_the_usual_way(
    apps: tuple[Any, Any], backend: Settings
) -> None:
    body = {"query": ONE, "variables": {"id": encode_id(3)}}
    assert same_answers(apps, body)[0] == 1
    url = make_url(backend.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    usual = REGISTRY.get_sample_value("trends_prepared_reads_total", {"outcome": "usual"}) or 0
    prepared, _ = same_answers(apps, body)
    after = REGISTRY.get_sample_value("trends_prepared_reads_total", {"outcome": "usual"})
    assert (prepared, after) == (1, usual + 1)  # one fell back, the next was prepared again


@pytest.mark.parametrize("roles", [{}, {"staff": True}], ids=["user", "staff"])
def test_signed_in_reads_are_prepared_and_answer_as_graphql_core(
    apps: tuple[Any, Any], db: Database, roles: dict[str, bool]
) -> None:
    make_user(db, "someone@example.org", **roles)
    prepared, usual = apps
    assert "errors" not in login(prepared, "someone@example.org")
    usual.cookies = httpx.Cookies(prepared.cookies)  # one session: both apps read its table
    first = exchange(usual, {"query": "{ trends(first: 1) { nodes { id } } }"}, False, "*/*")
    (some,) = json.loads(first[2])["data"]["trends"]["nodes"]  # ids go on across tests
    body = {"query": ONE, "variables": {"id": some["id"]}}
    counts = []
    for get in (False, True):
        count, data = same_answers(apps, body, get=get)
        counts.append(count)
        assert data["data"]["trend"]["id"] == some["id"]
        response = exchange(usual, body, get, "*/*")
        if get:  # a signed-in answer is never public
            assert response[1]["cache-control"] == "private, no-store"
        assert "etag" not in response[1]
    assert counts == [1, 2]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_new_variables_of_a_planned_document_cost_less_to_prepare_than_planning_it(
    backend: Settings,
) -> None:
    # Each page of a cursor walk, each filter of a dashboard, has variables new to the server:
    # the JSON of the page's trends (milliseconds to build and compile) is made once, in the
    # document's plan, not again for each request's variables.
    database = Database.of(backend)
    reads = Reads(database, pool_size=1)
    document = parse_document(PAGE)
    planned = plan(schema, document, "Page", render=reads.rendering)
    assert planned is not None
    assert planned.fields[0].rendered
    numbers = itertools.count()

    def planning() -> None:
        assert plan(schema, document, "Page", render=reads.rendering) is not None

    def preparing() -> None:
        variables = {"filter": {"megatrend": f"m{next(numbers)}"}, "first": 20}
        assert prepare(schema, planned, variables, backend, reads) is not None

    plans, preparations = [], []
    try:
        for _ in range(5):  # interleaved, the least of each: a busy machine slows both alike
            plans.append(_cpu(planning))
            preparations.append(_cpu(preparing))
    finally:
        database.dispose()
    assert min(preparations) < min(plans), (preparations, plans)


def _cpu(run: Callable[[], None], times: int = 20) -> float:
    # This thread's CPU only: served apps of earlier tests may still be stopping in others.
    started = time.thread_time()
    for _ in range(times):
        run()
    return time.thread_time() - started
