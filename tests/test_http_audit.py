"""The graphql-http conformance audits (GraphQL over HTTP) against the real server."""

import shutil
import subprocess
from pathlib import Path

from conftest import serve

from trends_gql.core.settings import Settings
from trends_gql.web.app import create_app

AUDIT = Path(__file__).parent / "http_audit"


def test_the_graphql_over_http_audits_pass_without_errors_or_warnings(
    sqlite_settings: Settings,
) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the graphql-http audits"
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), "run `make install` (npm ci)"
    with serve(create_app(sqlite_settings)) as url:
        done = subprocess.run(
            [node, str(AUDIT / "audit.mjs"), f"{url}/graphql"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    # Notices left: GETs with an operation are refused without a preflight header (CSRF).
    assert done.stdout.strip().endswith("0 errors, 0 warnings, 3 notices"), done.stdout
