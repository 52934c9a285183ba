"""The vendored third-party code: as pinned, complete, licensed, verified; no network needed."""

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from trends_gql.web.vendoring import (
    LICENCES,
    MANIFEST,
    PINNED,
    VENDOR_DIR,
    Package,
    VendoringError,
    sri,
    vendor,
)

LISTED = json.loads((VENDOR_DIR / MANIFEST).read_text())["packages"]
FILES = {target: entry for p in LISTED.values() for target, entry in p["files"].items()}
# The specifier x of a statement `import ... from "x"`, `export ... from "x"`, `import "x"` (at
# the start of a statement, so not in strings or comments), or of `import("x")`.
SPECIFIER = re.compile(
    r"""(?:(?:^|[;}])\s*(?:import|export)\s*(?:[\w$*{][^;"'`]*?\bfrom\s*)?"""
    r"""|(?<![\w$.])import\s*\(\s*)["'`]([^"'`]+)["'`]""",
    re.MULTILINE,
)
OTHER_HOST_IN_CSS = re.compile(r"""(?:url\(\s*["']?|@import\s+["']?)(?:https?:)?//""", re.I)


def test_every_file_of_the_manifest_is_there_with_its_sha256() -> None:
    assert FILES
    for target, entry in FILES.items():
        content = (VENDOR_DIR / target).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], target


def test_every_file_of_the_vendor_folder_is_in_the_manifest() -> None:
    present = {p.relative_to(VENDOR_DIR).as_posix() for p in VENDOR_DIR.rglob("*") if p.is_file()}
    assert present - {MANIFEST} == set(FILES)


def test_every_vendored_folder_has_a_licence_file() -> None:
    folders = [p for p in VENDOR_DIR.iterdir() if p.is_dir()]
    assert folders
    for folder in folders:
        assert [p for p in folder.iterdir() if p.name.startswith("LICENSE")], folder.name


def test_the_manifest_records_the_pinned_packages_versions_and_files() -> None:
    assert set(LISTED) == {p.name for p in PINNED}
    for package in PINNED:
        entry = LISTED[package.name]
        assert entry["version"] == package.version
        assert {t: f["from"] for t, f in entry["files"].items()} == dict(package.files)
        assert entry["integrity"].startswith("sha512-")
        assert entry["license"] in LICENCES
        assert entry["tarball"].startswith("https://registry.npmjs.org/")
        assert entry["tarball"].endswith(f"-{package.version}.tgz")


@pytest.mark.parametrize("target", sorted(t for t in FILES if t.endswith((".js", ".mjs"))))
def test_vendored_scripts_import_nothing_by_bare_name_or_from_another_host(target: str) -> None:
    text = (VENDOR_DIR / target).read_text(encoding="utf-8")
    # The UMD builds' CommonJS branches call require(); in a browser they take the globals branch.
    specifiers = set(SPECIFIER.findall(text))
    same_origin = re.compile(r"\.{0,2}/(?!/)")  # ./x, ../x, /x; not //host/x
    assert {s for s in specifiers if not same_origin.match(s)} == set()


@pytest.mark.parametrize("target", sorted(t for t in FILES if t.endswith(".css")))
def test_vendored_stylesheets_load_fonts_and_images_from_nowhere_else(target: str) -> None:
    text = (VENDOR_DIR / target).read_text(encoding="utf-8")
    assert not OTHER_HOST_IN_CSS.search(text)
    # Fonts and images are inlined: every url() is a data: URL.
    urls = re.findall(r"url\(\s*[\"']?([^\"')]*)", text)
    assert all(u.startswith("data:") for u in urls), [u[:40] for u in urls if "data:" not in u]


def registry_with(tmp_path: Path, files: dict[str, bytes], integrity: str | None = None) -> str:
    """A registry of one package, `demo` 1.0.0, on disk, reached by file: URLs as over HTTP."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    tarball = tmp_path / "demo-1.0.0.tgz"
    tarball.write_bytes(buffer.getvalue())
    metadata = {
        "name": "demo",
        "version": "1.0.0",
        "license": "MIT",
        "dist": {"tarball": tarball.as_uri(), "integrity": integrity or sri(buffer.getvalue())},
    }
    (tmp_path / "registry" / "demo").mkdir(parents=True)
    (tmp_path / "registry" / "demo" / "1.0.0").write_text(json.dumps(metadata))
    return (tmp_path / "registry").as_uri()


DEMO = Package("demo", "1.0.0", {"demo/LICENSE": "LICENSE", "demo/demo.min.js": "dist/demo.min.js"})
DEMO_FILES = {"LICENSE": b"MIT", "dist/demo.min.js": b"export const a = 1;", "src/a.ts": b""}


def test_vendoring_copies_the_listed_files_writes_the_manifest_and_removes_what_is_unlisted(
    tmp_path: Path,
) -> None:
    registry = registry_with(tmp_path, DEMO_FILES)
    directory = tmp_path / "vendor"
    (directory / "old").mkdir(parents=True)
    (directory / "old" / "gone.js").write_text("")
    (directory / "demo").mkdir()
    (directory / "demo" / "stale.js").write_text("")

    manifest = vendor([DEMO], directory, registry)

    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*")}
    assert present == {"demo", "demo/LICENSE", "demo/demo.min.js", MANIFEST}
    assert (directory / "demo" / "demo.min.js").read_bytes() == DEMO_FILES["dist/demo.min.js"]
    written = (directory / MANIFEST).read_text()
    assert json.loads(written) == manifest
    assert written == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    entry = manifest["packages"]["demo"]
    assert entry["files"]["demo/LICENSE"] == {
        "from": "LICENSE",
        "sha256": hashlib.sha256(b"MIT").hexdigest(),
    }
    assert entry["integrity"] == sri((tmp_path / "demo-1.0.0.tgz").read_bytes())

    vendor([DEMO], directory, registry)
    assert (directory / MANIFEST).read_text() == written  # the same bytes on every run


def test_a_tarball_that_does_not_match_its_integrity_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    registry = registry_with(tmp_path, DEMO_FILES, integrity=sri(b"another tarball"))
    directory = tmp_path / "vendor"
    with pytest.raises(VendoringError, match="does not match its integrity"):
        vendor([DEMO], directory, registry)
    assert not directory.exists()


def test_a_version_whose_integrity_changed_since_it_was_vendored_is_refused(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "vendor"
    vendor([DEMO], directory, registry_with(tmp_path / "first", DEMO_FILES))
    republished = registry_with(tmp_path / "second", {**DEMO_FILES, "LICENSE": b"MIT, changed"})
    with pytest.raises(VendoringError, match=r"differs from the one in vendor\.json"):
        vendor([DEMO], directory, republished)
    assert (directory / "demo" / "LICENSE").read_bytes() == b"MIT"


def test_a_file_missing_from_the_tarball_is_refused_by_name(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, {"LICENSE": b"MIT"})
    with pytest.raises(VendoringError, match=r"demo 1\.0\.0 has no file dist/demo\.min\.js"):
        vendor([DEMO], tmp_path / "vendor", registry)


def test_a_licence_other_than_mit_or_apache_is_refused(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, DEMO_FILES)
    metadata_file = tmp_path / "registry" / "demo" / "1.0.0"
    metadata = json.loads(metadata_file.read_text())
    metadata_file.write_text(json.dumps({**metadata, "license": "GPL-3.0-only"}))
    with pytest.raises(VendoringError, match=r"licence is 'GPL-3\.0-only'"):
        vendor([DEMO], tmp_path / "vendor", registry)
