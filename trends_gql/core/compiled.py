"""Statements compiled for libpq once per structure, and the rows of their results.

SQLAlchemy compiles a statement into its final SQL text, its parameters as bound and its
columns' types; libpq takes the text with numbered placeholders. Compiling a page's statement
costs several times what reading it costs: statements built again for other values (another
page, another filter) reuse the compilation of their structure, found by SQLAlchemy's cache key
as its engines find theirs (`Compilations`).

The rows are tuples readable as SQLAlchemy's rows are by the callers (by column key as
attributes, `_mapping`, by position), with the values SQLAlchemy's types would give.
"""

import re
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from psycopg import pq

Processor = Any  # SQLAlchemy's result processor of a column: value -> value


def _row_class(keys: Sequence[str]) -> Callable[..., Any]:
    """A tuple type readable as SQLAlchemy's Row: `row.key`, `row._mapping`, `row[i]`."""
    base = namedtuple("Row", keys, rename=True)  # type: ignore[misc]  # keys known at run time

    class Row(base):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(keys, self, strict=True))

    return Row


# SQLAlchemy's placeholders for psycopg (pyformat), and its escaped percent sign.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def _numbered(sql: str) -> tuple[bytes, list[str]]:
    """SQL with pyformat placeholders as libpq takes it ($1, $2...), and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql).encode(), names


class _Text:
    """A statement's final SQL text: as libpq takes it, and how its rows come back."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.query, self.names = _numbered(sql)
        # From the columns the server describes (names and types, as SQLAlchemy reads them):
        # the row type and each column's result processor, made on first use.
        self.reading: tuple[Callable[..., Any], list[tuple[int, Processor]]] | None = None


@dataclass
class CompiledRead:
    """One statement as libpq takes it, with its parameters, and how its rows come back."""

    text: _Text
    params: dict[str, Any]
    types: list[sa.types.TypeEngine[Any]]  # of the selected columns, in order
    dialect: sa.Dialect
    values: list[Any] = field(init=False)  # `params` in their placeholders' order

    def __post_init__(self) -> None:
        self.values = [self.params[name] for name in self.text.names]

    @property
    def sql(self) -> str:
        return self.text.sql

    @property
    def query(self) -> bytes:
        """`sql` with numbered placeholders."""
        return self.text.query

    def rows(self, result: pq.abc.PGresult, found: list[tuple[Any, ...]]) -> list[Any]:
        """The rows of a result, their values converted as SQLAlchemy's column types convert."""
        if self.text.reading is None:
            self.text.reading = self._reading(result)
        row, processors = self.text.reading
        make = row._make  # type: ignore[attr-defined]
        if not processors:
            return [make(values) for values in found]
        converted = []
        for values in found:
            listed = list(values)
            for i, process in processors:
                if listed[i] is not None:
                    listed[i] = process(listed[i])
            converted.append(make(listed))
        return converted

    def _reading(
        self, result: pq.abc.PGresult
    ) -> tuple[Callable[..., Any], list[tuple[int, Processor]]]:
        dialect = self.dialect
        names, oids = [], []
        for i in range(result.nfields):
            names.append((result.fname(i) or b"").decode())
            oids.append(result.ftype(i))
        processors = []
        for i, (type_, oid) in enumerate(zip(self.types, oids, strict=True)):
            process = type_.dialect_impl(dialect).result_processor(dialect, oid)
            if process is not None:
                processors.append((i, process))
        return _row_class(names), processors


# The final texts kept per structure: one per combination of its lists' lengths.
_TEXTS_MAX = 32


class _Shape:
    """What statements of one structure share: their compilation, their bind processors, the
    types of their columns, and their final SQL texts (one per length of each expanded list)."""

    def __init__(self, statement: sa.Select[Any], dialect: sa.Dialect, key: Any) -> None:
        self.key = None if key is None else key.key
        self.compiled = statement.compile(dialect=dialect, cache_key=key)
        self.processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for bind, name in self.compiled.bind_names.items()
        }
        self.types = [column.type for column in statement.selected_columns]
        self.texts: dict[str, _Text] = {}

    def text(self, sql: str) -> _Text:
        found = self.texts.get(sql)
        if found is None:
            if len(self.texts) >= _TEXTS_MAX:  # lists of many lengths: the oldest goes
                del self.texts[next(iter(self.texts))]
            found = self.texts[sql] = _Text(sql)
        return found


class Compilations:
    """Statements compiled once per structure, as SQLAlchemy's engines cache them: by its cache
    key, the statement without its values. A statement built again for new values (a cursor
    walk's next page, another filter) costs a fifth of compiling it.

    The cache key is SQLAlchemy's private `_generate_cache_key` (sqlalchemy is bounded to its
    next minor; tests/test_compiled.py fails the day it stops paying)."""

    def __init__(self, dialect: sa.Dialect, size: int = 256) -> None:
        self.dialect = dialect
        self.size = size
        self.shapes: OrderedDict[Any, _Shape] = OrderedDict()

    def read(self, statement: sa.Select[Any]) -> CompiledRead:
        """The statement compiled for psycopg, with its parameters bound as SQLAlchemy binds
        them."""
        key = statement._generate_cache_key()
        found = None if key is None else self.shapes.get(key.key)
        if found is not None:
            self.shapes.move_to_end(found.key)
            shape = found
        else:
            shape = _Shape(statement, self.dialect, key)
            if key is not None:  # None: a construct SQLAlchemy does not cache either
                self.shapes[key.key] = shape
                if len(self.shapes) > self.size:
                    self.shapes.popitem(last=False)
        compiled = shape.compiled
        if key is None:
            values = compiled.construct_params()
        else:
            # SQLAlchemy 2.1 keeps the values of statement.params() in the key, as 2.0 kept
            # them in its bind parameters.
            given = getattr(key, "params", None)
            values = compiled.construct_params(
                dict(given) if given else None, extracted_parameters=key.bindparams
            )
        expanded = compiled.construct_expanded_state(values)
        processors = {**shape.processors, **expanded.processors}
        params = {}
        for name, value in expanded.parameters.items():
            process = processors.get(name)
            params[name] = value if process is None or value is None else process(value)
        return CompiledRead(shape.text(expanded.statement), params, shape.types, self.dialect)
