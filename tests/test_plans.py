"""Query plans: every documented query reads an index or a bounded scan, never the whole table."""

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import GraphQL, generate_csv, http_client, load, post, serve, with_settings

from trends_gql.core import plans
from trends_gql.core.db import Database
from trends_gql.core.settings import Settings
from trends_gql.web.app import create_app

ROWS = 20_000
CONNECTION = "totalCount pageInfo { hasNextPage endCursor } nodes { id macrotrend steepl }"
FACETS = "total technologyReadinessLevel { value count } steepl { value count }"
FILTERS = [
    'megatrend: "AI"',
    'macrotrend: "edge ai"',
    "technologyReadinessLevel: DEPLOY",
    "impactStrength: HIGH",
    "steepl: T",
    'megatrendIn: ["AI", "Mobility"]',
    "technologyReadinessLevelIn: [PILOT, DEPLOY]",
    "impactStrengthIn: [LOW, HIGH]",
    "steeplIn: [T, E]",
    "publicationsMin: 200000",
    "publicationsMax: 1000",
    "patentsMin: 39000",
    "patentsMax: 100",
    "updatedSince: $SINCE",
    'search: "quantum"',
    'search: "batch 123)"',
    'megatrend: "ai", technologyReadinessLevel: DEPLOY, search: "energy"',
    'megatrendIn: ["AI", "Mobility"], steeplIn: [T, E], publicationsMin: 10000, '
    "updatedSince: $SINCE",
]
ORDERS = ["", ", orderBy: [{field: PUBLICATIONS, direction: DESC}]"]


def documented(since: str, cursors: dict[str, str]) -> list[str]:
    """The queries of the README and the pages: each filter, pages of walks, the aggregates."""
    filters = [f.replace("$SINCE", since) for f in FILTERS]
    found = [f"{{ trends(filter: {{{f}}}) {{ {CONNECTION} }} }}" for f in filters]
    for order in ORDERS:
        for after in ("null", cursors[order]):
            found.append(f"{{ trends(first: 100, after: {after}{order}) {{ {CONNECTION} }} }}")
    page = 'filter: {megatrend: "AI"}, orderBy: [{field: MACROTREND}], first: 100'
    found += [
        f"{{ trends({page}) {{ {CONNECTION} }} }}",
        f"{{ trendFacets {{ {FACETS} }} }}",
        f'{{ trendFacets(filter: {{megatrend: "AI"}}) {{ {FACETS} }} }}',
        "{ megatrends { name trendCount macrotrendCount } }",
        '{ macrotrendReadiness(megatrend: "AI") { macrotrend averageTrlScore } }',
    ]
    return found


def deep_cursor(gql: GraphQL, order: str) -> str:
    """The cursor after 15,000 rows of the ordering."""
    after = "null"
    for _ in range(30):
        body = gql(
            f"{{ trends(first: 500, after: {after}{order}) {{ pageInfo {{ endCursor }} }} }}"
        )
        after = json.dumps(body["data"]["trends"]["pageInfo"]["endCursor"])
    return after


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_every_documented_query_reads_an_index_or_a_bounded_scan(
    backend: Settings, db: Database, tmp_path: Path
) -> None:
    # One import, then a later one: updatedSince finds the last hundredth, as a sync does.
    generated = generate_csv(ROWS, tmp_path / "trends.csv")
    lines = generated.read_bytes().splitlines(keepends=True)
    early = tmp_path / "early.csv"
    early.write_bytes(b"".join(lines[: 1 + ROWS - ROWS // 100]))
    assert load(db, tmp_path, early, batch_size=5000).created == ROWS - ROWS // 100
    assert load(db, tmp_path, generated, batch_size=5000).created == ROWS // 100
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # FULL: earlier tests' rows, deleted, would leave the table and its indexes bloated,
        # and the planner's choices would depend on what ran before on this database.
        conn.exec_driver_sql("VACUUM (FULL, ANALYZE) trend")
        since = conn.execute(sa.text("SELECT max(updated_at) FROM trend")).scalar_one()
    # The engine records the usual way's statements; prepared reads send the very same ones
    # (tests/test_prepared.py) on connections of their own.
    app = create_app(with_settings(backend, prepared_reads=False))
    engine = app.state.db.engine
    unbounded: dict[str, list[Any]] = {}
    with serve(app) as url, http_client(base_url=url, timeout=60) as client:
        cursors = {order: deep_cursor(partial(post, client), order) for order in ORDERS}
        for query in documented(json.dumps(since.isoformat()), cursors):
            with plans.recorded(engine) as sent:
                body = post(client, query)
            assert "errors" not in body, (query, body)
            reads = [s for s in sent if "FROM trend" in s.sql]
            assert reads, f"no statement read trend for {query}"
            with engine.connect() as conn:
                found = [plans.explain(conn, s, analyze=False) for s in reads]
            if scans := [p.summary() for p in found if "trend" in p.unbounded]:
                unbounded[query] = scans
    assert unbounded == {}
