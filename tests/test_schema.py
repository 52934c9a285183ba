"""The schema: SDL drift and the contract, error codes and masking, SQL issued per request."""

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import (
    SAMPLE,
    GraphQL,
    _drop_postgres_database,
    _recreate_postgres_database,
    http_client,
    load,
    serve,
)
from graphql import build_schema, find_breaking_changes, find_dangerous_changes, print_ast
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from strawberry.printer import print_schema
from strawberry.utils.str_converters import to_camel_case

from trends_gql.core import generation
from trends_gql.core.db import Database
from trends_gql.core.fields import (
    CHOICES,
    COUNTS,
    TREND_FIELDS,
    Choice,
    Count,
    Text,
    TrendField,
)
from trends_gql.core.pagination import encode_id
from trends_gql.core.settings import Settings
from trends_gql.schema import schema, types
from trends_gql.web.app import create_app

SCHEMA_FILE = Path(__file__).parents[1] / "schema.graphql"

# The contract as agreed (only its long lines wrapped).
CONTRACT = """
scalar DateTime
enum TechnologyReadinessLevel { PILOT DEVELOPMENT DEPLOY }
enum ImpactStrength { LOW MEDIUM HIGH }
enum Steepl { S T E P L }
type Trend { id: ID!  megatrend: String!  macrotrend: String!  challengesAndResearchGaps: String!
  totalCountOfPublications: Int  totalCountOfPatents: Int
  technologyReadinessLevel: TechnologyReadinessLevel
  impactStrength: ImpactStrength!  steepl: Steepl!  relevantIndustries: String
  realWorldApplicationAndUseCases: String  uploadedAt: DateTime!  updatedAt: DateTime! }
input TrendFilter { megatrend: String  macrotrend: String
  technologyReadinessLevel: TechnologyReadinessLevel
  impactStrength: ImpactStrength  steepl: Steepl  search: String
  megatrendIn: [String!]  technologyReadinessLevelIn: [TechnologyReadinessLevel!]
  impactStrengthIn: [ImpactStrength!]  steeplIn: [Steepl!]
  publicationsMin: Int  publicationsMax: Int  patentsMin: Int  patentsMax: Int
  updatedSince: DateTime }
enum TrendOrderField { ID MEGATREND MACROTREND PUBLICATIONS PATENTS UPLOADED_AT UPDATED_AT }
enum SortDirection { ASC DESC }
input TrendOrder { field: TrendOrderField!  direction: SortDirection! = ASC }
type PageInfo { hasNextPage: Boolean!  hasPreviousPage: Boolean!
  startCursor: String  endCursor: String }
type TrendEdge { cursor: String!  node: Trend! }
type TrendConnection { totalCount: Int!  edges: [TrendEdge!]!  nodes: [Trend!]!
  pageInfo: PageInfo! }
type MegatrendSummary { name: String!  trendCount: Int!  macrotrendCount: Int! }
type MacrotrendReadiness { macrotrend: String!  trendCount: Int!  ratedCount: Int!
  averageTrlScore: Float }
type Count { value: String!  count: Int! }
type TrendFacets { total: Int!  technologyReadinessLevel: [Count!]!  impactStrength: [Count!]!
  steepl: [Count!]!  megatrend: [Count!]! }
type Query {
  trends(filter: TrendFilter, orderBy: [TrendOrder!], first: Int = 50, after: String):
    TrendConnection!
  trend(id: ID!): Trend
  megatrends: [MegatrendSummary!]!
  macrotrendReadiness(megatrend: String!): [MacrotrendReadiness!]!
  trendFacets(filter: TrendFilter): TrendFacets!
  me: User
}
type User { id: ID!  email: String!  isStaff: Boolean!  isSuperuser: Boolean!  lastLogin: DateTime }
input TrendInput { megatrend: String!  macrotrend: String!  challengesAndResearchGaps: String!
  totalCountOfPublications: Int  totalCountOfPatents: Int
  technologyReadinessLevel: TechnologyReadinessLevel
  impactStrength: ImpactStrength! = LOW  steepl: Steepl! = S  relevantIndustries: String
  realWorldApplicationAndUseCases: String }
input TrendPatch { megatrend: String  macrotrend: String  challengesAndResearchGaps: String
  totalCountOfPublications: Int  totalCountOfPatents: Int
  technologyReadinessLevel: TechnologyReadinessLevel
  impactStrength: ImpactStrength  steepl: Steepl  relevantIndustries: String
  realWorldApplicationAndUseCases: String }
type Mutation {
  login(email: String!, password: String!): User!
  logout: Boolean!
  createTrend(input: TrendInput!): Trend!
  updateTrend(id: ID!, input: TrendPatch!): Trend!
  deleteTrend(id: ID!): ID!
  importTrends(file: Upload!, dryRun: Boolean = false): ImportRun!
  runMediaImport: [ImportRun!]!
}
scalar Upload
type RowError { line: Int!  column: String  message: String! }
type ImportRun { id: ID!  fileName: String!  source: RunSource!  dryRun: Boolean!
  status: RunStatus!  rowsTotal: Int!  rowsProcessed: Int!  rowsCreated: Int!  rowsSkipped: Int!
  rowsInvalid: Int!
  errors: [RowError!]!  message: String  triggeredBy: String!  createdAt: DateTime!
  startedAt: DateTime  finishedAt: DateTime }
enum RunSource { UPLOAD MEDIA CLI }
enum RunStatus { QUEUED RUNNING SUCCEEDED FAILED }
type ImportRunEdge { cursor: String!  node: ImportRun! }
type ImportRunConnection { edges: [ImportRunEdge!]!  nodes: [ImportRun!]!  pageInfo: PageInfo! }
extend type Query {
  importRuns(first: Int = 20, after: String): ImportRunConnection!
  importRun(id: ID!): ImportRun
}
enum ExportFormat { CSV JSON }
type ExportRun { id: ID!  format: ExportFormat!  status: RunStatus!  rowCount: Int  message: String
  triggeredBy: String!  createdAt: DateTime!  startedAt: DateTime  finishedAt: DateTime
  downloadUrl: String }
type ExportRunEdge { cursor: String!  node: ExportRun! }
type ExportRunConnection { edges: [ExportRunEdge!]!  nodes: [ExportRun!]!  pageInfo: PageInfo! }
extend type Query {
  exportRun(id: ID!): ExportRun
  exportRuns(first: Int = 20, after: String): ExportRunConnection!
}
extend type Mutation { exportTrends(format: ExportFormat = CSV, filter: TrendFilter): ExportRun! }
"""


# The SDL


def test_schema_graphql_matches_the_code() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    # `strawberry export-schema --output` writes the printed schema plus a newline.
    if print_schema(schema) + "\n" != committed:
        pytest.fail("schema.graphql is out of date: run make schema")


def test_schema_graphql_keeps_every_type_and_field_of_the_contract() -> None:
    contract = build_schema(CONTRACT)
    exported = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))
    # Breaking: a type, field, argument or enum value of the contract missing or retyped.
    # Additions are allowed: the contract's names are fixed, not exhaustive.
    assert find_breaking_changes(contract, exported) == []
    # Dangerous: a default of the contract (first: 50, direction: ASC) changed.
    assert find_dangerous_changes(contract, exported) == []


# The declared trend fields (core/fields.py), spelled out in Trend, TrendInput and TrendPatch


def graphql_type(field: TrendField) -> str:
    """The type of a declared field in Trend and TrendInput: non-null when never empty."""
    match field.rule:
        case Text():
            named = "String"
        case Count():
            named = "Int"
        case Choice(members=members):
            named = members.__name__
    return f"{named}!" if field.required or field.default is not None else named


def api_fields(type_name: str) -> dict[str, Any]:
    """The fields of an object or input type of the schema, by name, in their order."""
    fields: dict[str, Any] = build_schema(print_schema(schema)).type_map[type_name].fields
    return fields


def data_fields(type_name: str) -> list[tuple[str, str]]:
    """The fields of a type with their types, but the id and the times of a Trend."""
    skipped = ("id", "uploadedAt", "updatedAt")
    return [(n, str(f.type)) for n, f in api_fields(type_name).items() if n not in skipped]


def test_trend_types_have_the_declared_fields_in_their_order() -> None:
    declared = [(to_camel_case(f.name), graphql_type(f)) for f in TREND_FIELDS]
    assert data_fields("Trend") == declared
    assert data_fields("TrendInput") == declared
    assert data_fields("TrendPatch") == [(name, kind.rstrip("!")) for name, kind in declared]


def test_trend_input_defaults_are_those_of_the_declared_rules() -> None:
    nodes = {name: f.ast_node.default_value for name, f in api_fields("TrendInput").items()}
    defaults = {name: node and print_ast(node) for name, node in nodes.items()}
    assert defaults == {
        to_camel_case(f.name): f.default.name if f.default else None if f.required else "null"
        for f in TREND_FIELDS
    }


def test_each_field_of_an_enum_is_a_filter_and_a_facet() -> None:
    filters, facets = dict(data_fields("TrendFilter")), dict(data_fields("TrendFacets"))
    for name, members in CHOICES.items():
        assert (filters[to_camel_case(name)], facets[to_camel_case(name)]) == (
            members.__name__,
            "[Count!]!",
        )
    chosen = {name: next(iter(members)) for name, members in CHOICES.items()}
    query = types.TrendFilter(**chosen).to_query()
    assert {name: getattr(query, name) for name in CHOICES} == chosen


def test_each_enum_field_has_a_list_filter_and_each_count_field_bounds() -> None:
    filters = dict(data_fields("TrendFilter"))
    for name, members in CHOICES.items():
        assert filters[f"{to_camel_case(name)}In"] == f"[{members.__name__}!]"
    assert filters["megatrendIn"] == "[String!]"
    for short in COUNTS:
        assert (filters[f"{short}Min"], filters[f"{short}Max"]) == ("Int", "Int")
    chosen = {f"{name}_in": list(members) for name, members in CHOICES.items()}
    query = types.TrendFilter(**chosen, megatrend_in=["AI"], publications_max=3).to_query()
    assert {name: getattr(query, name) for name in chosen} == {
        name: tuple(values) for name, values in chosen.items()
    }
    assert (query.megatrend_in, query.publications_max) == (("AI",), 3)


# Error codes


def codes(body: dict[str, Any]) -> list[str]:
    assert body.get("errors"), body
    return [e["extensions"]["code"] for e in body["errors"]]


@pytest.mark.parametrize(
    "document",
    ["{ trends(first: 1 { totalCount } }", "{", "query { trends { totalCount }", "}{"],
)
def test_a_syntax_error_is_graphql_parse_failed(gql: GraphQL, document: str) -> None:
    body = gql(document)
    assert body["data"] is None
    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert body["errors"][0]["message"].startswith("Syntax Error")


@pytest.mark.parametrize(
    "document",
    [
        "{ nope }",
        "{ trends { totalCount colour } }",
        "{ trends(last: 5) { totalCount } }",
        '{ trends(first: "five") { totalCount } }',
        "{ trends(first: 2147483648) { totalCount } }",
        "{ trends(orderBy: [{field: COLOUR}]) { totalCount } }",
        "{ trends(filter: {steepl: X}) { totalCount } }",
        '{ trends(filter: {colour: "red"}) { totalCount } }',
        "{ trend { id } }",
        "{ trends }",
        "query($f: Nope) { trends(filter: $f) { totalCount } }",
        "query($m: String) { macrotrendReadiness(megatrend: $m) { macrotrend } }",
        "{ trends { ...F } } fragment F on Trend { id }",
        "query A { megatrends { name } } query A { megatrends { name } }",
        "{ megatrends { name } } { megatrends { name } }",
    ],
)
def test_an_invalid_document_is_graphql_validation_failed(gql: GraphQL, document: str) -> None:
    body = gql(document)
    assert body["data"] is None
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}


FILTERED = "query($f: TrendFilter) { trends(filter: $f) { totalCount } }"
ORDERED = "query($o: [TrendOrder!]) { trends(orderBy: $o) { totalCount } }"
PAGED = "query($n: Int) { trends(first: $n) { totalCount } }"
ONE = "query($id: ID!) { trend(id: $id) { id } }"


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        pytest.param(FILTERED, {"f": {"steepl": "X"}}, id="unknown enum value"),
        pytest.param(FILTERED, {"f": {"technologyReadinessLevel": "Pilot"}}, id="enum by value"),
        pytest.param(FILTERED, {"f": {"colour": "red"}}, id="unknown input field"),
        pytest.param(ORDERED, {"o": [{"field": "COLOUR"}]}, id="unknown order field"),
        pytest.param(ORDERED, {"o": [{"direction": "DESC"}]}, id="missing order field"),
        pytest.param(PAGED, {"n": "five"}, id="text for Int"),
        pytest.param(PAGED, {"n": 2**31}, id="Int beyond 32 bits"),
        pytest.param(ONE, {}, id="missing required variable"),
        pytest.param(ONE, {"id": None}, id="null for ID!"),
        pytest.param(
            "query($m: String!) { macrotrendReadiness(megatrend: $m) { macrotrend } }",
            {"m": 5},
            id="number for String",
        ),
        pytest.param(
            # Allowed by validation (the field has a default), refused when the null arrives.
            "query($d: SortDirection) "
            "{ trends(orderBy: [{field: MEGATREND, direction: $d}]) { totalCount } }",
            {"d": None},
            id="null into a non-null field with a default",
        ),
    ],
)
def test_variables_of_the_wrong_type_are_bad_user_input(
    gql: GraphQL, document: str, variables: dict[str, Any]
) -> None:
    body = gql(document, variables)
    assert body["data"] is None
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] != "Internal server error"


def test_refused_arguments_are_bad_user_input_naming_the_argument(gql: GraphQL) -> None:
    cases = {
        "{ trends(first: 501) { totalCount } }": "first",
        "{ trends(first: -1) { totalCount } }": "first",
        '{ trends(after: "garbage") { totalCount } }': "after",
        '{ trend(id: "garbage") { id } }': "id",
        '{ macrotrendReadiness(megatrend: "AI\\u0000") { macrotrend } }': "megatrend",
        '{ trendFacets(filter: {search: "\\u0000"}) { total } }': "search",
    }
    for document, field in cases.items():
        body = gql(document)
        assert codes(body) == ["BAD_USER_INPUT"], document
        assert body["errors"][0]["extensions"]["field"] == field


def test_an_unexpected_error_is_masked_for_the_client_and_logged(
    backend: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A real app over a database it cannot use: one that was never migrated. (One that cannot
    # be reached is SERVICE_UNAVAILABLE: tests/test_db.py.)
    url = make_url(backend.database_url)
    if url.get_backend_name() == "sqlite":
        broken = f"sqlite:///{tmp_path / 'never_migrated.db'}"
    else:
        broken = url.set(database=f"{url.database}_never_migrated").render_as_string(
            hide_password=False
        )
        _recreate_postgres_database(broken)
    app = create_app(backend.model_copy(update={"database_url": broken}))
    caplog.set_level(logging.ERROR, logger="trends_gql.errors")
    with serve(app) as base, http_client(base_url=base, timeout=30) as client:
        response = client.post("/graphql", json={"query": "{ megatrends { name } }"})
    assert response.status_code == 200
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "Internal server error",
                "locations": [{"line": 1, "column": 3}],
                "path": ["megatrends"],
                "extensions": {"code": "INTERNAL_SERVER_ERROR"},
            }
        ],
    }
    if url.get_backend_name() != "sqlite":
        _drop_postgres_database(broken)
    for leak in ("Traceback", "SELECT", "FROM", "sqlite", "psycopg", "never_migrated"):
        assert leak not in response.text
    logged = [r for r in caplog.records if r.name == "trends_gql.errors" and r.exc_info]
    assert len(logged) == 1
    # SQLite: OperationalError (no such table); PostgreSQL: ProgrammingError (UndefinedTable).
    assert isinstance(logged[0].exc_info[1], sa.exc.DBAPIError)  # type: ignore[index]


# SQL per request


@pytest.fixture
def statements(app: Starlette, gql: GraphQL) -> Iterator[list[str]]:
    """SQL statements the served app executes from now on."""
    gql("{ megatrends { name } }")  # the engine has connected before we count
    generation.bump(app.state.settings)  # and what that read kept does not answer for the test
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = app.state.db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    app.state.reads.observers.append(seen.append)  # prepared reads' statements on PostgreSQL
    yield seen
    app.state.reads.observers.remove(seen.append)
    sa.event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def sample(db: Database, tmp_path: Path) -> None:
    assert load(db, tmp_path, SAMPLE).created == 44


EVERYTHING = """
query($first: Int) {
  trends(first: $first, orderBy: [{field: MEGATREND}]) {
    totalCount
    edges { cursor node { id megatrend macrotrend challengesAndResearchGaps
      totalCountOfPublications totalCountOfPatents technologyReadinessLevel impactStrength
      steepl relevantIndustries realWorldApplicationAndUseCases uploadedAt updatedAt } }
    nodes { id megatrend macrotrend steepl }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def test_a_page_costs_at_most_two_statements_whatever_its_size(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    for first in (0, 1, 10, 43, 44, 500):
        statements.clear()
        body = gql(EVERYTHING, {"first": first})
        assert len(body["data"]["trends"]["nodes"]) == min(first, 44)
        assert body["data"]["trends"]["totalCount"] == 44
        # A first page that holds every trend counts them itself.
        assert len(statements) == (1 if first >= 44 else 2), (first, statements)


COUNTED = """query($filter: TrendFilter, $first: Int, $after: String) {
  trends(filter: $filter, first: $first, after: $after) { totalCount nodes { id } }
}"""


@pytest.mark.parametrize(
    "trend_filter",
    [{"megatrend": "AI"}, {"search": "energy"}, {"publicationsMin": 1000}],
    ids=["summarised", "search", "bound"],
)
def test_a_first_page_that_holds_every_match_is_its_count(
    gql: GraphQL, sample: None, statements: list[str], trend_filter: dict[str, Any]
) -> None:
    everything = gql(COUNTED, {"filter": trend_filter, "first": 500})["data"]["trends"]
    matches = len(everything["nodes"])
    assert 2 < matches < 44
    statements.clear()
    assert gql(COUNTED, {"filter": trend_filter, "first": 400})["data"]["trends"] == everything
    assert everything["totalCount"] == matches
    assert len(statements) == 1, statements
    # A page after a cursor, or one with more after it, holds only some: they are counted.
    for variables in ({"first": 500, "after": _cursor_of(gql, trend_filter)}, {"first": 1}):
        statements.clear()
        page = gql(COUNTED, {"filter": trend_filter, **variables})["data"]["trends"]
        assert page["totalCount"] == matches
        assert len(statements) == 2, statements


def _cursor_of(gql: GraphQL, trend_filter: dict[str, Any]) -> str:
    """The cursor of the first match."""
    query = "query($f: TrendFilter) { trends(filter: $f, first: 1) { edges { cursor } } }"
    return str(gql(query, {"f": trend_filter})["data"]["trends"]["edges"][0]["cursor"])


def test_a_page_without_total_count_costs_one_statement(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    for first in (1, 44):
        statements.clear()
        gql("query($n: Int) { trends(first: $n) { edges { node { id } } } }", {"n": first})
        assert len(statements) == 1
        assert "count(" not in statements[0].lower()


def test_each_other_query_costs_one_statement(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    some_id = gql("{ trends(first: 1) { nodes { id } } }")["data"]["trends"]["nodes"][0]["id"]
    documents = [
        f'{{ trend(id: "{some_id}") {{ id megatrend uploadedAt }} }}',
        "{ megatrends { name trendCount macrotrendCount } }",
        '{ macrotrendReadiness(megatrend: "ai") { macrotrend averageTrlScore } }',
        "{ trendFacets { total technologyReadinessLevel { value count } impactStrength "
        "{ value count } steepl { value count } megatrend { value count } } }",
    ]
    for document in documents:
        statements.clear()
        body = gql(document)
        assert "errors" not in body, body
        assert len(statements) == 1, document


def test_trends_asked_by_id_in_one_document_are_read_together(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    ids = [n["id"] for n in gql("{ trends(first: 3) { nodes { id } } }")["data"]["trends"]["nodes"]]
    missing = encode_id(10**9)
    statements.clear()
    fields = " ".join(f'a{i}: trend(id: "{pk}") {{ id megatrend }}' for i, pk in enumerate(ids))
    body = gql(f'{{ {fields} gone: trend(id: "{missing}") {{ id megatrend }} }}')
    assert [body["data"][f"a{i}"]["id"] for i in range(3)] == ids
    assert body["data"]["gone"] is None
    assert len(statements) == 1
    body = gql(
        f'{{ a: trend(id: "{ids[0]}") {{ macrotrend }} b: trend(id: "{ids[1]}") {{ steepl }} }}'
    )
    assert set(body["data"]) == {"a", "b"}
    assert len(statements) == 3  # one per set of columns
    again = gql(f"{{ {fields} __typename }}")  # another document: the rows come from the cache
    assert [again["data"][f"a{i}"]["id"] for i in range(3)] == ids
    assert len(statements) == 3


def columns_read(statements: list[str]) -> set[str]:
    return set(re.findall(r"\btrend\.(\w+)", " ".join(statements)))


def test_a_list_loads_only_the_selected_columns(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    gql("{ trends(first: 5) { nodes { megatrend } } }")
    assert columns_read(statements) == {"id", "megatrend"}
    assert "challenges_and_research_gaps" not in " ".join(statements)


def test_a_list_loads_the_columns_of_fragments_and_of_the_ordering(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    body = gql(
        """
        { trends(first: 5, orderBy: [{field: PUBLICATIONS, direction: DESC}]) {
            edges { cursor node { ...Names ... on Trend { steepl } } } } }
        fragment Names on Trend { macrotrend }
        """
    )
    assert "errors" not in body, body
    assert columns_read(statements) == {"id", "macrotrend", "steepl", "total_count_of_publications"}


def test_a_single_trend_loads_only_the_selected_columns(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    some_id = gql("{ trends(first: 1) { nodes { id } } }")["data"]["trends"]["nodes"][0]["id"]
    statements.clear()
    body = gql(f'{{ trend(id: "{some_id}") {{ relevantIndustries }} }}')
    assert body["data"]["trend"]["relevantIndustries"]
    assert columns_read(statements) == {"id", "relevant_industries"}


def test_a_repeated_list_field_loads_the_union_of_its_selections(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    body = gql(
        "{ trends(first: 3) { nodes { megatrend } } "
        "trends(first: 3) { nodes { macrotrend } totalCount } }"
    )
    assert "errors" not in body, body
    nodes = body["data"]["trends"]["nodes"]
    assert all(set(n) == {"megatrend", "macrotrend"} and n["macrotrend"] for n in nodes)
    assert body["data"]["trends"]["totalCount"] == 44
    assert columns_read(statements) == {"id", "megatrend", "macrotrend"}


def test_aliased_list_fields_load_their_own_columns(
    gql: GraphQL, sample: None, statements: list[str]
) -> None:
    body = gql(
        "{ a: trends(first: 2) { nodes { megatrend } } "
        "b: trends(first: 2) { ... on TrendConnection { totalCount nodes { steepl } } } }"
    )
    assert "errors" not in body, body
    assert body["data"]["b"]["totalCount"] == 44
    # The two fields resolve concurrently: their statements come in either order. The count
    # is a sum over trend_summary.
    selects = [s for s in statements if "FROM trend_summary" not in s]
    assert len(selects) == 2
    assert {frozenset(columns_read([s])) for s in selects} == {
        frozenset({"id", "megatrend"}),
        frozenset({"id", "steepl"}),
    }
