"""The media folder's life cycle: uploads, claiming dropped files, and where files end up.

media/*.csv          dropped by the pipeline; claimed by a scan
media/incoming/      uploads, under names of our own
media/processing/    claimed files while their import runs
media/processed/     files whose import succeeded
media/failed/        files whose import failed, each with NAME.errors.json
"""

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trends_gql.db import utcnow
from trends_gql.errors import BadUserInput

INCOMING, PROCESSING, PROCESSED, FAILED = "incoming", "processing", "processed", "failed"
_CHUNK = 1 << 20


def folder(media_dir: Path, name: str) -> Path:
    """A subfolder of the media folder, created when missing."""
    path = Path(media_dir) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def display_name(name: str | None) -> str:
    """A client's file name as data only: no folders, no control characters, bounded."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    return base[:255] or "upload.csv"


def unique_name(suffix: str = ".csv") -> str:
    """A file name nobody else will pick: time, then randomness."""
    return f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}{suffix}"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredFile:
    path: Path
    sha256: str
    size: int


async def store_upload(chunks: AsyncIterator[bytes], media_dir: Path, max_bytes: int) -> StoredFile:
    """Stream an upload into incoming/ under a new name; BadUserInput, leaving nothing, if big."""
    target = folder(media_dir, INCOMING) / unique_name()
    partial = target.with_name(target.name + ".part")
    digest, size = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise BadUserInput(
                        f"the file is larger than the upload limit of {max_bytes} bytes",
                        field="file",
                    )
                digest.update(chunk)
                out.write(chunk)
        partial.rename(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return StoredFile(target, digest.hexdigest(), size)


def waiting_files(media_dir: Path, settle_seconds: float, now: float | None = None) -> list[Path]:
    """CSV files dropped directly in the media folder and no longer being written."""
    now = time.time() if now is None else now
    found = []
    for path in sorted(Path(media_dir).glob("*.csv")):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            if now - path.stat().st_mtime < settle_seconds:
                continue
        except FileNotFoundError:
            continue
        found.append(path)
    return found


def claim(path: Path, media_dir: Path) -> Path | None:
    """Move a dropped file into processing/ atomically; None if another scan took it first."""
    target = folder(media_dir, PROCESSING) / f"{uuid.uuid4().hex[:12]}-{path.name}"
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def release(path: Path, media_dir: Path, original: str) -> Path:
    """Put a claimed file back in the media folder for the next scan."""
    target = Path(media_dir) / original
    if target.exists():
        target = target.with_name(f"{target.stem}-{uuid.uuid4().hex[:6]}{target.suffix}")
    os.rename(path, target)
    return target


def file_away(path: Path, media_dir: Path, ok: bool, report: dict[str, Any] | None = None) -> Path:
    """Move a finished file to processed/ or failed/ (with NAME.errors.json); delete nothing."""
    target = folder(media_dir, PROCESSED if ok else FAILED) / path.name
    os.rename(path, target)
    if not ok:
        errors = target.with_name(target.name + ".errors.json")
        errors.write_text(json.dumps(report or {}, indent=2, default=str), encoding="utf-8")
    return target
