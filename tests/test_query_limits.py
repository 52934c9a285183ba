"""Limits on GraphQL documents and batches, mutations over GET, introspection and GraphiQL."""

import base64
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import strawberry
from conftest import code, http_client, serve, web_client, with_settings
from graphql import get_introspection_query
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL

from trends_gql.core.ratelimit import RateLimiter
from trends_gql.core.settings import Settings
from trends_gql.schema import limits
from trends_gql.web.protection import JSONRefusals, protection_middleware

TYPENAME = {"query": "{ __typename }"}
OK = {"data": {"__typename": "Query"}}


@pytest.fixture(scope="module")
def client(sqlite_settings: Settings) -> Iterator[httpx.Client]:
    """A client of an app with the default limits."""
    with web_client(sqlite_settings) as c:
        yield c


@pytest.fixture(scope="module")
def shallow(sqlite_settings: Settings) -> Iterator[httpx.Client]:
    """A client of an app that allows a query depth of 2."""
    with web_client(with_settings(sqlite_settings, max_query_depth=2)) as c:
        yield c


def round_trip(client: httpx.Client, query: str = "{ trends { totalCount } }") -> float:
    """Seconds for a normal query to be answered: the machine's own baseline, busy or not."""
    started = time.perf_counter()
    body = client.post("/graphql", json={"query": query}).json()
    elapsed = time.perf_counter() - started
    assert "errors" not in body, body
    return elapsed


def under_attack(
    client: httpx.Client, attack: dict[str, Any], attackers: int, tries: int
) -> tuple[list[float], set[str]]:
    """Seconds of `tries` normal queries while `attackers` clients send `attack` non-stop, and
    the codes the attacks were refused with."""
    stop = threading.Event()
    refusals: list[str] = []

    def attacker() -> None:
        with http_client(base_url=str(client.base_url), timeout=30) as own:
            while not stop.is_set():
                body = own.post("/graphql", json=attack).json()
                refusals.append(body["errors"][0]["extensions"]["code"])

    threads = [threading.Thread(target=attacker) for _ in range(attackers)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while not refusals:  # the attack is under way
            assert time.monotonic() < deadline, "no attack was answered"
            time.sleep(0.02)
        latencies = [round_trip(client) for _ in range(tries)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    return latencies, set(refusals)


def refused(client: httpx.Client, query: str) -> dict[str, Any]:
    """The single error of a document refused before execution."""
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    return error


def test_a_document_over_the_token_limit_is_refused(client: httpx.Client) -> None:
    error = refused(client, "{ " + "__typename " * 1001 + "}")
    assert error["extensions"]["code"] == "TOO_MANY_TOKENS"
    assert "more than 1000 tokens" in error["message"]


def test_comments_count_as_tokens(client: httpx.Client) -> None:
    query = "{ __typename }\n"
    assert client.post("/graphql", json={"query": query + "#\n" * 990}).json() == OK
    error = refused(client, query + "#\n" * 1000)
    assert error["extensions"]["code"] == "TOO_MANY_TOKENS"


def braces(selection: str) -> str:
    return "{ " + selection + " }"


DEEP = "trends { edges { node { id } } }"  # depth 3


@pytest.mark.parametrize(
    "query",
    [
        braces(DEEP),
        "{ ...F } fragment F on Query " + braces(DEEP),
        braces("... on Query " + braces(DEEP)),
        "{ ...A } fragment A on Query { ...B } fragment B on Query " + braces(DEEP),
        "{ trends { ...E } } fragment E on TrendConnection { edges { node { id } } }",
    ],
    ids=["plain", "fragment", "inline-fragment", "nested-fragments", "fragment-inside"],
)
def test_queries_deeper_than_the_limit_are_refused(shallow: httpx.Client, query: str) -> None:
    error = refused(shallow, query)
    assert error["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert error["message"].endswith("exceeds maximum operation depth of 2")


def test_queries_as_deep_as_the_limit_run(shallow: httpx.Client) -> None:
    query = "{ ...F } fragment F on Query { trends { pageInfo { hasNextPage } } }"
    body = shallow.post("/graphql", json={"query": query}).json()
    assert body == {"data": {"trends": {"pageInfo": {"hasNextPage": False}}}}


def test_cached_documents_are_still_checked_against_each_apps_limits(
    client: httpx.Client, shallow: httpx.Client
) -> None:
    query = braces(DEEP)
    assert refused(shallow, query)["extensions"]["code"] == "QUERY_TOO_DEEP"  # now cached
    hits = limits.parse_document.cache_info().hits
    for _ in range(2):
        assert refused(shallow, query)["extensions"]["code"] == "QUERY_TOO_DEEP"
        assert client.post("/graphql", json={"query": query}).json() == {
            "data": {"trends": {"edges": []}}
        }
    assert limits.parse_document.cache_info().hits >= hits + 2  # the refused ones at least
    for _ in range(2):
        assert refused(client, "{ " + "__typename " * 1001 + "}")["extensions"]["code"] == (
            "TOO_MANY_TOKENS"
        )


def aliases(n: int, prefix: str = "a") -> str:
    return " ".join(f"{prefix}{i}: __typename" for i in range(n))


@pytest.mark.parametrize(
    "query",
    [
        braces(aliases(16)),
        braces(aliases(8) + " ...F") + " fragment F on Query " + braces(aliases(8, "b")),
        "{ ...F ...F } fragment F on Query " + braces(aliases(8)),
        braces(aliases(8) + " ... on Query " + braces(aliases(8, "b"))),
        "{ ...F } fragment F on Query "
        + braces("...G " + aliases(8))
        + " fragment G on Query "
        + braces("... on Query " + braces(aliases(8, "b"))),
        braces("trends " + braces(" ".join(f"c{i}: totalCount" for i in range(16)))),
    ],
    ids=["top-level", "fragment", "fragment-twice", "inline", "nested-fragments", "nested-field"],
)
def test_more_aliases_than_the_limit_are_refused_wherever_they_hide(
    client: httpx.Client, query: str
) -> None:
    error = refused(client, query)
    assert error["extensions"]["code"] == "TOO_MANY_ALIASES"
    assert error["message"] == "16 aliases found. Allowed: 15"


def test_aliases_up_to_the_limit_are_fine(client: httpx.Client) -> None:
    query = braces(aliases(8) + " ...F") + " fragment F on Query " + braces(aliases(7, "b"))
    body = client.post("/graphql", json={"query": query}).json()
    assert "errors" not in body
    assert len(body["data"]) == 15


def test_a_batch_of_two_operations_runs_both(client: httpx.Client) -> None:
    response = client.post("/graphql", json=[TYPENAME, {"query": "{ a: __typename }"}])
    assert response.status_code == 200
    assert response.json() == [OK, {"data": {"a": "Query"}}]


def test_a_batch_of_more_operations_than_the_limit_is_refused(client: httpx.Client) -> None:
    assert client.post("/graphql", json=[TYPENAME] * 10).json() == [OK] * 10
    response = client.post("/graphql", json=[TYPENAME] * 11)
    assert response.status_code == 400
    assert code(response.json()) == "TOO_MANY_OPERATIONS"
    assert response.json()["errors"][0]["message"] == (
        "Too many operations in the batch: at most 10"
    )


def test_batching_is_off_when_the_limit_is_zero(sqlite_settings: Settings) -> None:
    with web_client(with_settings(sqlite_settings, max_batch_operations=0)) as client:
        response = client.post("/graphql", json=[TYPENAME, TYPENAME])
        assert response.status_code == 400
        assert code(response.json()) == "BATCHING_DISABLED"
        assert client.post("/graphql", json=TYPENAME).json() == OK


def test_mutations_over_get_are_refused_with_405_and_never_run(sqlite_settings: Settings) -> None:
    runs: list[int] = []

    @strawberry.type
    class Query:
        ok: bool = True

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def bump(self) -> int:
            runs.append(1)
            return len(runs)

    class View(JSONRefusals, GraphQL[None, None]):
        pass

    limiter = RateLimiter(sqlite_settings.redis_url)
    app = Starlette(
        routes=[Route("/graphql", View(strawberry.Schema(Query, Mutation)))],
        middleware=protection_middleware(sqlite_settings, limiter),
    )
    with serve(app) as url, http_client(base_url=url) as client:
        response = client.get(
            "/graphql",
            params={"query": "mutation { bump }"},
            headers={"graphql-require-preflight": "1"},
        )
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert code(response.json()) == "METHOD_NOT_ALLOWED"
        assert response.json()["errors"][0]["message"] == (
            "mutations are not allowed when using GET: send them with POST"
        )
        assert runs == []
        response = client.post("/graphql", json={"query": "mutation { bump }"})
        assert response.json() == {"data": {"bump": 1}}


def test_the_app_refuses_mutations_over_get_too(client: httpx.Client) -> None:
    params = {"query": "mutation { __typename }"}
    response = client.get("/graphql", params=params, headers={"x-requested-with": "fetch"})
    assert response.status_code == 405
    assert code(response.json()) == "METHOD_NOT_ALLOWED"


def test_graphiql_introspection_fits_the_default_limits(client: httpx.Client) -> None:
    query = get_introspection_query(descriptions=True, input_value_deprecation=True)
    body = client.post("/graphql", json={"query": query}).json()
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.parametrize(
    ("overrides", "open_"),
    [
        ({}, True),
        ({"trends_env": "production"}, False),
        ({"trends_env": "production", "graphql_introspection": True, "graphiql": True}, True),
        ({"graphql_introspection": False, "graphiql": False}, False),
    ],
    ids=["development", "production", "production-enabled", "development-disabled"],
)
def test_introspection_and_graphiql_are_off_in_production_unless_enabled(
    sqlite_settings: Settings, overrides: dict[str, Any], open_: bool
) -> None:
    settings = with_settings(sqlite_settings, **overrides)
    with web_client(settings) as client:
        schema = client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
        page = client.get("/graphql", headers={"accept": "text/html"})
        assert client.post("/graphql", json=TYPENAME).json() == OK
    if open_:
        assert schema.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        assert page.status_code == 200
    else:
        assert schema.json()["data"] is None
        for error in schema.json()["errors"]:
            assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert "introspection has been disabled" in error["message"]
        assert page.status_code == 404
        assert code(page.json()) == "NOT_FOUND"


def fan_out(levels: int) -> str:
    """F0 is one field; each next fragment spreads the one before four times (4**levels)."""
    fragments = ["fragment F0 on Query { __typename }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} ...F{i - 1} ...F{i - 1} }}"
        for i in range(1, levels + 1)
    ]
    return " ".join(fragments) + f" {{ ...F{levels} }}"


def fields_doc(extra: str = "") -> str:
    """A document of exactly 2,000 fields once expanded (10 x 10 x 20), plus `extra`."""
    return (
        "fragment F0 on Query { " + "__typename " * 10 + "} "
        "fragment F1 on Query { " + "...F0 " * 10 + "} "
        "fragment F2 on Query { " + "...F1 " * 20 + "} "
        "{ ...F2 " + extra + "}"
    )


@pytest.mark.parametrize("levels", [6, 10, 30])
def test_fragments_that_fan_out_are_refused_quickly_by_their_expanded_size(
    client: httpx.Client, levels: int
) -> None:
    query = fan_out(levels)
    assert len(query) < 2000
    timings, normal = [], []
    for _ in range(5):
        normal.append(round_trip(client, "{ __typename }"))
        started = time.perf_counter()
        error = refused(client, query)
        timings.append(time.perf_counter() - started)
        assert error["extensions"]["code"] == "TOO_MANY_FIELDS"
        assert f"asks for {4**levels} fields" in error["message"]
    # Best of five, next to the same machine's trivial round trip (a busy machine slows both):
    # an unmemoised walk of k=10 takes seconds, of k=30 forever.
    assert min(timings) < max(0.05, 10 * min(normal)), (timings, normal)


def refusal_bound(quiet: list[float]) -> float:
    """How long a refusal of an oversized request may take: ten normal queries, and at least 3 s,
    since parsing a megabyte of JSON on a busy 2-core machine takes a second (unbounded, it
    took 9 to 68 s)."""
    return max(3.0, 10 * statistics.median(quiet))


def test_a_normal_query_answers_promptly_while_fan_out_attacks_are_refused(
    client: httpx.Client, sqlite_settings: Settings
) -> None:
    quiet = [round_trip(client) for _ in range(5)]
    latencies, refusals = under_attack(client, {"query": fan_out(30)}, attackers=4, tries=5)
    assert refusals == {"TOO_MANY_FIELDS"}
    # Against the same query without attackers: an attack that held the server would take
    # seconds (k=30 unmemoised: forever); a busy machine only slows both alike.
    assert statistics.median(latencies) < refusal_bound(quiet), (
        latencies,
        quiet,
    )


def test_documents_up_to_the_field_limit_run_and_one_more_field_is_refused(
    client: httpx.Client,
) -> None:
    body = client.post("/graphql", json={"query": fields_doc()}).json()
    assert body == {"data": {"__typename": "Query"}}
    error = refused(client, fields_doc("__typename"))
    assert error["extensions"]["code"] == "TOO_MANY_FIELDS"
    assert error["message"] == (
        "The document asks for 2001 fields once its fragments are expanded; "
        "at most 2000 are allowed."
    )


def test_the_field_limit_is_a_setting(sqlite_settings: Settings) -> None:
    with web_client(with_settings(sqlite_settings, max_query_fields=3)) as client:
        assert client.post("/graphql", json={"query": "{ a: __typename b: __typename }"}).json()[
            "data"
        ] == {"a": "Query", "b": "Query"}
        query = "{ ...F ...F } fragment F on Query { a: __typename b: __typename }"
        assert refused(client, query)["extensions"]["code"] == "TOO_MANY_FIELDS"


def test_fragment_cycles_are_measured_and_then_refused_by_validation(
    client: httpx.Client,
) -> None:
    query = "{ ...A } fragment A on Query { ...B } fragment B on Query { __typename ...A }"
    error = refused(client, query)
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "Cannot spread fragment 'A' within itself" in error["message"]


TREND_FIELDS = (
    "id megatrend macrotrend challengesAndResearchGaps totalCountOfPublications "
    "totalCountOfPatents technologyReadinessLevel impactStrength steepl relevantIndustries "
    "realWorldApplicationAndUseCases uploadedAt updatedAt"
)
AGGREGATES = (
    'megatrends { name trendCount macrotrendCount } macrotrendReadiness(megatrend: "AI") '
    "{ macrotrend trendCount ratedCount averageTrlScore } trendFacets { total "
    "technologyReadinessLevel { value count } impactStrength { value count } "
    "steepl { value count } megatrend { value count } }"
)


def page_of(first: str | int, alias: str = "") -> str:
    """trends with every field of the connection and its trends."""
    return (
        f"{alias}trends(first: {first}) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage "
        f"startCursor endCursor }} edges {{ cursor node {{ {TREND_FIELDS} }} }} "
        f"nodes {{ {TREND_FIELDS} }} }}"
    )


def test_the_heaviest_documented_query_fits_the_default_cost(client: httpx.Client) -> None:
    body = client.post("/graphql", json={"query": "{ " + page_of(500) + AGGREGATES + " }"}).json()
    assert "errors" not in body, body
    assert body["data"]["trends"]["totalCount"] == 0


def test_a_request_asking_for_too_many_rows_is_refused_before_it_runs(
    client: httpx.Client,
) -> None:
    query = "{ " + page_of(500, "a: ") + page_of(500, "b: ") + " }"
    error = refused(client, query)
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["message"].startswith("The request would cost 30014 ")
    assert "at most 20000" in error["message"]


def test_page_sizes_in_variables_and_defaults_count_towards_the_cost(
    sqlite_settings: Settings,
) -> None:
    query = "query($n: Int) { trends(first: $n) { nodes { id megatrend } } }"
    # nodes cost first x (1 + 2 fields); the connection 1 more.
    with web_client(with_settings(sqlite_settings, max_query_cost=301)) as client:
        ok = client.post("/graphql", json={"query": query, "variables": {"n": 100}}).json()
        assert ok == {"data": {"trends": {"nodes": []}}}
        response = client.post("/graphql", json={"query": query, "variables": {"n": 101}})
        assert code(response.json()) == "QUERY_TOO_COSTLY"
        defaulted = "query($n: Int = 101) { trends(first: $n) { nodes { id megatrend } } }"
        assert code(client.post("/graphql", json={"query": defaulted}).json()) == (
            "QUERY_TOO_COSTLY"
        )
        # trends' own default page is 50.
        implicit = "{ trends { nodes { id megatrend } } a: trends { nodes { id megatrend } } }"
        assert code(client.post("/graphql", json={"query": implicit}).json()) == (
            "QUERY_TOO_COSTLY"
        )
        single = "{ trends { nodes { id megatrend } } }"
        assert client.post("/graphql", json={"query": single}).json() == ok


def test_the_operations_of_a_batch_share_one_cost_budget(client: httpx.Client) -> None:
    one = {"query": "{ " + page_of(300) + " }"}  # 9,007 each
    answers = client.post("/graphql", json=[one, one]).json()
    assert [a.get("errors") for a in answers] == [None, None]
    answers = client.post("/graphql", json=[one, one, one]).json()
    assert [a["errors"][0]["extensions"]["code"] for a in answers if "errors" in a] == [
        "QUERY_TOO_COSTLY"
    ]
    assert sum("errors" in a for a in answers) == 1


def test_aggregates_cost_a_fixed_amount_whatever_they_select(sqlite_settings: Settings) -> None:
    with web_client(with_settings(sqlite_settings, max_query_cost=300)) as client:
        three = (
            "{ megatrends { name } trendFacets { steepl { value count } } x: megatrends { name } }"
        )
        assert "errors" not in client.post("/graphql", json={"query": three}).json()
        four = three[:-1] + "y: megatrends { name trendCount macrotrendCount } }"
        assert code(client.post("/graphql", json={"query": four}).json()) == "QUERY_TOO_COSTLY"


ORDERED = "query($o: [TrendOrder!], $a: String) { trends(orderBy: $o, after: $a) { totalCount } }"


def test_a_long_order_by_is_refused_at_once_while_other_requests_are_served(
    client: httpx.Client,
) -> None:
    huge = {"query": ORDERED, "variables": {"o": [{"field": "ID"}] * 60_000}}
    quiet = [round_trip(client) for _ in range(3)]
    started = time.perf_counter()
    response = client.post("/graphql", json=huge)
    elapsed = time.perf_counter() - started
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "orderBy"}
    assert error["message"] == "orderBy takes at most 3 entries, got 60000"
    # 16 s before orderBy had a bound; refused before conversion. A busy machine slows the
    # normal query alike.
    bound = refusal_bound(quiet)
    assert elapsed < bound, (elapsed, quiet)

    latencies, refusals = under_attack(client, huge, attackers=2, tries=3)
    assert refusals == {"BAD_USER_INPUT"}
    assert statistics.median(latencies) < bound, (latencies, quiet)


FILTERED = "query($f: TrendFilter) { trends(filter: $f) { totalCount } }"


@pytest.mark.parametrize(
    ("field", "entry", "entry_type"),
    [
        ("megatrendIn", "AI", "String"),
        ("technologyReadinessLevelIn", "PILOT", "TechnologyReadinessLevel"),
        ("steeplIn", "S", "Steepl"),
    ],
)
def test_a_long_filter_list_is_refused_at_once_however_it_is_given(
    client: httpx.Client, field: str, entry: str, entry_type: str
) -> None:
    quiet = [round_trip(client) for _ in range(3)]
    huge = {"query": FILTERED, "variables": {"f": {field: [entry] * 60_000}}}
    started = time.perf_counter()
    [error] = client.post("/graphql", json=huge).json()["errors"]
    elapsed = time.perf_counter() - started
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert error["message"] == f"{field} takes at most 100 entries, got 60000"
    assert elapsed < refusal_bound(quiet), (elapsed, quiet)

    literal = f'"{entry}"' if entry_type == "String" else entry
    in_the_document = (
        f"{{ trends(filter: {{{field}: [{', '.join([literal] * 101)}]}}) {{ totalCount }} }}"
    )
    in_a_variable = (
        f"query($v: [{entry_type}!]) {{ trends(filter: {{{field}: $v}}) {{ totalCount }} }}"
    )
    for body in (
        {"query": in_the_document},
        {"query": in_a_variable, "variables": {"v": [entry] * 101}},
    ):
        answer = client.post("/graphql", json=body).json()
        assert answer["data"] is None
        [error] = answer["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
        assert error["message"] == f"{field} takes at most 100 entries, got 101"


def test_a_cursor_of_another_shape_is_refused_whatever_the_order(client: httpx.Client) -> None:
    order = [{"field": f} for f in ("MEGATREND", "MACROTREND", "PATENTS")]
    cursor = base64.urlsafe_b64encode(orjson.dumps(["x", [None] * 600])).decode().rstrip("=")
    body = client.post(
        "/graphql", json={"query": ORDERED, "variables": {"o": order, "a": cursor}}
    ).json()
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
