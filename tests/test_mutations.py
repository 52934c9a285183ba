"""Staff mutations over HTTP: the permission on every staff field, validation, duplicates."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import code, login, make_user, post, web_client, with_settings

from trends_gql.core.db import Database
from trends_gql.core.pagination import encode_id
from trends_gql.core.settings import Settings
from trends_gql.schema import schema
from trends_gql.schema.mutation import STAFF

# Not staff-only: endOtherSessions needs a signed-in user of any role (test_sessions.py).
PUBLIC_MUTATIONS = {"login", "logout", "endOtherSessions"}
FIELDS = """id megatrend macrotrend challengesAndResearchGaps totalCountOfPublications
  totalCountOfPatents technologyReadinessLevel impactStrength steepl relevantIndustries
  realWorldApplicationAndUseCases uploadedAt updatedAt"""
CREATE = f"mutation($input: TrendInput!) {{ createTrend(input: $input) {{ {FIELDS} }} }}"
UPDATE = f"""mutation($id: ID!, $input: TrendPatch!) {{
  updateTrend(id: $id, input: $input) {{ {FIELDS} }}
}}"""
DELETE = "mutation($id: ID!) { deleteTrend(id: $id) }"
TREND = f"query($id: ID!) {{ trend(id: $id) {{ {FIELDS} }} }}"

NEW = {
    "megatrend": "  AI ",
    "macrotrend": "Edge AI",
    "challengesAndResearchGaps": "High energy consumption",
    "totalCountOfPublications": 12,
}


@pytest.fixture
def web(backend: Settings, db: Database, rate_namespace: str) -> Iterator[httpx.Client]:
    """A client of an app of its own."""
    with web_client(with_settings(backend, rate_limit_namespace=rate_namespace)) as client:
        yield client


@pytest.fixture
def staff(web: httpx.Client, db: Database) -> httpx.Client:
    make_user(db, "staff@example.org", staff=True)
    assert login(web, "staff@example.org")["data"]
    return web


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    return post(client, CREATE, input={**NEW, **fields})


def test_every_mutation_but_the_session_ones_requires_staff() -> None:
    mutation = schema.schema_converter.type_map["Mutation"].definition
    for field in mutation.fields:
        name = schema.config.name_converter.get_graphql_name(field)
        if name in PUBLIC_MUTATIONS:
            assert not field.permission_classes, name
        else:
            assert field.permission_classes == STAFF, f"{name} is not guarded by IsStaff"


STAFF_CALLS = [
    pytest.param(CREATE, {"input": NEW}, id="createTrend"),
    pytest.param(UPDATE, {"id": encode_id(1), "input": {"steepl": "L"}}, id="updateTrend"),
    pytest.param(DELETE, {"id": encode_id(1)}, id="deleteTrend"),
]


@pytest.mark.parametrize(("document", "variables"), STAFF_CALLS)
def test_anonymous_callers_are_unauthenticated(
    web: httpx.Client, document: str, variables: dict[str, Any]
) -> None:
    body = post(web, document, **variables)
    assert body["data"] is None
    assert code(body) == "UNAUTHENTICATED"


@pytest.mark.parametrize(("document", "variables"), STAFF_CALLS)
def test_signed_in_non_staff_are_forbidden(
    web: httpx.Client, db: Database, document: str, variables: dict[str, Any]
) -> None:
    make_user(db, "reader@example.org")
    login(web, "reader@example.org")
    assert code(post(web, document, **variables)) == "FORBIDDEN"


def test_staff_create_update_and_delete_a_trend(staff: httpx.Client) -> None:
    created = create(staff)["data"]["createTrend"]
    assert created["megatrend"] == "AI"
    assert (created["impactStrength"], created["steepl"]) == ("LOW", "S")
    assert created["technologyReadinessLevel"] is None
    assert created["uploadedAt"] == created["updatedAt"]
    assert post(staff, TREND, id=created["id"])["data"]["trend"] == created

    patch = {"steepl": "L", "totalCountOfPatents": 3, "totalCountOfPublications": None}
    updated = post(staff, UPDATE, id=created["id"], input=patch)["data"]["updateTrend"]
    assert (updated["steepl"], updated["totalCountOfPatents"]) == ("L", 3)
    assert updated["totalCountOfPublications"] is None
    unchanged = {k: v for k, v in created.items() if k not in {*patch, "updatedAt"}}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert updated["updatedAt"] > created["updatedAt"]

    assert post(staff, DELETE, id=created["id"]) == {"data": {"deleteTrend": created["id"]}}
    assert post(staff, TREND, id=created["id"]) == {"data": {"trend": None}}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"megatrend": "   "}, "megatrend", "is required"),
        ({"macrotrend": "x" * 201}, "macrotrend", "too long"),
        ({"totalCountOfPublications": -1}, "totalCountOfPublications", "negative"),
        ({"challengesAndResearchGaps": "a\x00b"}, "challengesAndResearchGaps", "NUL"),
    ],
)
def test_invalid_input_names_the_field(
    staff: httpx.Client, fields: dict[str, Any], field: str, message: str
) -> None:
    body = create(staff, **fields)
    assert code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == field
    assert message in body["errors"][0]["message"]
    assert post(staff, "{ trends { totalCount } }")["data"]["trends"]["totalCount"] == 0


def test_every_invalid_field_is_listed(staff: httpx.Client) -> None:
    body = create(staff, megatrend="", totalCountOfPatents=-5)
    errors = body["errors"][0]["extensions"]["errors"]
    assert [e["field"] for e in errors] == ["megatrend", "totalCountOfPatents"]


def test_a_duplicate_of_another_trend_is_refused(staff: httpx.Client) -> None:
    first = create(staff)["data"]["createTrend"]
    again = create(staff, megatrend="AI")
    assert code(again) == "BAD_USER_INPUT"
    assert again["errors"][0]["extensions"]["duplicateOf"] == first["id"]
    other = create(staff, macrotrend="Generative AI")["data"]["createTrend"]
    clash = post(staff, UPDATE, id=other["id"], input={"macrotrend": "Edge AI"})
    assert code(clash) == "BAD_USER_INPUT"
    assert clash["errors"][0]["extensions"]["duplicateOf"] == first["id"]


def test_an_update_that_changes_nothing_keeps_the_trend(staff: httpx.Client) -> None:
    created = create(staff)["data"]["createTrend"]
    same = post(staff, UPDATE, id=created["id"], input={"megatrend": "AI"})
    assert same["data"]["updateTrend"]["megatrend"] == "AI"


def test_non_null_fields_cannot_be_cleared(staff: httpx.Client) -> None:
    created = create(staff)["data"]["createTrend"]
    for field in ("impactStrength", "steepl", "megatrend"):
        body = post(staff, UPDATE, id=created["id"], input={field: None})
        assert code(body) == "BAD_USER_INPUT", field
        assert body["errors"][0]["extensions"]["field"] == field


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (UPDATE, {"id": encode_id(999_999), "input": {"steepl": "L"}}),
        (DELETE, {"id": encode_id(999_999)}),
    ],
)
def test_unknown_ids_are_not_found(
    staff: httpx.Client, document: str, variables: dict[str, Any]
) -> None:
    assert code(post(staff, document, **variables)) == "NOT_FOUND"


@pytest.mark.parametrize("document", [UPDATE, DELETE])
def test_malformed_ids_are_bad_user_input(staff: httpx.Client, document: str) -> None:
    body = post(staff, document, id="nope", input={"steepl": "L"})
    assert code(body) == "BAD_USER_INPUT"


def test_staff_writes_are_logged_with_the_email(
    staff: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="trends_gql.trends.curation")
    created = create(staff)["data"]["createTrend"]
    post(staff, UPDATE, id=created["id"], input={"steepl": "P"})
    post(staff, DELETE, id=created["id"])
    messages = [r.getMessage() for r in caplog.records if r.name == "trends_gql.trends.curation"]
    assert len(messages) == 3
    assert all("staff@example.org" in m for m in messages)
