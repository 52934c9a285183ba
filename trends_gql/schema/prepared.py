"""Prepared reads: repeated documents answered from compiled statements, without graphql-core.

graphql-core's execution, with Strawberry's extensions around it, costs a request several
times what its statements cost the database. A query whose root fields are reads of trends
(`trends`, `trend`, `macrotrendReadiness`, `megatrends`, `trendFacets`, `__typename`) with plain
selections (schema/completion.py; root fields may carry @skip and @include, decided with each
request's variables) is answered here instead, once it has been answered without
errors the usual way (which proves that it parses within the token limit and is valid):

- once per document and variables: the same document limits (limits.over_limits, the cost
  budget), the same coercion of variables and arguments (graphql-core's, then Strawberry's),
  the same services' statements for the same arguments (page_query, trends_statement,
  readiness_statement, MEGATRENDS, facets_statement), compiled once per structure
  (core/compiled.py; a page's JSON rendering once per document, in its plan);
- per request: the statements read on one connection (without a worker thread on
  PostgreSQL), their rows completed as graphql-core completes them (the `nodes` of a page
  rendered as JSON by PostgreSQL: schema/roots.py), encoded as the view does.

Whatever is not plain, or over a limit, or fails (an argument a service refuses, a null where
none may be, a database error) goes the usual way, which answers it, errors included.
"""

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import orjson
import sqlalchemy as sa
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    OperationDefinitionNode,
    OperationType,
    get_argument_values,
    get_directive_values,
    get_operation_ast,
    get_variable_values,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UNSET

from trends_gql.accounts.auth import is_staff
from trends_gql.cache.store import Cache
from trends_gql.core import instruments
from trends_gql.core.reads import Reads, Wanted
from trends_gql.core.settings import Settings
from trends_gql.schema import EXECUTION_CONTEXT
from trends_gql.schema.caching import request_parts
from trends_gql.schema.completion import TYPENAME, Complete, Fragments, NotPlain, collect, completer
from trends_gql.schema.complexity import Figures
from trends_gql.schema.limits import DOCUMENT_CACHE_SIZE, over_limits, parse_document
from trends_gql.schema.roots import ROOTS, FieldRead, Rendered, RootCall, Rows, rendered_nodes
from trends_gql.web.measurement import note_clean_answer, note_operation

if TYPE_CHECKING:
    from trends_gql.schema.context import View
else:
    View = object

log = logging.getLogger(__name__)
ANSWERED, USUAL = (instruments.PREPARED.labels(outcome) for outcome in ("answered", "usual"))

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class RootField:
    key: str  # the response key
    name: str
    field: GraphQLField | None  # None: __typename
    nodes: list[FieldNode]
    complete: Complete
    rendered: Rendered  # JSON columns PostgreSQL writes for it (roots.rendered_nodes)


@dataclass(frozen=True)
class Plan:
    """A valid query whose every root field is read here."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: Fragments
    fields: list[RootField]


@dataclass(frozen=True)
class Prepared:
    """A plan with its variables: its cost, its compiled statements and how to answer."""

    cost: int
    statements: Sequence[Any]  # Reads.prepare's, of every field in turn
    # Per statement, whether it is read, from the rows read before it (None: always).
    wanted: Sequence[Wanted | None]
    # Per field: its response key, the slice of the statements that are its, its value, and
    # the completion of its value.
    fields: list[tuple[str, slice, Callable[[Rows], Any], Complete]]


def plan(
    schema: Any, document: DocumentNode, operation_name: str | None, render: sa.Dialect | None
) -> Plan | None:
    """The plan of a valid document's operation; None when it is not a query read here.

    With `render` (PostgreSQL's dialect), lists of trends are rendered as JSON by the database
    where they can be.
    """
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    fragments = {}
    for node in document.definitions:
        if isinstance(node, FragmentDefinitionNode):
            if node.variable_definitions:  # fragment arguments: graphql-core's own
                return None
            fragments[node.name.value] = node
    query_type = schema._schema.query_type
    fields: list[RootField] = []
    try:
        roots = collect(query_type, [operation.selection_set], fragments, conditional=True)
        for key, group in roots.items():
            if len(group) > 1 and any(node.directives for node in group):
                return None  # graphql-core would merge only the nodes it includes
            name = group[0].name.value
            if name == TYPENAME:
                fields.append(RootField(key, name, None, group, lambda _: query_type.name, {}))
                continue
            field = query_type.fields.get(name)
            definition = field.extensions.get("strawberry-definition") if field else None
            if field is None or name not in ROOTS or not isinstance(definition, StrawberryField):
                return None
            if definition.permission_classes or definition.extensions:
                return None
            answers, rendered = (
                rendered_nodes(name, field, group, fragments, render) if render else ({}, {})
            )
            complete = completer(field.type, group, fragments, answers)
            fields.append(RootField(key, name, field, group, complete, rendered))
    except NotPlain:
        return None
    return Plan(document, operation, fragments, fields)


def prepare(
    schema: Any, plan: Plan, variables: dict[str, Any] | None, settings: Settings, reads: Reads
) -> Prepared | None:
    """The plan with these variables; None if the usual way must answer (a limit, a refusal).

    Raises what the services raise for arguments they refuse (the usual way reports them).
    """
    name = plan.operation.name.value if plan.operation.name else None
    figures = over_limits(schema._schema, plan.document, name, variables, settings)
    if not isinstance(figures, Figures) or figures.cost > settings.max_query_cost:
        return None
    definitions = plan.operation.variable_definitions or ()
    coerced = get_variable_values(schema._schema, definitions, variables or {})
    if isinstance(coerced, list):  # the variables' errors
        return None
    registry, config = schema.schema_converter.scalar_registry, schema.config
    statements: list[sa.Select[Any]] = []
    wanted: list[Wanted | None] = []
    fields = []
    for root in plan.fields:
        if not _included(root.nodes[0], coerced):
            continue  # @skip or @include, with these variables
        read = FieldRead([], lambda _: None)
        if root.field is not None:
            definition = root.field.extensions["strawberry-definition"]
            raw = get_argument_values(root.field, root.nodes[0], coerced)
            args = convert_arguments(raw, definition.arguments, registry, config)
            call = RootCall(
                root.field,
                root.nodes,
                plan.fragments,
                args,
                settings,
                root.rendered,
                reads.dialect.name,
            )
            read = ROOTS[root.name](call)
        span = slice(len(statements), len(statements) + len(read.statements))
        statements += read.statements
        wanted += [None] * len(read.statements)
        if read.last_wanted is not None:
            wanted[-1] = _of_field(read.last_wanted, span.start)
        fields.append((root.key, span, read.source, root.complete))
    return Prepared(figures.cost, reads.prepare(statements), wanted, fields)


def _of_field(last_wanted: Callable[[Rows], bool], start: int) -> Wanted:
    """A field's condition on its own rows, as one on every row read so far."""
    return lambda read: last_wanted(read[start:])


def _included(node: FieldNode, variables: Any) -> bool:
    """Whether @skip and @include keep a field, with these variables (as graphql-core decides:
    @skip first)."""
    if not node.directives:
        return True
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip and skip["if"]:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include and not include["if"])


async def answer(prepared: Prepared, reads: Reads) -> bytes:
    """The response body of a prepared request; Fallback (or any error) if not answered."""
    rows = await reads.fetch(prepared.statements, prepared.wanted) if prepared.statements else []
    data = {key: complete(source(rows[span])) for key, span, source, complete in prepared.fields}
    return orjson.dumps({"data": data})


class _Recent(Generic[K, V]):
    """The most recently used entries, at most `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


# A document's state, beside its plan (None: not seen yet).
_VALID: Literal[True] = True  # answered once without errors, so valid; not planned yet
_NONE: Literal[False] = False  # not planned here; or a preparation that is not possible


class PreparedReads(View):
    """Mixin for the Strawberry view: answer the documents it has a plan for."""

    settings: Settings
    reads: Reads
    cache: Cache
    schema: Any

    @cached_property
    def prepared_reads(self) -> bool:
        """On unless the setting says otherwise, and with the libraries the fast path is tested
        with (the plans' readers are its)."""
        return self.settings.prepared_reads and EXECUTION_CONTEXT is not None

    @cached_property
    def plans(self) -> _Recent[tuple[str, str | None], Plan | bool]:
        """(document, operation name) -> its plan, _VALID or _NONE."""
        return _Recent(DOCUMENT_CACHE_SIZE)

    @cached_property
    def preparations(self) -> _Recent[tuple[str, str | None, bytes], Prepared | bool]:
        """(document, operation name, variables) -> the prepared plan, or _NONE."""
        return _Recent(4 * DOCUMENT_CACHE_SIZE)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        run = super().run
        unset = context is UNSET and root_value is UNSET
        parts = await self._parts(request) if unset else None
        if parts is None:
            return await run(request, context, root_value)
        query, variables, operation_name = parts
        document = (query, operation_name)
        found = self.plans.get(document)
        if found is None:  # not seen yet: answered the usual way, which proves it valid
            response = await run(request, context, root_value)
            body = getattr(response, "body", None)
            if response.status_code == 200 and body is not None and b'"errors"' not in body:
                self.plans.put(document, _VALID)
            return response
        if found is _VALID:
            found = self._plan(query, operation_name) or _NONE
            self.plans.put(document, found)
        prepared = self._prepared(found, query, variables, operation_name)
        if not isinstance(prepared, Prepared):
            return await run(request, context, root_value)
        note_operation(query, operation_name)
        try:
            body = await answer(prepared, self.reads)
        except Exception as exc:  # the usual way answers it, errors included
            log.debug("prepared read answered the usual way: %r", exc)
            USUAL.inc()
            return await run(request, context, root_value)
        ANSWERED.inc()
        note_clean_answer()  # an error anywhere leaves the request to the usual way
        request.state.query_cost = prepared.cost  # as CheckedValidation charges it
        return Response(body, media_type="application/json")

    async def _parts(self, request: Any) -> tuple[str, dict[str, Any] | None, str | None] | None:
        """The request's parts when prepared reads may answer it."""
        if not self.prepared_reads:
            return None
        # Staff bypass the response cache: with the cache on, their reads are kept by resolver
        # on the usual way, which no prepared read would use.
        if self.cache.enabled and isinstance(request, Request) and is_staff(request):
            return None
        return await _request_parts(request)

    def _plan(self, query: str, operation_name: str | None) -> Plan | None:
        document = parse_document(query, max_tokens=self.settings.max_query_tokens)
        return plan(self.schema, document, operation_name, render=self.reads.rendering)

    def _prepared(
        self, found: Plan | bool, query: str, variables: Any, operation_name: str | None
    ) -> Prepared | bool:
        if not isinstance(found, Plan):
            return _NONE
        key = (query, operation_name, orjson.dumps(variables, option=orjson.OPT_SORT_KEYS))
        prepared = self.preparations.get(key)
        if prepared is None:
            try:
                prepared = prepare(self.schema, found, variables, self.settings, self.reads)
            except Exception:  # refused arguments: the usual way reports them
                prepared = None
            self.preparations.put(key, prepared or _NONE)
        return prepared or _NONE


async def _request_parts(request: Any) -> tuple[str, dict[str, Any] | None, str | None] | None:
    """A single request's (query, variables, operation name) as Strawberry reads them; None
    when it is no such request or Strawberry would refuse it."""
    parts = await request_parts(request)
    if parts is None:
        return None
    query, variables, operation_name = parts
    if request.method == "GET":
        if "extensions" in request.query_params:
            return None
        try:
            variables = None if variables is None else orjson.loads(variables)
        except orjson.JSONDecodeError:
            return None
    if variables is not None and not isinstance(variables, dict):
        return None  # refused the usual way (400)
    return query, variables or None, operation_name or None  # "": none, as JSONRefusals reads it
