"""Statements compiled once per structure read each their own values, and cost less to read
again than to compile."""

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from trends_gql.core.compiled import Compilations
from trends_gql.core.fields import Steepl
from trends_gql.trends import aggregates, counts, filters, queries

DIALECT = postgresql.psycopg.dialect()
COLUMNS = ["megatrend", "steepl", "uploaded_at"]


def _page(**fields: Any) -> sa.Select[Any]:
    trend_filter = filters.TrendFilter(**fields)
    return queries.page_query(trend_filter=trend_filter, columns=COLUMNS, first=20).statement


def test_a_statement_of_a_compiled_structure_has_its_own_values() -> None:
    statements = [
        _page(megatrend_in=("AI",), publications_min=1),
        _page(megatrend_in=("AI", "Robotics", "Mobility"), publications_min=1000),
        _page(megatrend_in=("Robotics",), publications_min=None, patents_max=3),
        _page(steepl_in=(Steepl.S, Steepl.T), search="energy"),
        _page(steepl_in=(Steepl.E,), search="100%_off"),
        counts.count_statement(filters.TrendFilter(megatrend="AI"), DIALECT.name),
        counts.count_statement(filters.TrendFilter(megatrend="Robotics"), DIALECT.name),
        counts.count_statement(filters.TrendFilter(patents_min=150), DIALECT.name),
        counts.count_statement(filters.TrendFilter(patents_min=3_150), DIALECT.name),
        # Values given by statement.params()
        aggregates.readiness_statement("AI"),
        aggregates.readiness_statement("Robotics"),
    ]
    kept = Compilations(DIALECT)
    for statement in statements * 2:
        cached, fresh = kept.read(statement), Compilations(DIALECT).read(statement)
        assert (cached.sql, cached.params, cached.values) == (fresh.sql, fresh.params, fresh.values)
    assert len(kept.shapes) < len(statements)


def test_compilations_are_bounded_least_recently_used_first() -> None:
    kept = Compilations(DIALECT, size=2)
    first, second, third = (sa.select(sa.literal_column(str(i))) for i in range(3))
    for statement in (first, second, first, third):
        kept.read(statement)
    assert list(kept.shapes) == [first._generate_cache_key().key, third._generate_cache_key().key]


def test_a_statement_built_again_for_new_values_costs_less_than_compiling_it() -> None:
    # Why statements are compiled once per structure (SQLAlchemy's private cache key): the day
    # this fails, the key costs as much as compiling, and the cache should go.
    statements = [_page(megatrend=f"m{i}", publications_min=i) for i in range(400)]
    kept = Compilations(DIALECT)
    kept.read(statements[0])
    read, compiled = [], []
    # Interleaved, the least of each: a busy machine slows both alike. This thread's CPU only:
    # served apps of earlier tests may still be stopping in others.
    for round_ in range(4):
        started = time.thread_time()
        for statement in statements[100 * round_ : 100 * round_ + 50]:
            kept.read(statement)
        read.append(time.thread_time() - started)
        started = time.thread_time()
        for statement in statements[100 * round_ + 50 : 100 * round_ + 100]:
            statement.compile(dialect=DIALECT)
        compiled.append(time.thread_time() - started)
    assert min(read) < min(compiled) / 2, (read, compiled)


def test_the_texts_of_one_structure_are_bounded() -> None:
    kept = Compilations(DIALECT)
    for length in range(1, 41):  # an expanding IN list of each length: a final text each
        statement = queries.trends_statement(range(length), COLUMNS)
        read, fresh = kept.read(statement), Compilations(DIALECT).read(statement)
        assert (read.sql, read.params) == (fresh.sql, fresh.params)
    (shape,) = kept.shapes.values()
    assert len(shape.texts) == 32
