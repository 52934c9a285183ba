"""Query plans on PostgreSQL: the statements a piece of code sends, and how each reads a table.

For the benchmark's plan summaries and the tests that keep every documented query on an index:
`recorded` collects what an engine sends, `explain` runs EXPLAIN (ANALYZE) on one statement.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# Nodes that pass rows on as they come: a scan below a LIMIT through only these stops early.
_STREAMING = {"Gather", "Append", "Subquery Scan", "Result", "Nested Loop", "Memoize"}
_SCANS = {
    "Seq Scan",
    "Index Scan",
    "Index Only Scan",
    "Bitmap Heap Scan",
    "Bitmap Index Scan",
    "Function Scan",
    "CTE Scan",
}


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any


@dataclass
class Plan:
    """The EXPLAIN (ANALYZE) of one statement: its plan tree and time."""

    statement: Statement
    tree: dict[str, Any]
    execution_ms: float
    scans: list[str] = field(default_factory=list)
    # Sequential scans of a table that may read all of it (no LIMIT stops them early).
    unbounded: list[str] = field(default_factory=list)
    tables_read: dict[str, int] = field(default_factory=dict)  # rows the scans read, per table

    @property
    def rows_read(self) -> int:
        """The rows the scans read, in all tables."""
        return sum(self.tables_read.values())

    def summary(self) -> str:
        """One line: what each scan used, the rows the scans read, the time."""
        return (
            f"{'; '.join(self.scans)} | {self.rows_read:,} rows read | {self.execution_ms:.1f} ms"
        )


@contextmanager
def recorded(engine: Engine) -> Iterator[list[Statement]]:
    """The statements `engine` sends while the block runs."""
    seen: list[Statement] = []

    def record(conn: Any, cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        seen.append(Statement(sql, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _describe(node: dict[str, Any]) -> str:
    kind = node["Node Type"]
    if node.get("Parallel Aware"):
        kind = f"Parallel {kind}"
    if node.get("Scan Direction") == "Backward":
        kind += " Backward"
    where = f" using {node['Index Name']}" if "Index Name" in node else ""
    if "Relation Name" in node:
        where += f" on {node['Relation Name']}"
    return f"{kind}{where} ({_rows(node):,.0f} rows)"


def _rows(node: dict[str, Any]) -> float:
    """The rows a node returned, or without ANALYZE the rows it is expected to."""
    return float(node.get("Actual Rows", node.get("Plan Rows", 0)))


def _read(node: dict[str, Any]) -> int:
    removed = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
    return int((_rows(node) + removed) * node.get("Actual Loops", 1))


def _walk(node: dict[str, Any], plan: Plan, limited: bool) -> None:
    kind = node["Node Type"]
    if kind in _SCANS:
        plan.scans.append(_describe(node))
        if kind != "Bitmap Index Scan":  # its rows are read again by the heap scan above
            table = node.get("Relation Name", "?")
            plan.tables_read[table] = plan.tables_read.get(table, 0) + _read(node)
        if kind == "Seq Scan" and not limited:
            plan.unbounded.append(node.get("Relation Name", "?"))
    below = kind == "Limit" or (limited and kind in _STREAMING)
    for child in node.get("Plans", ()):
        _walk(child, plan, below)


def explain(conn: Connection, statement: Statement, *, analyze: bool = True) -> Plan:
    """The plan of `statement` with its parameters (run, when `analyze`)."""
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    result = conn.exec_driver_sql(f"EXPLAIN ({options}) {statement.sql}", statement.parameters)
    raw = result.scalar_one()
    [document] = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    plan = Plan(statement, document["Plan"], float(document.get("Execution Time", 0.0)))
    _walk(plan.tree, plan, limited=False)
    return plan
