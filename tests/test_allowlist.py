"""Registered operations: `trends persist` (the real command), PERSISTED_QUERIES_ONLY over HTTP."""

import hashlib
import io
import json
import subprocess
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import (
    LOGIN,
    PASSWORD,
    SAMPLE,
    TRENDS,
    code,
    load,
    make_user,
    settings_env,
    trends_environment,
    web_client,
    with_settings,
)
from graphql import parse, print_ast

from trends_gql.cli import main
from trends_gql.core.db import Database
from trends_gql.core.models import PersistedOperation
from trends_gql.core.settings import Settings

OPERATIONS = """
# The dashboard's operations, as a frontend keeps them.
query Count { trends { totalCount } }

query Page($first: Int!) {
  trends(first: $first) { ...Page }
}

fragment Page on TrendConnection { totalCount nodes { macrotrend } }
"""
SIGN_IN = """mutation SignIn($email: String!, $password: String!) {
  login(email: $email, password: $password) { email }
}"""
NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def printed(text: str) -> str:
    return print_ast(parse(text))


def persist(settings: Settings, path: Path) -> subprocess.CompletedProcess[str]:
    """`trends persist FILE` with these settings, through the command's entry point in this
    process: a process per call would take seconds (test_a_missing_file_exits_2 runs the real
    command)."""
    out, err = io.StringIO(), io.StringIO()
    with trends_environment(settings), redirect_stdout(out), redirect_stderr(err):
        status = main(["persist", str(path)])
    return subprocess.CompletedProcess(["persist", path], status, out.getvalue(), err.getvalue())


def persist_in_a_process(settings: Settings, path: Path) -> subprocess.CompletedProcess[str]:
    """`trends persist FILE` with these settings, in a process of its own."""
    return subprocess.run(
        [TRENDS, "persist", str(path)],
        env={**settings_env(settings), "LOG_LEVEL": "WARNING"},
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


def persisted(key: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": key}}


def by_key(client: httpx.Client, key: str, **variables: Any) -> httpx.Response:
    body = {"extensions": persisted(key), "variables": variables}
    return client.post("/graphql", json=body)


def registered(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(PersistedOperation)) or 0)


@pytest.fixture
def settings(backend: Settings, db: Database, rate_namespace: str, tmp_path: Path) -> Settings:
    load(db, tmp_path, SAMPLE)
    return with_settings(backend, rate_limit_namespace=rate_namespace)


@pytest.fixture
def only(settings: Settings) -> Iterator[httpx.Client]:
    """An anonymous client of an app that runs registered operations only."""
    with web_client(with_settings(settings, persisted_queries_only=True)) as client:
        yield client


def test_persist_registers_each_operation_of_a_file_under_its_hash(
    settings: Settings, db: Database, tmp_path: Path, only: httpx.Client
) -> None:
    (path := tmp_path / "operations.graphql").write_text(OPERATIONS)
    result = persist(settings, path)
    assert result.returncode == 0, result.stderr
    count = printed("query Count { trends { totalCount } }")
    page = printed(
        "query Page($first: Int!) { trends(first: $first) { ...Page } }"
        " fragment Page on TrendConnection { totalCount nodes { macrotrend } }"
    )
    assert result.stdout == (
        f"{path}: 2 operations, 2 newly registered\n{sha256(count)}\tCount\n{sha256(page)}\tPage\n"
    )
    assert result.stderr == ""
    # Registered: by hash (POST and GET), and as their exact text.
    assert by_key(only, sha256(count)).json() == {"data": {"trends": {"totalCount": 44}}}
    paged = by_key(only, sha256(page), first=2).json()["data"]["trends"]
    assert (paged["totalCount"], len(paged["nodes"])) == (44, 2)
    params = {"extensions": json.dumps(persisted(sha256(count)))}
    got = only.get("/graphql", params=params, headers={"Apollo-Require-Preflight": "1"})
    assert got.json() == {"data": {"trends": {"totalCount": 44}}}
    assert only.post("/graphql", json={"query": count}).json()["data"]
    again = persist(settings, path)
    assert again.stdout.splitlines()[0] == f"{path}: 2 operations, 0 newly registered"
    assert registered(db) == 2


def test_only_registered_operations_run_for_anyone_but_staff(
    settings: Settings, db: Database, tmp_path: Path, only: httpx.Client
) -> None:
    (path := tmp_path / "operations.graphql").write_text(OPERATIONS)
    assert persist(settings, path).returncode == 0
    count = "query Count { trends { totalCount } }"
    laid_out = "# as another client writes it\nquery Count {\n  trends {\n    totalCount,\n  }\n}\n"
    fragment_first = (
        "fragment Page on TrendConnection { totalCount nodes { macrotrend } }\n"
        "query Page($first: Int!) { trends(first: $first) { ...Page } }"
    )
    for text, variables in ((count, {}), (laid_out, {}), (fragment_first, {"first": 1})):
        response = only.post("/graphql", json={"query": text, "variables": variables})
        assert response.json()["data"]["trends"]["totalCount"] == 44, text
    unregistered = "{ megatrends { name } }"
    refusals = [
        only.post("/graphql", json={"query": unregistered}),
        only.post(
            "/graphql",
            json={"query": "query Count { trends { totalCount uploadedAt: totalCount } }"},
        ),
        only.get("/graphql", params={"query": unregistered}, headers={"X-Requested-With": "1"}),
        only.post(
            "/graphql", json={"query": unregistered, "extensions": persisted(sha256(unregistered))}
        ),
        only.post("/graphql", json=[{"query": count}, {"query": unregistered}]),
    ]
    for response in refusals:
        assert response.status_code == 403, response.text
        assert code(response.json()) == NOT_ALLOWED
    # An APQ client: its own hash is unknown, so it sends the text, which is registered.
    assert code(by_key(only, sha256(laid_out)).json()) == "PERSISTED_QUERY_NOT_FOUND"
    apq = {"query": laid_out, "extensions": persisted(sha256(laid_out))}
    assert only.post("/graphql", json=apq).json() == {"data": {"trends": {"totalCount": 44}}}
    assert by_key(only, sha256(laid_out)).json() == {"data": {"trends": {"totalCount": 44}}}
    mismatch = {"query": unregistered, "extensions": persisted(sha256(printed(count)))}
    assert code(only.post("/graphql", json=mismatch).json()) == "PERSISTED_QUERY_HASH_MISMATCH"
    make_user(db, "user@example.org")
    make_user(db, "staff@example.org", staff=True)
    # Signing in is an operation too: the console's must be registered (the README says so).
    sign_in = {"email": "staff@example.org", "password": PASSWORD}
    assert code(only.post("/graphql", json={"query": LOGIN, "variables": sign_in}).json()) == (
        NOT_ALLOWED
    )
    (path := tmp_path / "login.graphql").write_text(SIGN_IN)
    assert persist(settings, path).returncode == 0
    for email, runs in (("user@example.org", False), ("staff@example.org", True)):
        with web_client(with_settings(settings, persisted_queries_only=True)) as client:
            signed = by_key(client, sha256(printed(SIGN_IN)), email=email, password=PASSWORD)
            assert signed.json()["data"]["login"]["email"] == email
            response = client.post("/graphql", json={"query": unregistered})
            assert (response.status_code == 200 and "data" in response.json()) is runs


def test_manifests_of_apollo_and_relay_register_their_ids(
    settings: Settings, db: Database, tmp_path: Path, only: httpx.Client
) -> None:
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {
                "id": "a1",
                "name": "Count",
                "type": "query",
                "body": "query Count { trends { totalCount } }",
            }
        ],
    }
    relay = {"r1": "query Megatrends { megatrends { name } }"}
    for name, manifest in (("apollo.json", apollo), ("relay.json", relay)):
        (path := tmp_path / name).write_text(json.dumps(manifest))
        result = persist(settings, path)
        assert result.returncode == 0, result.stderr
    assert by_key(only, "a1").json() == {"data": {"trends": {"totalCount": 44}}}
    assert {"name": "AI"} in by_key(only, "r1").json()["data"]["megatrends"]
    # The exact text runs too; the same key with another document is refused.
    assert only.post("/graphql", json={"query": relay["r1"]}).json()["data"]
    (path := tmp_path / "changed.json").write_text(
        json.dumps({"r1": "query M { megatrends { name } }"})
    )
    result = persist(settings, path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: {path}: operation M: id 'r1' is registered with another document "
        "(nothing was registered)\n"
    )


def test_registered_operations_run_by_key_without_redis(settings: Settings, tmp_path: Path) -> None:
    (path := tmp_path / "operations.graphql").write_text("query Count { trends { totalCount } }")
    assert persist(settings, path).returncode == 0
    broken = with_settings(settings, redis_url="redis://127.0.0.1:1/0", cache_timeout=0.05)
    with web_client(broken) as client:
        response = by_key(client, sha256(printed(path.read_text())))
    assert response.json() == {"data": {"trends": {"totalCount": 44}}}


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (
            "broken.graphql",
            "query A { trends { totalCount } }\n\nquery B { trends { ",
            "line 3, column 20: Syntax Error: Expected Name, found <EOF>.",
        ),
        (
            "unknown.graphql",
            "query A {\n  trends { total }\n}",
            "line 2, column 12: Cannot query field 'total' on type 'TrendConnection'.",
        ),
        (
            "anonymous.graphql",
            "fragment F on Query { megatrends { name } }\n{ ...F }",
            "line 2: an operation without a name: name every operation",
        ),
        ("empty.graphql", "# nothing yet\n", "no operations to register"),
        ("bad.json", '{"a": ', "not JSON: Expecting value at line 1, column 7"),
        (
            "invalid.json",
            json.dumps({"x1": "query X { nothing }"}),
            "operation 'x1': line 1, column 11: Cannot query field 'nothing' on type 'Query'.",
        ),
        (
            "two.json",
            json.dumps(
                {
                    "format": "apollo-persisted-query-manifest",
                    "version": 1,
                    "operations": [
                        {
                            "id": "t",
                            "name": "T",
                            "body": "query A { me { id } } query B { me { id } }",
                        }
                    ],
                }
            ),
            "operation 1 (T): the body must hold one operation, not 2",
        ),
        ("list.json", "[]", "neither Apollo's persisted-query manifest nor Relay's map of ids"),
    ],
)
def test_a_bad_file_is_one_line_that_says_where_and_nothing_is_registered(
    settings: Settings,
    db: Database,
    tmp_path: Path,
    name: str,
    content: str,
    problem: str,
) -> None:
    (path := tmp_path / name).write_text(content)
    result = persist(settings, path)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: {path}: {problem} (nothing was registered)\n"
    assert registered(db) == 0


# The command itself, as a process: what it does with the database is tested on both backends.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_missing_file_exits_2(settings: Settings, tmp_path: Path) -> None:
    result = persist_in_a_process(settings, tmp_path / "nowhere.graphql")
    assert (result.returncode, result.stderr) == (
        2,
        f"error: no such file: {tmp_path / 'nowhere.graphql'}\n",
    )
