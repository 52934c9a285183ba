"""Counts of the trends a filter matches: over the summaries where they answer, exactly."""

from pathlib import Path

import pytest
from conftest import csv_text, forbid_scans, load, sent_statements, trend_row

from trends_gql.core import fields, plans, summary
from trends_gql.core.db import Database
from trends_gql.core.fields import Steepl
from trends_gql.core.settings import Settings
from trends_gql.trends import counts, filters

# Counts around the edges of trend_count_bucket's buckets, several trends at some of them.
WIDTH = summary.BUCKET_WIDTH
EDGES = [0, 0, 1, WIDTH - 1, WIDTH, WIDTH, WIDTH + 1, 2 * WIDTH - 1, 2 * WIDTH, 3 * WIDTH + 7]
EDGES += [5 * WIDTH, 5 * WIDTH, 5 * WIDTH + WIDTH - 1, None]


def test_a_count_under_bounds_of_one_count_is_exact_whichever_buckets_they_cut(
    db: Database, tmp_path: Path
) -> None:
    made = [
        trend_row(
            challenges_and_research_gaps=f"edge {i}",
            total_count_of_publications=value,
            total_count_of_patents=None if value is None else value + WIDTH // 2,
        )
        for i, value in enumerate(EDGES)
    ]
    assert load(db, tmp_path, csv_text(made)).created == len(EDGES)
    ends = sorted({e + d for e in EDGES if e is not None for d in (-1, 0, 1) if e + d >= 0})
    with db.session() as session:
        for short, name in fields.COUNTS.items():
            stored = [row[name] for row in made if row[name] is not None]
            for low in [None, *ends]:
                for high in [None, *(e + WIDTH // 2 for e in ends)]:
                    if (low is None and high is None) or (low or 0) > (high or 2**31):
                        continue
                    bounds = filters.TrendFilter(**{f"{short}_min": low, f"{short}_max": high})
                    assert counts.Bounds.of(bounds) is not None
                    expected = [c for c in stored if (low or 0) <= c <= (high or 2**31)]
                    found = counts.count_trends(session, bounds)
                    assert found == len(expected), (short, low, high)


def test_only_a_filter_of_one_count_s_bounds_alone_is_counted_from_buckets() -> None:
    assert counts.Bounds.of(filters.TrendFilter(publications_min=1, patents_max=2)) is None
    assert counts.Bounds.of(filters.TrendFilter(publications_min=1, steepl=Steepl.T)) is None
    assert counts.Bounds.of(filters.TrendFilter(patents_min=1, search="ai")) is None
    assert counts.Bounds.of(filters.TrendFilter(patents_min=1, megatrend_in=())) is None
    assert counts.Bounds.of(filters.TrendFilter(patents_min=1, search="  ")) is not None


def test_the_count_under_a_bound_reads_only_the_trends_of_the_bucket_it_cuts(
    backend: Settings, db: Database, tmp_path: Path
) -> None:
    if backend.database_url.startswith("sqlite"):
        pytest.skip("SQLite's planner is not PostgreSQL's; the statement is the same")
    values = [i * 7 for i in range(300)]  # 0 to 2,093: 21 buckets
    made = [
        trend_row(challenges_and_research_gaps=f"n{v}", total_count_of_publications=v)
        for v in values
    ]
    assert load(db, tmp_path, csv_text(made)).created == len(values)
    low = 1000
    bounds = filters.TrendFilter(publications_min=low)
    statement = counts.count_statement(bounds, "postgresql")
    with db.session() as session:
        forbid_scans(session, "seqscan")  # a few rows: as at scale
        assert session.execute(statement).scalar_one() == len([v for v in values if v >= low])
        [sent] = sent_statements(session, lambda: session.execute(statement))
        plan = plans.explain(session.connection(), plans.Statement(*sent))
    cut = [v for v in values if low <= v < low + WIDTH]
    assert 0 < plan.tables_read["trend"] <= len(cut), plan.summary()
