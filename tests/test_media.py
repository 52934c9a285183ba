"""The media folder is not a way out: links, FIFOs, folders and client names stay inside it."""

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import (
    SAMPLE,
    csv_text,
    delete_queue_keys,
    post,
    trend_row,
    web_client,
    work,
    work_in_a_worker_process,
)
from test_intake import SCAN, drop, files, run_of, total, upload

from trends_gql.core.db import Database
from trends_gql.core.settings import Settings
from trends_gql.imports import intake
from trends_gql.imports.media import MediaFolderError

SERVER_NAME = re.compile(r"\d{8}T\d{6}-[0-9a-f]{12}\.csv")
SECRET = "SECRET-HEADER-CELL"


def outside_csv(tmp_path: Path) -> Path:
    """A file of the format outside the media folder, whose header holds a secret column."""
    path = tmp_path / "outside" / "secret.csv"
    path.parent.mkdir(exist_ok=True)
    header = "Megatrend;Macrotrend;Challenges and Research Gaps;" + SECRET
    path.write_text(f"{header}\r\nAI;Edge AI;Gaps;x\r\n", encoding="utf-8")
    os.utime(path, (0, 0))  # long settled
    return path


def anonymous_total(settings: Settings) -> int:
    """How many trends an anonymous client is served."""
    with web_client(settings) as client:
        return post(client, "{ trends { totalCount } }")["data"]["trends"]["totalCount"]


def failed_reports(media: Path) -> dict[str, dict[str, object]]:
    """The errors.json reports of failed/, by the name of the entry they describe."""
    failed = media / "failed"
    return {
        p.name.removesuffix(".errors.json"): json.loads(p.read_text())
        for p in failed.glob("*.errors.json")
    }


def link_to_sample(media: Path, tmp_path: Path) -> Path:
    """A file of valid records outside the folder, linked into it."""
    target = tmp_path / "outside" / "sample.csv"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(SAMPLE.read_bytes())
    os.utime(target, (0, 0))  # long settled
    (media / "linked.csv").symlink_to(target)
    return target


def link_to_passwd(media: Path, tmp_path: Path) -> Path:
    (media / "passwd.csv").symlink_to("/etc/passwd")
    return Path("/etc/passwd")


def link_to_secret_header(media: Path, tmp_path: Path) -> Path:
    target = outside_csv(tmp_path)
    (media / "secret.csv").symlink_to(target)
    return target


@pytest.mark.parametrize(
    "make_link",
    [link_to_sample, link_to_passwd, link_to_secret_header],
    ids=["outside-csv", "etc-passwd", "outside-header"],
)
def test_a_symbolic_link_is_moved_to_failed_itself_and_never_followed(
    staff: httpx.Client,
    jobs_settings: Settings,
    tmp_path: Path,
    make_link: Callable[[Path, Path], Path],
) -> None:
    media = jobs_settings.media_dir
    media.mkdir(parents=True)
    target = make_link(media, tmp_path)
    before = target.read_bytes()
    [run] = post(staff, SCAN)["data"]["runMediaImport"]
    work(jobs_settings)
    run = run_of(staff, run["id"])
    assert (run["status"], run["source"], run["rowsTotal"]) == ("FAILED", "MEDIA", 0)
    assert "symbolic link" in run["message"]
    assert "failed/" in run["message"]
    assert SECRET not in json.dumps(run)
    [moved] = [p for p in (media / "failed").iterdir() if not p.name.endswith(".json")]
    assert moved.is_symlink()
    assert os.readlink(moved) == str(target)
    [(name, report)] = failed_reports(media).items()
    assert name == moved.name
    assert "symbolic link" in str(report["message"])
    assert SECRET not in json.dumps(report)
    assert target.read_bytes() == before
    assert [f for f in files(media) if f.endswith(".csv")] == []
    assert anonymous_total(jobs_settings) == 0


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_folder(path: Path) -> None:
    path.mkdir()
    (path / "inside.csv").write_bytes(SAMPLE.read_bytes())


def make_device(path: Path) -> None:
    try:
        os.mknod(path, 0o600 | 0o020000, os.makedev(1, 3))  # a character device like /dev/null
    except PermissionError:
        pytest.skip("creating a device file needs privileges this test does not have")


def make_hard_link(path: Path) -> None:
    outside = path.parent.parent / "outside.csv"
    outside.write_bytes(SAMPLE.read_bytes())
    os.utime(outside, (0, 0))  # settled
    os.link(outside, path)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (make_fifo, "a FIFO"),
        (make_folder, "a folder"),
        (make_device, "a character device"),
        (make_hard_link, "2 names (hard links)"),
    ],
    ids=["fifo", "folder", "device", "hard-link"],
)
def test_an_entry_that_is_not_a_regular_file_is_moved_to_failed_unread(
    staff: httpx.Client, jobs_settings: Settings, make: Callable[[Path], None], kind: str
) -> None:
    media = jobs_settings.media_dir
    media.mkdir(parents=True)
    make(media / "odd.csv")
    drop(media, "good.csv", csv_text([trend_row()]).encode())
    found = post(staff, SCAN)["data"]["runMediaImport"]
    assert sorted((r["fileName"], r["status"]) for r in found) == [
        ("good.csv", "QUEUED"),
        ("odd.csv", "FAILED"),
    ]
    work(jobs_settings)
    odd = next(run_of(staff, r["id"]) for r in found if r["fileName"] == "odd.csv")
    assert kind in odd["message"]
    assert "moved to failed/ unread" in odd["message"]
    [(name, report)] = failed_reports(media).items()
    assert report["file_name"] == "odd.csv"
    assert kind in str(report["message"])
    assert SERVER_NAME.fullmatch(name)
    assert (media / "failed" / name).exists()
    assert total(staff) == 1
    assert files(media) == ["failed", "processed", "processing"]


def test_a_run_whose_file_became_a_link_reads_nothing_through_it(
    staff: httpx.Client, jobs_settings: Settings, tmp_path: Path
) -> None:
    queued = upload(staff, SAMPLE.read_bytes())["data"]["importTrends"]
    [stored] = (jobs_settings.media_dir / "incoming").iterdir()
    stored.unlink()
    stored.symlink_to(outside_csv(tmp_path))
    work(jobs_settings)
    run = run_of(staff, queued["id"])
    assert (run["status"], run["rowsTotal"]) == ("FAILED", 0)
    assert "symbolic link" in run["message"]
    assert SECRET not in json.dumps(run)
    [report] = failed_reports(jobs_settings.media_dir).values()
    assert SECRET not in json.dumps(report)
    assert total(staff) == 0


@pytest.mark.parametrize("name", [".", "..", "data.txt", "x/..", " ", ".hidden.csv", "a.csv.part"])
def test_an_upload_put_back_after_a_lost_job_stays_in_the_folder_as_a_csv_of_our_own(
    staff: httpx.Client, jobs_settings: Settings, db: Database, tmp_path: Path, name: str
) -> None:
    media = jobs_settings.media_dir
    queued = upload(staff, SAMPLE.read_bytes(), name)["data"]["importTrends"]
    delete_queue_keys(jobs_settings.queues[0])  # Redis lost the job: as if its worker died
    assert post(staff, SCAN)["data"]["runMediaImport"] == []  # the sweep puts the file back
    run = run_of(staff, queued["id"])
    assert (run["status"], run["fileName"]) == ("FAILED", queued["fileName"])
    assert "lost from the queue" in run["message"]
    assert {p.name for p in tmp_path.iterdir()} <= {"backups", "media"}
    [back] = [f for f in files(media) if f.endswith(".csv")]
    assert SERVER_NAME.fullmatch(back)
    assert (media / back).read_bytes() == SAMPLE.read_bytes()
    os.utime(media / back, (0, 0))  # settled
    [again] = post(staff, SCAN)["data"]["runMediaImport"]
    assert again["fileName"] == back
    work(jobs_settings)
    assert run_of(staff, again["id"])["status"] == "SUCCEEDED"
    assert total(staff) == 44


def test_a_processing_folder_that_is_a_link_is_refused_and_nothing_leaves(
    jobs_settings: Settings, db: Database, tmp_path: Path
) -> None:
    media, elsewhere = jobs_settings.media_dir, tmp_path / "elsewhere"
    elsewhere.mkdir()
    media.mkdir(parents=True)
    (media / "processing").symlink_to(elsewhere)
    drop(media, "good.csv", SAMPLE.read_bytes())
    with pytest.raises(MediaFolderError, match="processing is not a folder"):
        intake.scan(db, jobs_settings)
    assert list(elsewhere.iterdir()) == []
    assert files(media) == ["good.csv", "processing"]


def test_a_failed_folder_that_is_a_link_is_refused_and_nothing_leaves(
    staff: httpx.Client, jobs_settings: Settings, tmp_path: Path
) -> None:
    media, elsewhere = jobs_settings.media_dir, tmp_path / "elsewhere"
    elsewhere.mkdir()
    media.mkdir(parents=True)
    (media / "failed").symlink_to(elsewhere)
    upload(staff, b"name;colour\r\nx;red\r\n")
    result = work_in_a_worker_process(jobs_settings)  # what its operator reads
    assert "failed is not a folder" in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert len(files(media / "incoming")) == 1
