"""User accounts: the service's rules and hashing, and the user commands of the CLI."""

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
import sqlalchemy as sa
from argon2 import extract_parameters, profiles
from conftest import PASSWORD, make_user

from trends_gql.accounts import sessions, users
from trends_gql.cli import main
from trends_gql.core.db import Database, utcnow
from trends_gql.core.errors import BadUserInput, NotFound
from trends_gql.core.models import User, UserSession
from trends_gql.core.settings import Settings, get_settings

TRENDS = str(Path(sys.executable).with_name("trends"))


def stored(db: Database, email: str) -> User:
    """The user as stored."""
    user = db.call_sync(users.get_user_by_email, email)
    assert user is not None
    return user


def test_create_user_stores_the_email_in_lower_case_and_an_argon2_hash(db: Database) -> None:
    make_user(db, "  Ann@Example.ORG ")
    user = stored(db, "ann@example.org")
    assert user.email == "ann@example.org"
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    assert user.created_at.tzinfo is not None
    assert user.last_login is None


def test_a_superuser_is_staff_too(db: Database) -> None:
    make_user(db, "root@example.org", superuser=True)
    user = stored(db, "root@example.org")
    assert (user.is_staff, user.is_superuser) == (True, True)


def test_an_email_is_registered_once_whatever_its_case(db: Database) -> None:
    make_user(db, "ann@example.org")
    with pytest.raises(BadUserInput, match="exists"):
        make_user(db, "ANN@example.org")


@pytest.mark.parametrize(
    "email", ["", "ann", "ann@", "@example.org", "ann@example", "a b@example.org", "a\x00@x.org"]
)
def test_malformed_emails_are_refused(db: Database, email: str) -> None:
    with pytest.raises(BadUserInput, match="not an email address"):
        make_user(db, email)


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("ann@example.org", "short", "at least 8 characters"),
        ("annabelle@example.org", "Annabelle", "the email's name"),
        ("ann@example.org", "x" * 1025, "at most 1024"),
    ],
)
def test_weak_passwords_are_refused(db: Database, email: str, password: str, message: str) -> None:
    with pytest.raises(BadUserInput, match=message):
        db.call_sync(lambda s: users.create_user(s, email, password))
    assert db.call_sync(users.list_users) == []


def test_authenticate_accepts_the_password_and_records_the_login(db: Database) -> None:
    make_user(db, "ann@example.org")
    user = db.call_sync(users.authenticate, "ANN@example.org", PASSWORD)
    assert user is not None
    assert stored(db, "ann@example.org").last_login is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [("ann@example.org", "wrong password"), ("nobody@example.org", PASSWORD), ("", "")],
)
def test_authenticate_refuses_wrong_credentials(db: Database, email: str, password: str) -> None:
    make_user(db, "ann@example.org")
    assert db.call_sync(users.authenticate, email, password) is None


def test_an_inactive_user_cannot_authenticate(db: Database) -> None:
    make_user(db, "ann@example.org")
    db.call_sync(users.set_active, "ann@example.org", False)
    assert db.call_sync(users.authenticate, "ann@example.org", PASSWORD) is None


def test_only_a_test_environment_hashes_with_cheap_parameters() -> None:
    assert profiles.RFC_9106_LOW_MEMORY.memory_cost == 65536  # 64 MiB, as the README says
    for env in ("development", "production"):
        hasher = users.password_hasher(env)
        assert extract_parameters(hasher.hash(PASSWORD)) == profiles.RFC_9106_LOW_MEMORY
    assert extract_parameters(users.password_hasher("test").hash(PASSWORD)) == profiles.CHEAPEST


# Timed in a process of default settings: at the test environment's cost (microseconds), the
# database lookup hides whether an unknown email skips the hash.
TIMING = """
import statistics, sys, time
from trends_gql.accounts import users
from trends_gql.core.db import Database
url, email, password = sys.argv[1:]
db = Database(url)
user = db.call_sync(users.create_user, email, password)
wrong, unknown = [], []
for _ in range(5):  # interleaved, so that the machine's load weighs on both alike
    for who, times in ((email, wrong), ("nobody@example.org", unknown)):
        started = time.perf_counter()
        assert db.call_sync(users.authenticate, who, "wrong password") is None
        times.append(time.perf_counter() - started)
print(user.password_hash.rsplit("$", 2)[0], statistics.median(unknown) / statistics.median(wrong))
"""


def test_unknown_email_takes_as_long_as_a_wrong_password_with_production_parameters(
    sqlite_settings: Settings,
) -> None:
    email = f"timing-{uuid.uuid4().hex[:8]}@example.org"
    env = {k: v for k, v in os.environ.items() if k != "TRENDS_ENV"}
    result = subprocess.run(
        [sys.executable, "-c", TIMING, sqlite_settings.database_url, email, PASSWORD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    db = Database(sqlite_settings.database_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(sa.delete(User).where(User.email == email))
    finally:
        db.dispose()
    assert result.returncode == 0, result.stderr
    parameters, ratio = result.stdout.split()
    assert parameters == "$argon2id$v=19$m=65536,t=3,p=4"
    # Without the dummy hash an unknown email answers hundreds of times faster.
    assert 0.33 < float(ratio) < 3, ratio


def open_sessions(db: Database, email: str, count: int) -> None:
    """Open `count` sessions of the user through the sessions service."""
    user_id = stored(db, email).id
    for _ in range(count):
        db.call_sync(
            lambda s: sessions.open_session(
                s, user_id, now=utcnow(), max_age=3600, client_address=None, user_agent=None
            )
        )


def session_count(db: Database) -> dict[str, int]:
    """Stored sessions per email."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(User.email, sa.func.count())
            .join(UserSession, UserSession.user_id == User.id)
            .group_by(User.email)
        )
        return dict(rows.all())


def test_a_new_password_ends_the_users_sessions_only(db: Database) -> None:
    make_user(db, "ann@example.org")
    make_user(db, "bob@example.org")
    open_sessions(db, "ann@example.org", 2)
    open_sessions(db, "bob@example.org", 1)
    db.call_sync(users.set_password, "ann@example.org", "another long password")
    assert db.call_sync(users.authenticate, "ann@example.org", "another long password") is not None
    assert session_count(db) == {"bob@example.org": 1}


@pytest.mark.parametrize("active", [False, True], ids=["deactivate", "reactivate"])
def test_activating_or_deactivating_ends_the_users_sessions(db: Database, active: bool) -> None:
    make_user(db, "ann@example.org")
    open_sessions(db, "ann@example.org", 2)
    db.call_sync(users.set_active, "ann@example.org", active)
    assert session_count(db) == {}


def test_a_refused_password_keeps_the_sessions(db: Database) -> None:
    make_user(db, "ann@example.org")
    open_sessions(db, "ann@example.org", 1)
    with pytest.raises(BadUserInput):
        db.call_sync(users.set_password, "ann@example.org", "short")
    assert session_count(db) == {"ann@example.org": 1}


def test_set_password_of_an_unknown_user_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        db.call_sync(users.set_password, "nobody@example.org", "long enough password")


@pytest.fixture
def cli_env(
    backend: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Environment of a `trends` process (or of main() here) using the test database."""
    monkeypatch.setenv("DATABASE_URL", backend.database_url)
    get_settings.cache_clear()
    yield {**os.environ, "DATABASE_URL": backend.database_url}
    get_settings.cache_clear()


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the installed `trends` command."""
    return subprocess.run(
        [TRENDS, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60
    )


# The command's prompts and input, in a process of its own: on one backend, since the service it
# calls is tested on both above.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_create_user_reads_the_password_from_stdin(db: Database, cli_env: dict[str, str]) -> None:
    result = run(
        cli_env,
        "create-user",
        "Ann@Example.org",
        "--staff",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "created ann@example.org (staff)\n"
    assert db.call_sync(users.authenticate, "ann@example.org", PASSWORD).is_staff


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # as above: the command
def test_create_user_prompts_twice_for_the_password(db: Database, cli_env: dict[str, str]) -> None:
    child = pexpect.spawn(
        TRENDS,
        ["create-user", "ann@example.org", "--superuser"],
        env=cli_env,
        encoding="utf-8",
        timeout=30,
    )
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect(r"Password \(again\): ")
    child.sendline(PASSWORD)
    child.expect("created ann@example.org \\(superuser\\)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert stored(db, "ann@example.org").is_superuser


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # as above: the command
def test_create_user_refuses_two_different_passwords(db: Database, cli_env: dict[str, str]) -> None:
    child = pexpect.spawn(
        TRENDS, ["create-user", "ann@example.org"], env=cli_env, encoding="utf-8", timeout=30
    )
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect(r"Password \(again\): ")
    child.sendline(PASSWORD + "x")
    child.expect("error: the two passwords differ")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert db.call_sync(users.list_users) == []


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["create-user", "ann@example.org", "--password-stdin"], "short\n", "at least 8"),
        (["create-user", "annabelle@x.org", "--password-stdin"], "annabelle\n", "email's name"),
        (["create-user", "not-an-email", "--password-stdin"], PASSWORD + "\n", "not an email"),
        (["set-password", "nobody@example.org", "--password-stdin"], PASSWORD, "no user"),
        (["deactivate-user", "nobody@example.org"], "", "no user"),
    ],
)
def test_user_commands_refuse_bad_input_with_a_message(
    db: Database,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))  # in this process: the input is the test
    assert main(args) == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ")
    assert message in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # as above: the command
def test_set_password_deactivate_and_list_users(
    db: Database, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    make_user(db, "ann@example.org", staff=True)
    make_user(db, "bob@example.org")
    result = run(
        cli_env,
        "set-password",
        "ANN@example.org",
        "--password-stdin",
        stdin="a brand new password\n",
    )
    assert result.returncode == 0, result.stderr
    assert db.call_sync(users.authenticate, "ann@example.org", "a brand new password") is not None
    assert main(["deactivate-user", "bob@example.org"]) == 0
    assert main(["list-users"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3:] == [
        "email\trole\tstatus\tlast login",
        lines[-2],
        "bob@example.org\tuser\tinactive\tnever",
    ]
    assert lines[-2].startswith("ann@example.org\tstaff\tactive\t20")
    assert main(["activate-user", "bob@example.org"]) == 0
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(User.is_active)).scalars().all() == [True, True]
