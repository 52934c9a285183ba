"""The pages' third-party code: pinned npm packages copied under static/vendor/ with their licences.

`make vendor` runs this module: for each pinned package it reads the registry's metadata, downloads
the tarball, checks it against the metadata's `dist.integrity` (sha512) before opening it, copies
the listed files, writes `vendor.json` (version, tarball, integrity, each file's sha256) and removes
files of the folder that are no longer listed. The result is committed, so that serving and
testing need no network; only this command talks to the registry (NPM_CONFIG_REGISTRY, as for npm).
"""

import base64
import hashlib
import hmac
import io
import json
import os
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

VENDOR_DIR = Path(__file__).with_name("static") / "vendor"
MANIFEST = "vendor.json"
DEFAULT_REGISTRY = "https://registry.npmjs.org"
LICENCES = frozenset({"MIT", "Apache-2.0"})
TIMEOUT = 60.0


@dataclass(frozen=True)
class Package:
    """A pinned npm package and the files kept from its tarball."""

    name: str
    version: str
    files: Mapping[str, str]  # path under vendor/ -> path in the tarball (below its top folder)


# GraphiQL as Strawberry's own page loads it (same versions, UMD globals); not js-cookie: no CSRF
# token here. ECharts' ES-module build, imported by the dashboard. graphql-ws's UMD build: one file
# without imports, usable as a classic script or imported for its effect (it sets `graphqlWs`).
PINNED: tuple[Package, ...] = (
    Package(
        "react",
        "18.2.0",
        {
            "react/LICENSE": "LICENSE",
            "react/react.production.min.js": "umd/react.production.min.js",
        },
    ),
    Package(
        "react-dom",
        "18.2.0",
        {
            "react-dom/LICENSE": "LICENSE",
            "react-dom/react-dom.production.min.js": "umd/react-dom.production.min.js",
        },
    ),
    Package(
        "graphiql",
        "3.8.3",
        {
            "graphiql/LICENSE": "LICENSE",
            "graphiql/graphiql.min.css": "graphiql.min.css",
            "graphiql/graphiql.min.js": "graphiql.min.js",
            # @graphiql/plugin-explorer's tarball has no licence file; it is MIT, from this same
            # repository (graphql/graphiql) and its authors.
            "graphiql-plugin-explorer/LICENSE": "LICENSE",
        },
    ),
    Package(
        "@graphiql/plugin-explorer",
        "1.0.2",
        {
            "graphiql-plugin-explorer/index.umd.js": "dist/index.umd.js",
            "graphiql-plugin-explorer/style.css": "dist/style.css",
        },
    ),
    # Only for its licence: the explorer plugin's UMD build bundles this package's code.
    Package(
        "graphiql-explorer",
        "0.9.0",
        {"graphiql-plugin-explorer/LICENSE.graphiql-explorer": "LICENSE"},
    ),
    Package(
        "echarts",
        "6.1.0",
        {
            "echarts/LICENSE": "LICENSE",
            "echarts/NOTICE": "NOTICE",
            "echarts/echarts.esm.min.js": "dist/echarts.esm.min.js",
        },
    ),
    Package(
        "graphql-ws",
        "6.4.2",
        {
            "graphql-ws/LICENSE.md": "LICENSE.md",
            "graphql-ws/graphql-ws.min.js": "umd/graphql-ws.min.js",
        },
    ),
)


class VendoringError(Exception):
    """Vendoring cannot go on; the message says why and what to do."""


def download(url: str) -> bytes:
    """The body at `url`, or a VendoringError naming it."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as error:
        error.close()
        raise VendoringError(f"{url} answered {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise VendoringError(
            f"cannot download {url}: {reason} (is the npm registry reachable? NPM_CONFIG_REGISTRY "
            "sets another one)"
        ) from error


def metadata_url(registry: str, package: Package) -> str:
    """The registry's metadata URL of one version of `package` (scoped names: @scope%2Fname)."""
    return f"{registry.rstrip('/')}/{quote(package.name, safe='@')}/{quote(package.version)}"


def sri(content: bytes) -> str:
    """The npm `integrity` (subresource integrity, sha512) of `content`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(content).digest()).decode()


def licence_of(metadata: Mapping[str, Any]) -> str:
    """The package's licence as its metadata names it, if it is one this project accepts."""
    licence = metadata.get("license")
    if isinstance(licence, Mapping):
        licence = licence.get("type")
    if licence not in LICENCES:
        name = metadata.get("name")
        raise VendoringError(f"{name}'s licence is {licence!r}, not one of {sorted(LICENCES)}")
    return str(licence)


def extract(tarball: bytes, package: Package) -> dict[str, bytes]:
    """The listed files of a verified tarball, by their path under vendor/."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        # npm tarballs hold one top folder (usually package/) whatever the package's name.
        members = {
            PurePosixPath(*PurePosixPath(m.name).parts[1:]).as_posix(): m
            for m in archive.getmembers()
            if m.isfile()
        }
        files = {}
        for target, source in package.files.items():
            member = members.get(source)
            content = archive.extractfile(member) if member else None
            if content is None:
                raise VendoringError(f"{package.name} {package.version} has no file {source}")
            files[target] = content.read()
    return files


def fetch(
    package: Package, registry: str, known: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A package's manifest entry and files, its tarball verified against the registry's
    integrity and against the one recorded when it was vendored (`known`, same version)."""
    where = metadata_url(registry, package)
    try:
        metadata = json.loads(download(where))
    except ValueError as error:
        raise VendoringError(f"{where} is not the registry's JSON metadata: {error}") from error
    if metadata.get("version") != package.version:
        raise VendoringError(f"the registry has no {package.name} {package.version}")
    licence = licence_of(metadata)
    dist = metadata.get("dist", {})
    url, integrity = dist.get("tarball"), dist.get("integrity")
    if not isinstance(url, str) or not isinstance(integrity, str):
        raise VendoringError(f"the registry gives no tarball and integrity for {package.name}")
    if not integrity.startswith("sha512-"):
        raise VendoringError(f"{package.name}'s integrity is not sha512: {integrity}")
    if known and known.get("version") == package.version and known.get("integrity") != integrity:
        raise VendoringError(
            f"the registry's integrity of {package.name} {package.version} differs from the one "
            f"in {MANIFEST}: a published version should never change; find out why first"
        )
    tarball = download(url)
    if not hmac.compare_digest(sri(tarball), integrity):
        raise VendoringError(f"{url} does not match its integrity {integrity}: not extracted")
    files = extract(tarball, package)
    entry = {
        "version": package.version,
        "license": licence,
        "tarball": url,
        "integrity": integrity,
        "files": {
            target: {"from": package.files[target], "sha256": hashlib.sha256(content).hexdigest()}
            for target, content in files.items()
        },
    }
    return entry, files


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest written by the last run, or an empty one."""
    path = directory / MANIFEST
    manifest: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return manifest


def vendor(
    packages: Sequence[Package] = PINNED,
    directory: Path = VENDOR_DIR,
    registry: str = DEFAULT_REGISTRY,
) -> dict[str, Any]:
    """Fetch, verify and copy `packages` into `directory`, write the manifest, remove strays."""
    known = read_manifest(directory).get("packages", {})
    entries: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for package in packages:  # everything is fetched and verified before anything is written
        entries[package.name], fetched = fetch(package, registry, known.get(package.name))
        files |= fetched
        size = sum(len(content) for content in fetched.values())
        print(f"{package.name} {package.version}: {len(fetched)} files, {size:,} bytes", flush=True)
    for target, content in files.items():
        path = directory / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    manifest = {"packages": entries}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    remove_strays(directory, {*files, MANIFEST})
    return manifest


def remove_strays(directory: Path, kept: set[str]) -> None:
    """Delete the files under `directory` not in `kept` (relative paths), then empty folders."""
    for path in sorted(directory.rglob("*"), reverse=True):  # children before their folders
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif path.relative_to(directory).as_posix() not in kept:
            print(f"removed {path.relative_to(directory).as_posix()}: no longer listed")
            path.unlink()


def main() -> int:
    """`make vendor`: vendor the pinned packages; one line of error and status 1 on failure."""
    registry = os.environ.get("NPM_CONFIG_REGISTRY") or DEFAULT_REGISTRY
    try:
        vendor(PINNED, VENDOR_DIR, registry)
    except VendoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    total = sum(p.stat().st_size for p in VENDOR_DIR.rglob("*") if p.is_file())
    print(f"vendored {len(PINNED)} packages into {VENDOR_DIR.name}/: {total:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
