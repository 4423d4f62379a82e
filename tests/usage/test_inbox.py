"""The drop folder: settled files are imported and moved to done/ or failed/ (with a reason file);
a file still being written is left alone."""

import os
import shutil
import time
from pathlib import Path

import pytest

from usage.models import ImportBatch, UsageRecord
from usage.schedules import PERIODIC_TASKS
from usage.services.inbox import file_is_settled, inbox_scan
from usage.tasks import scan_inbox

FIXTURES = Path(__file__).parent / "fixtures"
OPENAI = FIXTURES / "openai_usage_two_users.json"
ANTHROPIC = FIXTURES / "anthropic_usage_one_day.json"
SETTLE = 60

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(settings) -> Path:
    return Path(settings.TOKENBOARD_INBOX)


def drop(inbox: Path, source: Path | bytes, name: str | None = None, *, age: float = 3600) -> Path:
    """Put a file in the inbox whose mtime is `age` seconds old."""
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / (name or source.name)
    if isinstance(source, bytes):
        target.write_bytes(source)
    else:
        shutil.copyfile(source, target)
    moment = time.time() - age
    os.utime(target, (moment, moment))
    return target


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_a_good_file_is_imported_and_moved_to_done(inbox):
    drop(inbox, OPENAI)
    scan = inbox_scan()
    assert scan.done == [OPENAI.name] and scan.failed == []
    assert names(inbox / "done") == {OPENAI.name}
    assert OPENAI.name not in names(inbox) and names(inbox / "processing") == set()
    batch = ImportBatch.objects.get()
    assert (batch.source, batch.status, batch.original_name) == ("drop_folder", "succeeded", OPENAI.name)
    assert UsageRecord.objects.filter(import_batch=batch).count() == 2


def test_a_bad_file_goes_to_failed_with_a_reason_file_naming_the_file_and_the_problem(inbox):
    drop(inbox, OPENAI.read_text().replace('"output_tokens":500', '"output_tokens":-5').encode(), "bad.json")
    scan = inbox_scan()
    assert scan.failed == ["bad.json"]
    assert names(inbox / "failed") == {"bad.json", "bad.json.reason.txt"}
    reason = (inbox / "failed" / "bad.json.reason.txt").read_text()
    assert reason.startswith(f"import #{ImportBatch.objects.get().pk} failed: bad.json: 1 bad row(s)")
    assert "line 1: output_tokens is negative" in reason
    assert UsageRecord.objects.count() == 0  # rejected whole


def test_empty_and_unrecognised_files_fail_with_their_reason(inbox):
    drop(inbox, b"", "empty.csv")
    drop(inbox, b"hello, world\n1,2\n", "notes.txt")
    scan = inbox_scan()
    assert sorted(scan.failed) == ["empty.csv", "notes.txt"]
    assert (inbox / "failed" / "empty.csv.reason.txt").read_text() == "empty.csv: the file is empty\n"
    assert "matches no known format" in (inbox / "failed" / "notes.txt.reason.txt").read_text()


def test_a_file_still_being_written_is_not_picked_up_half_way(inbox):
    start = time.time()
    partial = drop(inbox, OPENAI.read_bytes()[:200], "growing.json", age=0)
    # First sight of a fresh file: it may still be growing.
    assert inbox_scan(now=start + 1, settle_seconds=SETTLE).waiting == ["growing.json"]
    # The writer appends more; a minute later the size and mtime differ from what the last scan saw.
    partial.write_bytes(OPENAI.read_bytes())
    os.utime(partial, (start + 61, start + 61))
    assert inbox_scan(now=start + 62, settle_seconds=SETTLE).waiting == ["growing.json"]
    assert ImportBatch.objects.count() == 0 and names(inbox / "done") == set()
    # Unchanged for a whole settle period since the last scan saw it: the writer is done.
    scan = inbox_scan(now=start + 62 + SETTLE, settle_seconds=SETTLE)
    assert scan.done == ["growing.json"]
    assert ImportBatch.objects.get().status == "succeeded"


def test_a_settled_file_is_one_unchanged_since_a_scan_long_enough_ago_or_with_an_old_mtime():
    now = 10_000.0
    fresh = [100, int((now - 5) * 1e9)]
    assert not file_is_settled(fresh, None, now=now, settle_seconds=SETTLE)
    assert not file_is_settled(fresh, {"signature": fresh, "since": now - 30}, now=now, settle_seconds=SETTLE)
    assert file_is_settled(fresh, {"signature": fresh, "since": now - 60}, now=now, settle_seconds=SETTLE)
    assert not file_is_settled(fresh, {"signature": [99, fresh[1]], "since": now - 600}, now=now, settle_seconds=SETTLE)
    # A file moved in whole keeps its old mtime and is taken at once.
    assert file_is_settled([100, int((now - 61) * 1e9)], None, now=now, settle_seconds=SETTLE)


def test_hidden_and_partial_download_files_are_ignored(inbox):
    drop(inbox, OPENAI, ".openai.json.swp")
    drop(inbox, OPENAI, "openai.json.part")
    drop(inbox, OPENAI, "openai.json.crdownload")
    scan = inbox_scan()
    assert (scan.done, scan.failed, scan.waiting) == ([], [], [])
    assert ImportBatch.objects.count() == 0


def test_scanning_again_imports_nothing_twice_and_a_file_dropped_again_keeps_both_copies(inbox):
    drop(inbox, ANTHROPIC)
    inbox_scan()
    assert inbox_scan().done == []
    drop(inbox, ANTHROPIC)
    inbox_scan()
    assert names(inbox / "done") == {ANTHROPIC.name, "anthropic_usage_one_day-2.json"}
    assert ImportBatch.objects.count() == 2
    # Re-importing the same export upserts: one set of totals.
    assert UsageRecord.objects.filter(identity__value="apikey_01AliceKeyR4nD0mZq").count() == 1


def test_a_file_claimed_by_another_scan_is_left_to_it(inbox):
    # Claiming is a rename into processing/; what is already there belongs to the scan that moved it.
    (inbox / "processing").mkdir(parents=True)
    drop(inbox / "processing", OPENAI)
    assert inbox_scan().done == []
    assert names(inbox / "processing") == {OPENAI.name} and ImportBatch.objects.count() == 0


def test_the_scan_inbox_task_runs_the_scan_and_is_scheduled_every_minute(inbox):
    drop(inbox, ANTHROPIC)
    scan_inbox()  # the task body, run directly as a worker would
    assert names(inbox / "done") == {ANTHROPIC.name}
    spec = next(s for s in PERIODIC_TASKS if s.task == "usage.scan_inbox")
    assert spec.cron == "* * * * *" and scan_inbox.name == "usage.scan_inbox"
