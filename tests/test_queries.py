"""The public read API over HTTP: filters, ordering, cursor pagination, ids and aggregates.

Expected answers are computed here in plain Python from the rows the test imported.
"""

import base64
import csv
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE, GraphQL, csv_text, forbid_scans, load, sent_statements, trend_row
from sqlalchemy.orm import Session

from trends_gql.core import plans
from trends_gql.core.db import Database
from trends_gql.core.errors import BadUserInput
from trends_gql.core.fields import Steepl
from trends_gql.core.pagination import decode_id, encode_id
from trends_gql.core.settings import Settings
from trends_gql.trends import counts, curation, filters, queries

Node = dict[str, Any]

# Header of the sample file -> field of a CSV row (as trend_row() spells them).
COLUMNS = {
    "Megatrend": "megatrend",
    "Macrotrend": "macrotrend",
    "Challenges and Research Gaps": "challenges_and_research_gaps",
    "Total Count of Publications": "total_count_of_publications",
    "Total Count of Patents": "total_count_of_patents",
    "Technology Readiness Level": "technology_readiness_level",
    "Impact Strength": "impact_strength",
    "STEEPL": "steepl",
    "Relevant Industries": "relevant_industries",
    "Real-World Application and Use Cases": "real_world_application_and_use_cases",
}
DATA_FIELDS = (
    "megatrend macrotrend challengesAndResearchGaps totalCountOfPublications totalCountOfPatents "
    "technologyReadinessLevel impactStrength steepl relevantIndustries "
    "realWorldApplicationAndUseCases"
)
TREND_FIELDS = f"id {DATA_FIELDS} uploadedAt updatedAt"
TRL_SCORE = {"PILOT": 2, "DEVELOPMENT": 5, "DEPLOY": 8}
SEARCHED = (
    "megatrend",
    "macrotrend",
    "challengesAndResearchGaps",
    "relevantIndustries",
    "realWorldApplicationAndUseCases",
)

ALL = f"""
query All($filter: TrendFilter) {{
  trends(filter: $filter, first: 500) {{
    totalCount
    nodes {{ {TREND_FIELDS} }}
    pageInfo {{ hasNextPage }}
  }}
}}
"""
PAGE = f"""
query Page($filter: TrendFilter, $orderBy: [TrendOrder!], $first: Int, $after: String) {{
  trends(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {{
    totalCount
    edges {{ cursor node {{ {TREND_FIELDS} }} }}
    nodes {{ {TREND_FIELDS} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""


def _text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def expected_node(row: Mapping[str, Any]) -> Node:
    """The data fields of the Trend the API should answer for a CSV row."""

    def count(name: str) -> int | None:
        text = _text(row.get(name))
        return None if text is None else int(text)

    def enum_name(name: str) -> str | None:
        text = _text(row.get(name))
        return None if text is None else text.upper()

    return {
        "megatrend": _text(row["megatrend"]),
        "macrotrend": _text(row["macrotrend"]),
        "challengesAndResearchGaps": _text(row["challenges_and_research_gaps"]),
        "totalCountOfPublications": count("total_count_of_publications"),
        "totalCountOfPatents": count("total_count_of_patents"),
        "technologyReadinessLevel": enum_name("technology_readiness_level"),
        "impactStrength": enum_name("impact_strength"),
        "steepl": enum_name("steepl"),
        "relevantIndustries": _text(row.get("relevant_industries")),
        "realWorldApplicationAndUseCases": _text(row.get("real_world_application_and_use_cases")),
    }


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8", newline="") as f:
        return [{COLUMNS[k]: v for k, v in r.items()} for r in csv.DictReader(f, delimiter=";")]


def data_of(node: Node) -> Node:
    return {k: v for k, v in node.items() if k not in ("id", "uploadedAt", "updatedAt")}


def bag(nodes: Iterable[Node]) -> Counter[tuple[tuple[str, Any], ...]]:
    """Nodes as a multiset of their data fields, to compare regardless of order."""
    return Counter(tuple(sorted(data_of(n).items())) for n in nodes)


# Rows beside the sample that exercise exact and case-insensitive matching, literal LIKE
# characters, rows without TRL or counts, and ties in every ordering.
EXTRA = [
    trend_row(megatrend="AI Safety", macrotrend="Edge AI Chips", challenges_and_research_gaps="x"),
    trend_row(
        megatrend="ai",
        macrotrend="EDGE AI",
        challenges_and_research_gaps="100% renewable, 5 GW",
        technology_readiness_level=None,
        total_count_of_publications=None,
        total_count_of_patents=None,
    ),
    trend_row(
        megatrend="Robotics",
        macrotrend="Cobots",
        challenges_and_research_gaps="snake_case naming",
        relevant_industries="input/output, C:\\data",
        technology_readiness_level=None,
        impact_strength="Low",
        steepl="P",
        total_count_of_publications=144453,
    ),
    trend_row(
        megatrend="Robotics",
        macrotrend="cobots",
        challenges_and_research_gaps="Grip strength",
        real_world_application_and_use_cases=None,
        relevant_industries=None,
        technology_readiness_level="Deploy",
        impact_strength="Medium",
        steepl="S",
        total_count_of_publications=None,
        total_count_of_patents=3873,
    ),
]


@pytest.fixture
def rows(db: Database, tmp_path: Path) -> list[Node]:
    """The sample file, then EXTRA in a second import (a later upload time); expected nodes."""
    assert load(db, tmp_path, SAMPLE).created == 44
    assert load(db, tmp_path, csv_text(EXTRA)).created == len(EXTRA)
    return [expected_node(r) for r in [*sample_rows(), *EXTRA]]


@pytest.fixture
def sample(db: Database, tmp_path: Path) -> list[Node]:
    """Only the sample file; expected nodes."""
    assert load(db, tmp_path, SAMPLE).created == 44
    return [expected_node(r) for r in sample_rows()]


def fetch_all(gql: GraphQL, trend_filter: Mapping[str, Any] | None = None) -> list[Node]:
    body = gql(ALL, {"filter": trend_filter})
    assert "errors" not in body, body
    connection = body["data"]["trends"]
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["totalCount"] == len(connection["nodes"])
    return connection["nodes"]


def error_code(body: Mapping[str, Any]) -> str:
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"]


# Filters


def test_trends_returns_every_imported_row_with_its_fields(gql: GraphQL, rows: list[Node]) -> None:
    nodes = fetch_all(gql)
    assert bag(nodes) == bag(rows)
    for node in nodes:
        assert datetime.fromisoformat(node["uploadedAt"]).tzinfo is not None
        assert node["updatedAt"] == node["uploadedAt"]


def test_megatrend_filter_is_exact_and_ignores_case(gql: GraphQL, rows: list[Node]) -> None:
    for value in ["ai", "AI", "Ai", "robotics", "ROBOTICS", "AI Safety", "ai safety"]:
        expected = [r for r in rows if r["megatrend"].lower() == value.lower()]
        assert expected, value
        assert bag(fetch_all(gql, {"megatrend": value})) == bag(expected), value


def test_megatrend_filter_matches_no_substring(gql: GraphQL, rows: list[Node]) -> None:
    assert fetch_all(gql, {"megatrend": "Robot"}) == []
    assert fetch_all(gql, {"megatrend": "Safety"}) == []


def test_macrotrend_filter_is_exact_and_ignores_case(gql: GraphQL, rows: list[Node]) -> None:
    for value in ["edge ai", "EDGE AI", "Edge AI Chips", "cobots", "COBOTS"]:
        expected = [r for r in rows if r["macrotrend"].lower() == value.lower()]
        assert expected, value
        assert bag(fetch_all(gql, {"macrotrend": value})) == bag(expected), value


def test_macrotrend_filter_matches_no_substring(gql: GraphQL, rows: list[Node]) -> None:
    assert fetch_all(gql, {"macrotrend": "Edge"}) == []
    assert fetch_all(gql, {"macrotrend": "AI"}) == []


def searched(rows: Iterable[Node], term: str) -> list[Node]:
    return [r for r in rows if any(term.lower() in (r[f] or "").lower() for f in SEARCHED)]


# The count field of each pair of bounds (publicationsMin, publicationsMax, ...).
BOUNDED = {"publications": "totalCountOfPublications", "patents": "totalCountOfPatents"}


def matching(rows: Iterable[Node], trend_filter: Mapping[str, Any] | None) -> list[Node]:
    """The rows a TrendFilter selects, computed in Python (updatedSince needs fetched rows)."""

    def holds(row: Node, field: str, value: Any) -> bool:
        if field == "search":
            return bool(searched([row], value))
        if field in ("megatrend", "macrotrend"):
            return row[field].lower() == value.lower()
        if field == "megatrendIn":
            return row["megatrend"].lower() in {v.strip().lower() for v in value}
        if field.endswith("In"):
            return row[field.removesuffix("In")] in value
        if field[:-3] in BOUNDED:
            count = row[BOUNDED[field[:-3]]]
            return count is not None and (
                count >= value if field.endswith("Min") else count <= value
            )
        if field == "updatedSince":
            return datetime.fromisoformat(row["updatedAt"]) >= datetime.fromisoformat(value)
        return row[field] == value

    conditions = [(f, v) for f, v in (trend_filter or {}).items() if v is not None]  # null: none
    return [r for r in rows if all(holds(r, f, v) for f, v in conditions)]


def test_search_matches_a_substring_of_any_searched_field_ignoring_case(
    gql: GraphQL, rows: list[Node]
) -> None:
    terms = {
        "ENERGY T": "megatrend",
        "twin": "macrotrend",
        "Capital COST": "challenges",
        "automotive": "industries",
        "drug discovery": "use cases",
        "ai": "several fields",
        "no such words anywhere": "nothing",
    }
    for term, where in terms.items():
        assert bag(fetch_all(gql, {"search": term})) == bag(searched(rows, term)), where


def test_search_takes_like_wildcards_and_escapes_literally(gql: GraphQL, rows: list[Node]) -> None:
    for term in ["%", "_", "0% r", "e_c", "/", "t/o", "\\", "%_"]:
        expected = searched(rows, term)
        assert len(expected) < len(rows), term
        assert bag(fetch_all(gql, {"search": term})) == bag(expected), term


def test_search_term_with_a_percent_sign_finds_the_row_that_holds_it(
    gql: GraphQL, rows: list[Node]
) -> None:
    nodes = fetch_all(gql, {"search": "100%"})
    assert [n["challengesAndResearchGaps"] for n in nodes] == ["100% renewable, 5 GW"]


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("technologyReadinessLevel", ["PILOT", "DEVELOPMENT", "DEPLOY"]),
        ("impactStrength", ["LOW", "MEDIUM", "HIGH"]),
        ("steepl", ["S", "T", "E", "P", "L"]),
    ],
)
def test_enum_filters_match_their_value_only(
    gql: GraphQL, rows: list[Node], field: str, values: list[str]
) -> None:
    for value in values:
        expected = [r for r in rows if r[field] == value]
        assert expected, value
        assert bag(fetch_all(gql, {field: value})) == bag(expected), value


def test_all_given_filters_must_hold(gql: GraphQL, rows: list[Node]) -> None:
    filters: list[dict[str, str]] = [
        {"megatrend": "ai", "technologyReadinessLevel": "PILOT"},
        {"megatrend": "ai", "macrotrend": "edge ai"},
        {"megatrend": "robotics", "search": "grip", "steepl": "S"},
        {"impactStrength": "HIGH", "steepl": "T", "search": "a"},
        {"search": "data", "technologyReadinessLevel": "DEPLOY", "impactStrength": "MEDIUM"},
        {"megatrend": "AI", "macrotrend": "Generative AI", "technologyReadinessLevel": "DEPLOY"},
        {
            "megatrend": "quantum technologies",
            "macrotrend": "quantum computing",
            "technologyReadinessLevel": "DEVELOPMENT",
            "impactStrength": "HIGH",
            "steepl": "T",
            "search": "quantum",
        },
    ]
    for trend_filter in filters:
        expected = matching(rows, trend_filter)
        assert len(expected) < len(rows), trend_filter
        assert bag(fetch_all(gql, trend_filter)) == bag(expected), trend_filter


def test_a_search_counts_its_matches_in_names_and_elsewhere_once(
    gql: GraphQL, rows: list[Node]
) -> None:
    # Counts and facets sum a search's matches in megatrend or macrotrend names from
    # trend_summary and read only the other trends (counts.SplitSearch): terms found in
    # names only, in other fields only, in both (in one row too), with filters on the summary's
    # columns, and with one on another column (counted among the trends as a whole).
    filters: list[dict[str, Any]] = [
        {"search": "quantum"},
        {"search": "robot"},
        {"search": "data"},
        {"search": "energy"},
        {"search": "ai"},
        {"search": "AI", "megatrend": "ai"},
        {"search": "edge", "megatrendIn": ["AI", "ai safety"]},
        {"search": "e", "technologyReadinessLevel": "DEPLOY", "impactStrengthIn": ["HIGH"]},
        {"search": "s", "megatrend": "biotechnology"},
        {"search": "ai", "publicationsMin": 1},
    ]
    for trend_filter in filters:
        assert len(expect_filtered(gql, rows, trend_filter)) > 2, trend_filter


def test_a_text_filter_with_a_nul_character_is_bad_user_input(
    gql: GraphQL, rows: list[Node]
) -> None:
    for field in ("megatrend", "macrotrend", "search"):
        body = gql(ALL, {"filter": {field: "AI\u0000"}})
        assert error_code(body) == "BAD_USER_INPUT", field
        assert body["errors"][0]["extensions"]["field"] == field


# Lists, count bounds and updatedSince (the dashboard's filters)

ENUM_LISTS = {
    "technologyReadinessLevelIn": [["PILOT"], ["PILOT", "DEPLOY"], ["DEVELOPMENT", "DEPLOY"]],
    "impactStrengthIn": [["LOW"], ["LOW", "HIGH"], ["MEDIUM", "LOW", "MEDIUM"]],
    "steeplIn": [["S"], ["T", "E"], ["S", "T", "E", "P"], ["P", "P"]],
}
LISTS = ["megatrendIn", *ENUM_LISTS]


def expect_filtered(
    gql: GraphQL, rows: Sequence[Node], trend_filter: Mapping[str, Any]
) -> list[Node]:
    """Check `trends` (nodes and totalCount, also on a short page) and `trendFacets` under a
    filter against the rows it should select; those rows."""
    expected = matching(rows, trend_filter)
    assert bag(fetch_all(gql, trend_filter)) == bag(expected), trend_filter
    page = gql(PAGE, {"filter": trend_filter, "first": 2})["data"]["trends"]
    assert page["totalCount"] == len(expected), trend_filter
    assert facets_answer(gql, trend_filter) == facets(expected), trend_filter
    return expected


def test_megatrend_in_matches_any_listed_megatrend_exactly_ignoring_case(
    gql: GraphQL, rows: list[Node]
) -> None:
    for values in [["ai"], ["AI", "robotics"], ["ROBOTICS", "ai safety", "nothing"], [" Ai "]]:
        expected = expect_filtered(gql, rows, {"megatrendIn": values})
        assert expected, values
        assert {r["megatrend"].lower() for r in expected} <= {v.strip().lower() for v in values}
    assert fetch_all(gql, {"megatrendIn": ["Robot", "Safety"]}) == []  # no substrings


@pytest.mark.parametrize("field", list(ENUM_LISTS))
def test_an_enum_list_matches_any_of_its_values(gql: GraphQL, rows: list[Node], field: str) -> None:
    for values in ENUM_LISTS[field]:
        expected = expect_filtered(gql, rows, {field: values})
        assert 0 < len(expected) < len(rows), values
        assert {r[field.removesuffix("In")] for r in expected} == set(values), values


def test_a_readiness_level_list_never_matches_a_trend_without_one(
    gql: GraphQL, rows: list[Node]
) -> None:
    unrated = [r for r in rows if r["technologyReadinessLevel"] is None]
    assert len(unrated) == 2
    everything = expect_filtered(
        gql, rows, {"technologyReadinessLevelIn": ["PILOT", "DEVELOPMENT", "DEPLOY"]}
    )
    assert len(everything) == len(rows) - 2


@pytest.mark.parametrize("field", LISTS)
def test_an_empty_list_matches_nothing(gql: GraphQL, rows: list[Node], field: str) -> None:
    assert expect_filtered(gql, rows, {field: []}) == []
    assert expect_filtered(gql, rows, {field: [], "search": "a"}) == []


def test_a_null_list_is_no_condition(gql: GraphQL, rows: list[Node]) -> None:
    everything = dict.fromkeys(LISTS)
    assert len(expect_filtered(gql, rows, everything)) == len(rows)


@pytest.mark.parametrize("short", list(BOUNDED))
def test_count_bounds_are_inclusive_and_never_match_a_missing_count(
    gql: GraphQL, rows: list[Node], short: str
) -> None:
    low, high = f"{short}Min", f"{short}Max"
    field = BOUNDED[short]
    stored = sorted(r[field] for r in rows if r[field] is not None)
    assert len(rows) - len(stored) >= 2  # trends without the count
    tied = max(c for c in stored if stored.count(c) == 2)  # two trends at one bound
    sizes = [
        ({low: 0}, len(stored)),
        ({high: 2**31 - 1}, len(stored)),
        ({low: stored[0]}, len(stored)),
        ({high: stored[-1]}, len(stored)),
        ({low: stored[0], high: stored[-1]}, len(stored)),
        ({low: tied, high: tied}, 2),
        ({low: tied}, len([c for c in stored if c >= tied])),
        ({high: tied}, len([c for c in stored if c <= tied])),
        (
            {low: stored[5], high: stored[-5]},
            len([c for c in stored if stored[5] <= c <= stored[-5]]),
        ),
        ({low: stored[-1] + 1}, 0),
        ({high: stored[0] - 1}, 0),
    ]
    for bounds, size in sizes:
        assert len(expect_filtered(gql, rows, bounds)) == size, bounds


def test_updated_since_is_inclusive_and_finds_what_changed(
    gql: GraphQL, db: Database, rows: list[Node]
) -> None:
    before = fetch_all(gql)
    imported = sorted({n["updatedAt"] for n in before}, key=datetime.fromisoformat)
    assert len(imported) == 2  # the sample, then EXTRA
    edited = next(n for n in before if n["macrotrend"] == "Cobots")
    pk = decode_id(edited["id"])
    db.call_sync(lambda s: curation.update_trend(s, pk, {"steepl": "L"}, "staff@example.org"))
    after = fetch_all(gql)
    (changed,) = [n for n in after if n["id"] == edited["id"]]
    moment = datetime.fromisoformat(changed["updatedAt"])
    assert moment > datetime.fromisoformat(imported[1])

    since_extra = expect_filtered(gql, after, {"updatedSince": imported[1]})
    assert len(since_extra) == len(EXTRA)
    assert expect_filtered(gql, after, {"updatedSince": changed["updatedAt"]}) == [changed]
    assert len(expect_filtered(gql, after, {"updatedSince": imported[0]})) == len(rows)
    assert expect_filtered(gql, after, {"updatedSince": "2999-01-01T00:00:00Z"}) == []

    # The same instant in any offset, or with Z, is the same bound.
    for spelled in [
        moment.astimezone(timezone(timedelta(hours=2))).isoformat(),
        moment.astimezone(timezone(timedelta(hours=-5, minutes=-30))).isoformat(),
        moment.isoformat().replace("+00:00", "Z"),
    ]:
        assert fetch_all(gql, {"updatedSince": spelled}) == [changed], spelled
    later = (moment + timedelta(microseconds=1)).isoformat()
    assert fetch_all(gql, {"updatedSince": later}) == []


def test_the_new_fields_combine_with_each_other_and_the_old_ones(
    gql: GraphQL, rows: list[Node]
) -> None:
    filters: list[dict[str, Any]] = [
        {"megatrendIn": ["ai", "robotics"], "steeplIn": ["T", "P"]},
        {"megatrendIn": ["ai", "mobility"], "technologyReadinessLevel": "PILOT"},
        {"megatrend": "ai", "megatrendIn": ["robotics"]},
        {"steepl": "T", "steeplIn": ["T", "L"], "impactStrengthIn": ["HIGH"]},
        {"technologyReadinessLevelIn": ["DEPLOY"], "publicationsMin": 50000},
        {"publicationsMin": 20000, "publicationsMax": 150000, "patentsMax": 20000},
        {"patentsMin": 3873, "search": "a", "impactStrengthIn": ["MEDIUM", "HIGH"]},
        {
            "megatrendIn": ["ai", "energy transition", "biotechnology"],
            "technologyReadinessLevelIn": ["PILOT", "DEVELOPMENT"],
            "impactStrengthIn": ["HIGH", "MEDIUM"],
            "steeplIn": ["T", "E", "L"],
            "publicationsMin": 10000,
            "patentsMax": 30000,
            "updatedSince": "2000-01-01T00:00:00Z",
        },
    ]
    everything = fetch_all(gql)  # with the times that updatedSince compares
    for trend_filter in filters:
        expected = expect_filtered(gql, everything, trend_filter)
        assert len(expected) < len(rows), trend_filter


def filter_error(gql: GraphQL, trend_filter: Mapping[str, Any]) -> dict[str, Any]:
    """The one error of `trends` and of `trendFacets` under a refused filter (the same)."""
    errors = []
    for document in (ALL, FACETS):
        body = gql(document, {"filter": trend_filter})
        assert body["data"] is None, body
        [error] = body["errors"]
        errors.append({"message": error["message"], **error["extensions"]})
    assert errors[0] == errors[1]
    return errors[0]


REFUSED_FILTERS = [
    pytest.param(
        {"publicationsMin": 5, "publicationsMax": 4},
        "publicationsMin",
        "publicationsMin (5) is greater than publicationsMax (4): nothing can match",
        id="publications min above max",
    ),
    pytest.param(
        {"patentsMin": 10, "patentsMax": 0},
        "patentsMin",
        "patentsMin (10) is greater than patentsMax (0): nothing can match",
        id="patents min above max",
    ),
    pytest.param(
        {"publicationsMin": -1},
        "publicationsMin",
        "publicationsMin must be 0 or more, got -1",
        id="negative publications min",
    ),
    pytest.param(
        {"publicationsMax": -3},
        "publicationsMax",
        "publicationsMax must be 0 or more, got -3",
        id="negative publications max",
    ),
    pytest.param(
        {"patentsMin": -1, "patentsMax": 5},
        "patentsMin",
        "patentsMin must be 0 or more, got -1",
        id="negative patents min",
    ),
    pytest.param(
        {"patentsMax": -(2**31)},
        "patentsMax",
        f"patentsMax must be 0 or more, got {-(2**31)}",
        id="negative patents max",
    ),
    pytest.param(
        {"megatrendIn": ["x"] * 101},
        "megatrendIn",
        "megatrendIn takes at most 100 entries, got 101",
        id="101 megatrends",
    ),
    pytest.param(
        {"technologyReadinessLevelIn": ["PILOT"] * 150},
        "technologyReadinessLevelIn",
        "technologyReadinessLevelIn takes at most 100 entries, got 150",
        id="150 readiness levels",
    ),
    pytest.param(
        {"impactStrengthIn": ["LOW"] * 101},
        "impactStrengthIn",
        "impactStrengthIn takes at most 100 entries, got 101",
        id="101 impact strengths",
    ),
    pytest.param(
        {"steeplIn": ["S"] * 101},
        "steeplIn",
        "steeplIn takes at most 100 entries, got 101",
        id="101 steepl values",
    ),
    pytest.param(
        {"megatrendIn": ["AI", "AI\u0000"]},
        "megatrendIn",
        "megatrendIn must not contain a NUL character",
        id="NUL in a megatrend",
    ),
    pytest.param(
        {"updatedSince": "2026-01-31T00:00:00"},
        "updatedSince",
        "updatedSince needs a time zone offset, e.g. 2026-01-31T00:00:00Z",
        id="naive updatedSince",
    ),
    pytest.param(
        {"updatedSince": "2026-01-31"},
        "updatedSince",
        "updatedSince needs a time zone offset, e.g. 2026-01-31T00:00:00Z",
        id="a date for updatedSince",
    ),
]


@pytest.mark.parametrize(("trend_filter", "field", "message"), REFUSED_FILTERS)
def test_a_filter_that_cannot_be_used_is_bad_user_input_naming_the_argument(
    gql: GraphQL, rows: list[Node], trend_filter: dict[str, Any], field: str, message: str
) -> None:
    assert filter_error(gql, trend_filter) == {
        "message": message,
        "code": "BAD_USER_INPUT",
        "field": field,
    }


def test_a_list_of_a_hundred_values_is_accepted(gql: GraphQL, rows: list[Node]) -> None:
    names = [f"Megatrend {i}" for i in range(99)] + ["robotics"]
    assert len(expect_filtered(gql, rows, {"megatrendIn": names})) == 2
    assert len(expect_filtered(gql, rows, {"steeplIn": ["P"] * 100})) == len(
        matching(rows, {"steepl": "P"})
    )


def test_an_updated_since_that_is_no_time_is_bad_user_input(gql: GraphQL, rows: list[Node]) -> None:
    for value in ["yesterday", "2026-13-01T00:00:00Z", ""]:
        body = gql(ALL, {"filter": {"updatedSince": value}})
        assert body["data"] is None, value
        assert error_code(body) == "BAD_USER_INPUT", value


def test_the_service_refuses_a_long_list_itself(db: Database) -> None:
    too_many = filters.TrendFilter(steepl_in=(Steepl.S,) * 101)
    with pytest.raises(BadUserInput) as refused:
        db.call_sync(counts.count_trends, too_many)
    assert refused.value.extensions == {"code": "BAD_USER_INPUT", "field": "steeplIn"}
    assert str(refused.value) == "steeplIn takes at most 100 entries, got 101"


# Ordering and cursor pagination


def _by_pk(node: Node) -> int:
    return decode_id(node["id"])


ORDER_KEYS: dict[str, Callable[[Node], Any]] = {
    "ID": _by_pk,
    "MEGATREND": lambda n: n["megatrend"],
    "MACROTREND": lambda n: n["macrotrend"],
    "PUBLICATIONS": lambda n: n["totalCountOfPublications"],
    "PATENTS": lambda n: n["totalCountOfPatents"],
    "UPLOADED_AT": lambda n: datetime.fromisoformat(n["uploadedAt"]),
    "UPDATED_AT": lambda n: datetime.fromisoformat(n["updatedAt"]),
}


def expected_order(nodes: Sequence[Node], order: Sequence[Mapping[str, str]]) -> list[str]:
    """Ids in the order `order` asks for: nulls last either way, then ascending id."""
    result = sorted(nodes, key=_by_pk)
    for term in reversed(order):  # stable sorts, least significant key first
        key = ORDER_KEYS[term["field"]]
        present = [n for n in result if key(n) is not None]
        present.sort(key=key, reverse=term.get("direction", "ASC") == "DESC")
        result = present + [n for n in result if key(n) is None]
    return [n["id"] for n in result]


def walk(
    gql: GraphQL,
    order: Sequence[Mapping[str, str]] | None,
    first: int,
    trend_filter: Mapping[str, Any] | None = None,
) -> list[Node]:
    """Every page from the first to the last, checking each page's connection fields."""
    nodes: list[Node] = []
    after = None
    while True:
        variables = {"orderBy": order, "first": first, "after": after, "filter": trend_filter}
        body = gql(PAGE, variables)
        assert "errors" not in body, body
        page = body["data"]["trends"]
        edges, info = page["edges"], page["pageInfo"]
        assert [e["node"] for e in edges] == page["nodes"]
        assert 0 < len(edges) <= first
        assert info["startCursor"] == edges[0]["cursor"]
        assert info["endCursor"] == edges[-1]["cursor"]
        assert info["hasPreviousPage"] is (after is not None)
        nodes.extend(page["nodes"])
        assert page["totalCount"] >= len(nodes)
        if not info["hasNextPage"]:
            assert page["totalCount"] == len(nodes)
            return nodes
        assert len(edges) == first
        after = info["endCursor"]


@pytest.mark.parametrize("field", list(ORDER_KEYS))
def test_walking_all_pages_returns_every_row_once_in_order(
    gql: GraphQL, rows: list[Node], field: str
) -> None:
    everything = fetch_all(gql)
    for direction in ("ASC", "DESC"):
        order = [{"field": field, "direction": direction}]
        walked = walk(gql, order, first=10)
        assert [n["id"] for n in walked] == expected_order(everything, order), direction
        assert bag(walked) == bag(rows)


def test_walking_a_multi_field_order_returns_every_row_once_in_order(
    gql: GraphQL, rows: list[Node]
) -> None:
    everything = fetch_all(gql)
    orders: list[list[dict[str, str]]] = [
        [{"field": "MEGATREND"}, {"field": "PUBLICATIONS", "direction": "DESC"}],
        [{"field": "PUBLICATIONS"}, {"field": "PATENTS", "direction": "DESC"}],
        [{"field": "PATENTS", "direction": "DESC"}, {"field": "ID", "direction": "DESC"}],
        [
            {"field": "UPLOADED_AT", "direction": "DESC"},
            {"field": "PATENTS"},
            {"field": "MACROTREND", "direction": "DESC"},
        ],
    ]
    for order in orders:
        walked = walk(gql, order, first=9)
        assert [n["id"] for n in walked] == expected_order(everything, order), order


def test_walking_a_filtered_order_returns_the_matches_once_in_order(
    gql: GraphQL, rows: list[Node]
) -> None:
    trend_filter = {"search": "a", "impactStrength": "HIGH"}
    matches = fetch_all(gql, trend_filter)
    order = [{"field": "PATENTS", "direction": "DESC"}]
    walked = walk(gql, order, first=3, trend_filter=trend_filter)
    assert [n["id"] for n in walked] == expected_order(matches, order)
    assert bag(walked) == bag(matching(rows, trend_filter))
    assert len(walked) > 6


def test_walking_what_changed_since_returns_the_matches_once_in_id_order(
    gql: GraphQL, rows: list[Node]
) -> None:
    # By id, updatedSince collects its matches first (they are mostly the newest ids).
    oldest = min((n["updatedAt"] for n in fetch_all(gql)), key=datetime.fromisoformat)
    for trend_filter in ({"updatedSince": oldest}, {"updatedSince": oldest, "steepl": "T"}):
        matches = fetch_all(gql, trend_filter)
        assert len(matches) > 4
        for order in ([], [{"field": "ID", "direction": "DESC"}]):
            walked = walk(gql, order, first=4, trend_filter=trend_filter)
            assert [n["id"] for n in walked] == expected_order(matches, order)


def test_no_order_means_ascending_id(gql: GraphQL, rows: list[Node]) -> None:
    everything = fetch_all(gql)
    assert [n["id"] for n in walk(gql, None, first=9)] == expected_order(everything, [])
    assert [n["id"] for n in everything] == expected_order(everything, [])


def test_null_counts_sort_last_in_both_directions(gql: GraphQL, rows: list[Node]) -> None:
    for field, key in [
        ("PUBLICATIONS", "totalCountOfPublications"),
        ("PATENTS", "totalCountOfPatents"),
    ]:
        for direction in ("ASC", "DESC"):
            walked = walk(gql, [{"field": field, "direction": direction}], first=16)
            values = [n[key] for n in walked]
            nulls = values.count(None)
            assert nulls >= 2
            assert values[-nulls:] == [None] * nulls, (field, direction)
            present = values[:-nulls]
            assert present == sorted(present, reverse=direction == "DESC"), (field, direction)
            null_ids = [_by_pk(n) for n in walked[-nulls:]]
            assert null_ids == sorted(null_ids), (field, direction)


def test_total_count_counts_every_match_not_the_page(gql: GraphQL, rows: list[Node]) -> None:
    for trend_filter, first in [(None, 3), ({"megatrend": "ai"}, 2), ({"search": "zzz"}, 5)]:
        body = gql(PAGE, {"filter": trend_filter, "first": first})
        page = body["data"]["trends"]
        expected = len(matching(rows, trend_filter))
        assert page["totalCount"] == expected
        assert len(page["nodes"]) == min(first, expected)


def test_first_page_info(gql: GraphQL, rows: list[Node]) -> None:
    page = gql(PAGE, {"first": 3})["data"]["trends"]
    info = page["pageInfo"]
    assert info["hasNextPage"] is True
    assert info["hasPreviousPage"] is False
    assert info["startCursor"] == page["edges"][0]["cursor"]
    assert info["endCursor"] == page["edges"][2]["cursor"]
    assert len({e["cursor"] for e in page["edges"]}) == 3


def test_a_page_that_holds_exactly_the_rest_has_no_next_page(
    gql: GraphQL, rows: list[Node]
) -> None:
    first = gql(PAGE, {"first": 40})["data"]["trends"]
    rest = gql(PAGE, {"first": len(rows) - 40, "after": first["pageInfo"]["endCursor"]})
    page = rest["data"]["trends"]
    assert len(page["nodes"]) == len(rows) - 40
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is True


def test_after_the_last_cursor_comes_an_empty_page(gql: GraphQL, rows: list[Node]) -> None:
    everything = gql(PAGE, {"first": 500})["data"]["trends"]
    last = everything["pageInfo"]["endCursor"]
    page = gql(PAGE, {"first": 5, "after": last})["data"]["trends"]
    assert page["edges"] == page["nodes"] == []
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    assert page["totalCount"] == len(rows)


def test_an_empty_result_has_no_cursors(gql: GraphQL, rows: list[Node]) -> None:
    page = gql(PAGE, {"filter": {"megatrend": "nothing"}, "first": 5})["data"]["trends"]
    assert page["totalCount"] == 0
    assert page["edges"] == page["nodes"] == []
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


def test_first_zero_returns_no_edges_but_counts_and_sees_more(
    gql: GraphQL, rows: list[Node]
) -> None:
    page = gql(PAGE, {"first": 0})["data"]["trends"]
    assert page["edges"] == page["nodes"] == []
    assert page["totalCount"] == len(rows)
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["startCursor"] is None
    assert page["pageInfo"]["endCursor"] is None


def test_first_up_to_the_configured_maximum_is_accepted(
    gql: GraphQL, rows: list[Node], backend: Settings
) -> None:
    assert backend.max_page_size == 500
    page = gql(PAGE, {"first": backend.max_page_size})["data"]["trends"]
    assert len(page["nodes"]) == len(rows)


def test_first_beyond_the_maximum_negative_or_null_is_bad_user_input(
    gql: GraphQL, rows: list[Node]
) -> None:
    for first in [501, 10_000, -1, None]:
        body = gql(PAGE, {"first": first})
        assert body["data"] is None, first
        assert error_code(body) == "BAD_USER_INPUT", first
        assert body["errors"][0]["extensions"]["field"] == "first"
        assert body["errors"][0]["path"] == ["trends"]


def test_first_defaults_to_fifty(gql: GraphQL, db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, csv_text([trend_row(macrotrend=f"Macrotrend {i}") for i in range(51)]))
    body = gql("{ trends { totalCount nodes { id } pageInfo { hasNextPage } } }")
    assert body["data"]["trends"]["totalCount"] == 51
    assert len(body["data"]["trends"]["nodes"]) == 50
    assert body["data"]["trends"]["pageInfo"]["hasNextPage"] is True


def test_a_cursor_used_with_another_order_is_bad_user_input(gql: GraphQL, rows: list[Node]) -> None:
    pairs: list[tuple[list[dict[str, str]] | None, list[dict[str, str]] | None]] = [
        ([{"field": "MEGATREND"}], [{"field": "MACROTREND"}]),
        ([{"field": "MEGATREND"}], [{"field": "MEGATREND", "direction": "DESC"}]),
        ([{"field": "PUBLICATIONS"}], [{"field": "PATENTS"}]),
        ([{"field": "UPLOADED_AT"}], [{"field": "UPDATED_AT"}]),
        (None, [{"field": "MEGATREND"}]),
        ([{"field": "MEGATREND"}], None),
        ([{"field": "MEGATREND"}, {"field": "PATENTS"}], [{"field": "PATENTS"}]),
    ]
    for issued_by, used_with in pairs:
        cursor = gql(PAGE, {"orderBy": issued_by, "first": 2})["data"]["trends"]["pageInfo"]
        body = gql(PAGE, {"orderBy": used_with, "first": 2, "after": cursor["endCursor"]})
        assert error_code(body) == "BAD_USER_INPUT", (issued_by, used_with)
        assert body["errors"][0]["extensions"]["field"] == "after"


def test_a_garbage_cursor_is_bad_user_input(gql: GraphQL, rows: list[Node]) -> None:
    some_id = fetch_all(gql)[0]["id"]
    for cursor in ["garbage", "", "!!!", "W10", some_id, base64.b64encode(b"[1]").decode()]:
        body = gql(PAGE, {"first": 2, "after": cursor})
        assert error_code(body) == "BAD_USER_INPUT", cursor
        assert body["errors"][0]["extensions"]["field"] == "after"


def test_order_by_takes_at_most_three_entries_of_distinct_fields(
    gql: GraphQL, rows: list[Node]
) -> None:
    three = [{"field": "MEGATREND"}, {"field": "PATENTS", "direction": "DESC"}, {"field": "ID"}]
    assert "errors" not in gql(PAGE, {"orderBy": three, "first": 2})
    refused = {
        "four entries": [*three, {"field": "PUBLICATIONS"}],
        "a repeated field": [{"field": "MEGATREND"}, {"field": "MEGATREND", "direction": "DESC"}],
        "a repeated id": [{"field": "ID"}, {"field": "ID"}],
    }
    for why, order in refused.items():
        body = gql(PAGE, {"orderBy": order, "first": 2})
        assert error_code(body) == "BAD_USER_INPUT", why
        assert body["errors"][0]["extensions"]["field"] == "orderBy", why
        assert body["data"] is None
    message = gql(PAGE, {"orderBy": refused["four entries"]})["errors"][0]["message"]
    assert message == "orderBy takes at most 3 entries, got 4"


def test_a_cursor_longer_than_any_of_ours_is_refused_before_decoding(
    gql: GraphQL, rows: list[Node]
) -> None:
    body = gql(PAGE, {"first": 2, "after": "A" * 5000})
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "after"
    assert "A" * 100 not in body["errors"][0]["message"]


def test_a_cursor_of_the_longest_values_is_accepted(
    gql: GraphQL, db: Database, tmp_path: Path
) -> None:
    load(db, tmp_path, csv_text([trend_row(megatrend="é" * 150, macrotrend="€" * 200)]))
    load(db, tmp_path, csv_text([trend_row(megatrend="é" * 150, macrotrend="€" * 199)]))
    order = [{"field": "MEGATREND"}, {"field": "MACROTREND", "direction": "DESC"}]
    first = gql(PAGE, {"orderBy": order, "first": 1})["data"]["trends"]
    after = first["pageInfo"]["endCursor"]
    second = gql(PAGE, {"orderBy": order, "first": 1, "after": after})["data"]["trends"]
    assert second["nodes"][0]["macrotrend"] == "€" * 199


def test_cursors_are_stable_between_requests(gql: GraphQL, rows: list[Node]) -> None:
    order = [{"field": "PUBLICATIONS", "direction": "DESC"}]
    once = gql(PAGE, {"orderBy": order, "first": 10})["data"]["trends"]["edges"]
    again = gql(PAGE, {"orderBy": order, "first": 10})["data"]["trends"]["edges"]
    assert once == again


# Ids


def test_ids_round_trip_into_trend(gql: GraphQL, rows: list[Node]) -> None:
    nodes = fetch_all(gql)
    # A document may hold 15 aliases (max_query_aliases).
    for start in range(0, len(nodes), 15):
        chunk = nodes[start : start + 15]
        fields = " ".join(
            f't{i}: trend(id: "{n["id"]}") {{ {TREND_FIELDS} }}' for i, n in enumerate(chunk)
        )
        body = gql(f"{{ {fields} }}")
        assert "errors" not in body, body
        assert [body["data"][f"t{i}"] for i in range(len(chunk))] == chunk


def test_trend_by_id_through_a_variable(gql: GraphQL, rows: list[Node]) -> None:
    node = fetch_all(gql, {"macrotrend": "cobots", "steepl": "S"})[0]
    body = gql(f"query($id: ID!) {{ trend(id: $id) {{ {TREND_FIELDS} }} }}", {"id": node["id"]})
    assert body == {"data": {"trend": node}}


def test_ids_are_opaque_and_distinct(gql: GraphQL, rows: list[Node]) -> None:
    ids = [n["id"] for n in fetch_all(gql)]
    assert len(set(ids)) == len(ids)
    for public_id in ids:
        assert not public_id.isdigit()
        assert public_id != str(_by_pk({"id": public_id}))


def test_an_unknown_well_formed_id_is_null(gql: GraphQL, rows: list[Node]) -> None:
    largest = max(_by_pk(n) for n in fetch_all(gql))
    for pk in (largest + 1, largest + 1000, 2**31 - 1):
        body = gql(f'{{ trend(id: "{encode_id(pk)}") {{ id megatrend }} }}')
        assert body == {"data": {"trend": None}}


def test_a_malformed_id_is_bad_user_input(gql: GraphQL, rows: list[Node]) -> None:
    malformed = [
        "nope",
        "",
        "1",
        base64.urlsafe_b64encode(b"Trend:2147483648").decode(),  # beyond the id column
        base64.urlsafe_b64encode(b"Trend:-1").decode(),
        base64.urlsafe_b64encode(b"Other:1").decode(),
    ]
    for public_id in malformed:
        body = gql("query($id: ID!) { trend(id: $id) { id } }", {"id": public_id})
        assert body["data"] == {"trend": None}, public_id
        assert error_code(body) == "BAD_USER_INPUT", public_id
        assert body["errors"][0]["extensions"]["field"] == "id"
        assert body["errors"][0]["path"] == ["trend"]


def test_a_cursor_is_no_id(gql: GraphQL, rows: list[Node]) -> None:
    cursor = gql(PAGE, {"first": 1})["data"]["trends"]["edges"][0]["cursor"]
    body = gql("query($id: ID!) { trend(id: $id) { id } }", {"id": cursor})
    assert error_code(body) == "BAD_USER_INPUT"


# Aggregates


def readiness(rows: Iterable[Node], megatrend: str) -> list[dict[str, Any]]:
    groups: dict[str, list[Node]] = defaultdict(list)
    for row in rows:
        if row["megatrend"].lower() == megatrend.lower():
            groups[row["macrotrend"].lower()].append(row)
    result = []
    for members in groups.values():
        scores = [
            TRL_SCORE[r["technologyReadinessLevel"]]
            for r in members
            if r["technologyReadinessLevel"]
        ]
        result.append(
            {
                "macrotrend": min(r["macrotrend"] for r in members),
                "trendCount": len(members),
                "ratedCount": len(scores),
                "averageTrlScore": sum(scores) / len(scores) if scores else None,
            }
        )
    return sorted(result, key=lambda r: r["macrotrend"])


READINESS = """
query($megatrend: String!) {
  macrotrendReadiness(megatrend: $megatrend) {
    macrotrend trendCount ratedCount averageTrlScore
  }
}
"""


def test_macrotrend_readiness_of_the_sample_ai_megatrend(gql: GraphQL, sample: list[Node]) -> None:
    answer = gql(READINESS, {"megatrend": "ai"})["data"]["macrotrendReadiness"]
    expected = readiness(sample, "AI")
    assert len(expected) == 10
    assert answer == expected
    assert [r["macrotrend"] for r in answer] == sorted(r["macrotrend"] for r in answer)


def test_macrotrend_readiness_of_each_sample_megatrend_ignores_its_case(
    gql: GraphQL, sample: list[Node]
) -> None:
    for megatrend in sorted({r["megatrend"] for r in sample}):
        answer = gql(READINESS, {"megatrend": megatrend.upper()})["data"]["macrotrendReadiness"]
        assert answer == readiness(sample, megatrend), megatrend


def test_macrotrend_readiness_averages_several_rows_and_ignores_unrated_ones(
    gql: GraphQL, db: Database, tmp_path: Path
) -> None:
    specs = [
        ("Robotics", "Cobots", "Pilot"),
        ("Robotics", "Cobots", "Deploy"),
        ("Robotics", "cobots", "Development"),
        ("Robotics", "Cobots", None),
        ("Robotics", "Humanoids", None),
        ("Robotics", "Humanoids", None),
        ("Robotics", "Swarms", "Pilot"),
        ("Robotics", "Swarms", "Development"),
        ("Robotics", "Exoskeletons", "Deploy"),
        ("Robotics Plus", "Cobots", "Pilot"),
        ("Manufacturing", "Cobots", "Deploy"),
    ]
    imported = [
        trend_row(
            megatrend=megatrend,
            macrotrend=macrotrend,
            technology_readiness_level=trl,
            challenges_and_research_gaps=f"Challenge {i}",
        )
        for i, (megatrend, macrotrend, trl) in enumerate(specs)
    ]
    load(db, tmp_path, csv_text(imported))
    answer = gql(READINESS, {"megatrend": "ROBOTICS"})["data"]["macrotrendReadiness"]
    assert answer == [
        {"macrotrend": "Cobots", "trendCount": 4, "ratedCount": 3, "averageTrlScore": 5.0},
        {"macrotrend": "Exoskeletons", "trendCount": 1, "ratedCount": 1, "averageTrlScore": 8.0},
        {"macrotrend": "Humanoids", "trendCount": 2, "ratedCount": 0, "averageTrlScore": None},
        {"macrotrend": "Swarms", "trendCount": 2, "ratedCount": 2, "averageTrlScore": 3.5},
    ]
    assert answer == readiness([expected_node(r) for r in imported], "robotics")


def test_macrotrend_readiness_of_an_unknown_megatrend_is_empty(
    gql: GraphQL, sample: list[Node]
) -> None:
    assert gql(READINESS, {"megatrend": "A"}) == {"data": {"macrotrendReadiness": []}}


def megatrend_summaries(rows: Iterable[Node]) -> list[dict[str, Any]]:
    groups: dict[str, list[Node]] = defaultdict(list)
    for row in rows:
        groups[row["megatrend"].lower()].append(row)
    return sorted(
        (
            {
                "name": min(r["megatrend"] for r in members),
                "trendCount": len(members),
                "macrotrendCount": len({r["macrotrend"].lower() for r in members}),
            }
            for members in groups.values()
        ),
        key=lambda s: s["name"],
    )


MEGATRENDS = "{ megatrends { name trendCount macrotrendCount } }"


def test_megatrends_of_the_sample(gql: GraphQL, sample: list[Node]) -> None:
    answer = gql(MEGATRENDS)["data"]["megatrends"]
    assert answer == megatrend_summaries(sample)
    assert sum(s["trendCount"] for s in answer) == 44
    assert len(answer) == 8


def test_megatrends_count_distinct_macrotrends_ignoring_case(
    gql: GraphQL, rows: list[Node]
) -> None:
    answer = {s["name"]: s for s in gql(MEGATRENDS)["data"]["megatrends"]}
    assert answer["AI"] == {"name": "AI", "trendCount": 11, "macrotrendCount": 10}
    assert answer["Robotics"] == {"name": "Robotics", "trendCount": 2, "macrotrendCount": 1}
    assert list(answer.values()) == megatrend_summaries(rows)


def test_megatrends_of_an_empty_database(gql: GraphQL) -> None:
    assert gql(MEGATRENDS) == {"data": {"megatrends": []}}


FACETS = """
query($filter: TrendFilter) {
  trendFacets(filter: $filter) {
    total
    technologyReadinessLevel { value count }
    impactStrength { value count }
    steepl { value count }
    megatrend { value count }
  }
}
"""


def facets(rows: Sequence[Node]) -> dict[str, Any]:
    def counts(field: str) -> dict[str, int]:
        return dict(Counter(r[field] or "NONE" for r in rows))

    megatrends: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        megatrends[row["megatrend"].lower()].append(row["megatrend"])
    return {
        "total": len(rows),
        "technologyReadinessLevel": counts("technologyReadinessLevel"),
        "impactStrength": counts("impactStrength"),
        "steepl": counts("steepl"),
        "megatrend": {min(names): len(names) for names in megatrends.values()},
    }


def facets_answer(gql: GraphQL, trend_filter: Mapping[str, Any] | None) -> dict[str, Any]:
    body = gql(FACETS, {"filter": trend_filter})
    assert "errors" not in body, body
    answer = body["data"]["trendFacets"]
    result: dict[str, Any] = {"total": answer.pop("total")}
    for name, pairs in answer.items():
        values = [p["value"] for p in pairs]
        assert len(values) == len(set(values)), name
        result[name] = {p["value"]: p["count"] for p in pairs}
    return result


def test_facets_of_the_sample_use_enum_names(gql: GraphQL, sample: list[Node]) -> None:
    answer = facets_answer(gql, None)
    assert answer == facets(sample)
    assert set(answer["technologyReadinessLevel"]) == {"PILOT", "DEVELOPMENT", "DEPLOY"}
    assert set(answer["impactStrength"]) == {"LOW", "MEDIUM", "HIGH"}
    assert set(answer["steepl"]) == {"S", "T", "E", "P", "L"}


def test_facets_report_a_missing_trl_as_none(gql: GraphQL, rows: list[Node]) -> None:
    answer = facets_answer(gql, None)
    assert answer == facets(rows)
    assert answer["technologyReadinessLevel"]["NONE"] == 2


def test_facets_count_under_the_filter(gql: GraphQL, rows: list[Node]) -> None:
    filters: list[dict[str, str]] = [
        {"megatrend": "ai"},
        {"search": "data"},
        {"technologyReadinessLevel": "DEPLOY", "impactStrength": "MEDIUM"},
        {"steepl": "P", "search": "a"},
        {"macrotrend": "cobots"},
        {"megatrend": "nothing"},
    ]
    for trend_filter in filters:
        expected = facets(matching(rows, trend_filter))
        assert facets_answer(gql, trend_filter) == expected, trend_filter


# Search through the trigram index (PostgreSQL)

INDEXED_TERMS = [
    "renewable",
    "GRIP S",
    "100%",
    "snake_case",
    "c:\\data",
    "input/output",
    "%_",
    "ai",
    "e",
    "no such words anywhere",
]


def _searched_ids(session: Session, term: str) -> list[int]:
    page = queries.list_trends(
        session, trend_filter=filters.TrendFilter(search=term), first=500, with_total=True
    )
    assert page.total == len(page.rows)
    return [row.id for row in page.rows]


def test_search_is_served_by_the_trigram_index_with_the_same_answers(
    backend: Settings, db: Database, rows: list[Node]
) -> None:
    if backend.database_url.startswith("sqlite"):
        pytest.skip("SQLite has no trigram index: its search scans")
    for term in INDEXED_TERMS:
        with db.session() as session:
            scanned = _searched_ids(session, term)
        assert len(scanned) == len(searched(rows, term)), term
        with db.session() as session:
            # On a few rows the planner rightly scans; forbid the table and id scans to see
            # whether the index can answer the very statements the search sends.
            forbid_scans(session, "seqscan", "indexscan")
            searched_filter = filters.TrendFilter(search=term)

            def page_and_count() -> None:
                _searched_ids(session, term)  # noqa: B023
                counts.count_trends(session, searched_filter)  # noqa: B023

            sent = sent_statements(session, page_and_count)
            assert len(sent) == 2  # the page, and a count (the page alone holds every match)
            # The page looks in every searched column. The count holds two counts, of which it
            # runs one (counts.SplitSearch): in the columns trend_summary does not hold (when
            # some names hold the term, summed there), or in every searched column.
            every = len(counts.NAMES) + len(counts.TEXTS)
            indexed = [every, len(counts.TEXTS) + every]
            for (statement, parameters), columns in zip(sent, indexed, strict=True):
                plan = session.connection().exec_driver_sql("EXPLAIN " + statement, parameters)
                text = "\n".join(plan.scalars())
                assert text.count("Bitmap Index Scan on ix_trend_search") == columns, (term, text)
            assert _searched_ids(session, term) == scanned, term


def test_the_count_of_a_term_found_in_names_only_reads_no_trend(
    backend: Settings, db: Database, rows: list[Node]
) -> None:
    if backend.database_url.startswith("sqlite"):
        pytest.skip("SQLite's planner is not PostgreSQL's; the statement is the same")
    term = "quantum"
    found = searched(rows, term)
    assert found
    assert all(term not in str(row[f]).lower() for row in found for f in SEARCHED[2:])
    statement = counts.count_statement(filters.TrendFilter(search=term), "postgresql")
    with db.session() as session:
        forbid_scans(session, "seqscan")  # a few rows: as at scale
        assert session.execute(statement).scalar_one() == len(found)
        [sent] = sent_statements(session, lambda: session.execute(statement))
        plan = plans.explain(session.connection(), plans.Statement(*sent))
    assert plan.tables_read.get("trend", 0) == 0, plan.summary()


def test_a_first_page_of_what_changed_counts_the_matches_it_collected(
    db: Database, rows: list[Node]
) -> None:
    since = filters.TrendFilter(updated_since=datetime(2000, 1, 1, tzinfo=UTC))
    later = filters.TrendFilter(updated_since=datetime(2999, 1, 1, tzinfo=UTC))
    with db.session() as session:

        def page(trend_filter: filters.TrendFilter, after: str | None) -> queries.TrendPage:
            found = queries.list_trends(
                session, trend_filter=trend_filter, first=2, after=after, with_total=True
            )
            assert found.total is not None
            return found

        pages: list[queries.TrendPage] = []
        assert len(sent_statements(session, lambda: pages.append(page(since, None)))) == 1
        assert (pages[0].total, len(pages[0].rows)) == (len(rows), 2)
        after = pages[0].keyset.cursor(pages[0].rows[-1])
        # A page after a cursor collected only what follows it: its count is read on its own.
        assert len(sent_statements(session, lambda: pages.append(page(since, after)))) == 2
        assert pages[1].total == len(rows)
        assert page(later, None).total == 0


def test_updated_since_is_served_by_the_updated_at_index(
    backend: Settings, db: Database, rows: list[Node]
) -> None:
    if backend.database_url.startswith("sqlite"):
        pytest.skip("SQLite's planner is not PostgreSQL's; the index exists on both")
    since = filters.TrendFilter(updated_since=datetime(2000, 1, 1, tzinfo=UTC))
    with db.session() as session:
        forbid_scans(session, "seqscan")  # a few rows: it would scan
        sent = sent_statements(session, lambda: counts.count_trends(session, since))
        [(statement, parameters)] = sent
        plan = session.connection().exec_driver_sql("EXPLAIN " + statement, parameters)
        assert "ix_trend_updated_at" in "\n".join(plan.scalars())
        assert counts.count_trends(session, since) == len(rows)
