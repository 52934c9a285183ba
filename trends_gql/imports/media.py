"""The media folder's life cycle: uploads, claiming dropped files, and where files end up.

media/*.csv          dropped by the pipeline; claimed by a scan
media/incoming/      uploads, under names of our own
media/processing/    claimed files while their import runs, under names of our own
media/processed/     files whose import succeeded
media/failed/        files whose import failed, and dropped entries that are not regular files,
                     each with NAME.errors.json

Only regular files with one name are read, never through a symbolic link; every name we store a
file under, or put one back under, is ours, so no client's name leads out of the folder.
"""

import hashlib
import json
import os
import re
import stat
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trends_gql.core.db import utcnow
from trends_gql.core.errors import BadUserInput
from trends_gql.imports.csvio import CsvFormatError, kind_of, open_regular

INCOMING, PROCESSING, PROCESSED, FAILED = "incoming", "processing", "processed", "failed"
_CHUNK = 1 << 20
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class MediaFolderError(RuntimeError):
    """A subfolder of the media folder is not a folder of its own (a link, or a file)."""


def folder(media_dir: Path, name: str) -> Path:
    """A subfolder of the media folder, created when missing; never a link to elsewhere."""
    path = Path(media_dir) / name
    try:
        path.mkdir(parents=True, exist_ok=True)
        ok = stat.S_ISDIR(os.lstat(path).st_mode)
    except FileExistsError:
        ok = False
    if not ok:
        raise MediaFolderError(
            f"{path} is not a folder (a symbolic link or a file): move it away and scan again"
        )
    return path


def display_name(name: str | None) -> str:
    """A client's file name as data only: no folders, no control characters, bounded."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    return base[:255] or "upload.csv"


def unique_name() -> str:
    """A `*.csv` file name of our own that nobody else will pick: time, then randomness."""
    return f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.csv"


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
        with os.fdopen(os.open(partial, _NEW_FILE, 0o666), "wb") as out:
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
    """Entries named *.csv directly in the media folder: settled regular files, and the rest.

    Anything that is not a regular file (a link, a FIFO, a folder, a device) is listed at once,
    for claim() to move it to failed/; names starting with '.' are left alone.
    """
    now = time.time() if now is None else now
    found = []
    try:
        entries = os.scandir(media_dir)
    except FileNotFoundError:
        return []
    with entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".csv"):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime < settle_seconds:
                continue
            found.append(Path(entry.path))
    return sorted(found)


@dataclass(frozen=True)
class Claim:
    """A dropped entry taken from the media folder: ready in processing/, or refused to failed/."""

    path: Path
    sha256: str = ""
    refused: str | None = None


def _sha256_of_claimed(path: Path) -> str:
    """The SHA-256 of a regular file with one name; CsvFormatError, unread, for anything else."""
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):  # not even opened: opening a device or a FIFO can have effects
        raise CsvFormatError(f"it is {kind_of(mode)}, not a regular file")
    digest = hashlib.sha256()
    with open_regular(path) as f:  # the check that counts: fstat of what was opened
        links = os.fstat(f.fileno()).st_nlink
        if links != 1:
            raise CsvFormatError(f"it is a file with {links} names (hard links), not one")
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def claim(path: Path, media_dir: Path) -> Claim | None:
    """Take a dropped entry by an atomic rename; None if another scan took it first.

    What was taken is checked where no one else writes: a regular file with one name stays in
    processing/ for its import; anything else goes to failed/ unread (a link itself, never its
    target), with the reason in NAME.errors.json.
    """
    target = folder(media_dir, PROCESSING) / unique_name()
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    try:
        return Claim(target, _sha256_of_claimed(target))
    except (CsvFormatError, OSError) as exc:
        why = str(exc) if isinstance(exc, CsvFormatError) else f"it cannot be read: {exc.strerror}"
        reason = f"not imported: {why}; it was moved to failed/ unread (drop the CSV file itself)"
        report = {"file_name": path.name, "message": reason, "errors": []}
        return Claim(file_away(target, media_dir, False, report), refused=reason)


def release(path: Path, media_dir: Path) -> Path:
    """Put a claimed file back in the media folder, under a new name of our own, for a scan."""
    target = Path(media_dir) / unique_name()
    os.rename(path, target)
    return target


def file_away(path: Path, media_dir: Path, ok: bool, report: dict[str, Any] | None = None) -> Path:
    """Move a finished file to processed/ or failed/ (with NAME.errors.json); delete nothing."""
    target = folder(media_dir, PROCESSED if ok else FAILED) / path.name
    os.rename(path, target)
    if not ok:
        errors = target.with_name(target.name + ".errors.json")
        text = json.dumps(report or {}, indent=2, default=str)
        with os.fdopen(os.open(errors, _NEW_FILE, 0o666), "w", encoding="utf-8") as out:
            out.write(text)
    return target
