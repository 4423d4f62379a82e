"""The pipelined import (PostgreSQL, usage.services.imports._parse_and_store): hours merged by a thread while the
file is parsed, in one transaction with the rest. It stores exactly what parse-then-store does; a bad row, a
parse error or a failed merge stores nothing and says why; a run taken over meanwhile stores nothing."""

import re
import threading
from datetime import date

import pytest
from django.db import IntegrityError, connection, connections

from bench.ingest import generate_cursor
from tests.usage.imported import stored
from usage.models import Identity, ImportBatch, UsageHour, UsageRecord
from usage.services import imports
from usage.services.bulk import BackgroundWrites
from usage.services.imports import import_batch_create, import_batch_process, import_batch_retry
from usage.services.outcomes import HoursMerge, HourSpool

pytestmark = [pytest.mark.needs_services, pytest.mark.django_db]  # PostgreSQL: SQLite parses, then stores


@pytest.fixture
def small_buffers(monkeypatch, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    # The row parser's spool (the columnar reader's blocks: tests/usage/test_import_columnar.py).
    settings.TOKENBOARD_IMPORT_COLUMNAR = False
    # Many written-out buffers, the same hours in several of them: merged as they come, they must add up.
    monkeypatch.setattr(HourSpool, "BUFFER", 97)


def export(tmp_path, rows=3000, copies=1):
    """A Cursor team export of `rows` events over 30 days; `copies` > 1 repeats them after one another, so each
    hour comes back in a later buffer."""
    path = tmp_path / "cursor.csv"
    generate_cursor(rows, path, tmp_path / "twin.csv")
    header, *events = path.read_text().splitlines(keepends=True)
    path.write_text(header + "".join(events) * copies)
    return path


def run(path, name=None):
    with path.open("rb") as handle:
        batch = import_batch_create(file=handle, name=name or path.name, queue=False)
    return import_batch_process(batch.pk)


def merges_counted(monkeypatch, merges: list | None = None) -> list:
    """The buffers the hours' thread is given; `merges` collects the HoursMerge that wrote them."""
    calls = []
    merge = HoursMerge.__call__

    def counted(self, written):
        calls.append(written)
        if merges is not None and self not in merges:
            merges.append(self)
        return merge(self, written)

    monkeypatch.setattr(HoursMerge, "__call__", counted)
    return calls


def test_a_pipelined_import_stores_exactly_what_parse_then_store_stores(small_buffers, settings, tmp_path, monkeypatch):
    path = export(tmp_path, copies=2)
    settings.TOKENBOARD_IMPORT_PIPELINE = False
    plain = run(path)
    assert plain.status == "succeeded", plain.error_summary
    expected = stored()
    assert len(expected[1]) > 1000  # hours, some written out in several buffers
    UsageHour.objects.all().delete()
    UsageRecord.objects.all().delete()
    Identity.objects.all().delete()

    settings.TOKENBOARD_IMPORT_PIPELINE = True
    first_import: list[HoursMerge] = []
    merges = merges_counted(monkeypatch, first_import)
    pipelined = run(path)
    assert pipelined.status == "succeeded", pipelined.error_summary
    assert len(merges) > 10 and any(adding for _replacing, adding in merges)  # hours added to across buffers
    [first_merge] = first_import
    assert first_merge.copied > 10 and first_merge.merged > 0  # new hours copied, those met again added to
    assert stored() == expected
    fields = ("rows_read", "rows_imported", "records_written", "period_start", "period_end", "people_affected")
    assert [getattr(pipelined, name) for name in fields] == [getattr(plain, name) for name in fields]

    re_import: list[HoursMerge] = []
    merges_counted(monkeypatch, re_import)
    again = run(path)  # a re-import restates every hour and record: nothing moves
    assert again.status == "succeeded", again.error_summary
    assert re_import[0].copied == 0  # the first buffer's copy met stored hours: it and the rest were merged
    assert stored() == expected


def test_new_hours_are_copied_until_a_buffer_meets_a_stored_hour_then_that_buffer_and_the_rest_are_merged(db):
    def hours():
        return sorted(UsageHour.objects.values_list("identity_id", "day", "hour", "model", "total_tokens"))

    merge = HoursMerge()
    merge(("7,2026-03-02,9,gpt-5,1,10,2,12\n7,2026-03-02,10,gpt-5,1,20,2,22\n", ""))
    assert (merge.copied, merge.merged) == (1, 0)
    # A re-import: one hour stored already, one new, one given again in the same import's later buffer.
    merge(("7,2026-03-02,9,gpt-5,1,30,3,33\n7,2026-03-02,11,,1,5,0,5\n", "7,2026-03-02,10,gpt-5,2,8,0,8\n"))
    assert (merge.copied, merge.merged) == (1, 2)
    assert hours() == [
        (7, date(2026, 3, 2), 9, "gpt-5", 33),  # replaced: a re-import restates it
        (7, date(2026, 3, 2), 10, "gpt-5", 30),  # added to: the same import's hour, met again
        (7, date(2026, 3, 2), 11, "", 5),  # new, in the buffer that was merged
    ]
    # Having met a stored hour, the import merges the rest without trying to copy them.
    merge(("7,2026-03-03,9,gpt-5,1,10,2,12\n", ""))
    assert (merge.copied, merge.merged) == (1, 3)
    assert len(hours()) == 4
    merge.drop()


def test_an_hour_the_table_refuses_for_another_reason_than_its_key_fails_the_merge(db):
    merge = HoursMerge()
    # No 24th hour: the check constraint, not the key. Raised by the copy (its line named), not left to a merge.
    with pytest.raises(IntegrityError, match=r"usage_hour_in_day(.|\n)*COPY usage_usagehour, line 1"):
        merge(("7,2026-03-02,24,gpt-5,1,10,2,12\n", ""))
    assert (merge.copied, merge.merged) == (0, 0)


def test_a_bad_row_after_hours_were_merged_stores_nothing_and_names_file_line_and_reason(
    small_buffers, tmp_path, monkeypatch
):
    path = export(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    cells = lines[2500].split('","')
    cells[8] = "many"  # Input (w/o Cache Write)
    lines[2500] = '","'.join(cells)
    path.write_text("".join(lines))
    merges = merges_counted(monkeypatch)
    batch = run(path, "late-error.csv")
    assert len(merges) > 5  # hours were merged before the parse reached the bad row
    assert batch.status == "failed"
    assert "late-error.csv" in batch.error_summary and "line 2501" in batch.error_summary
    assert "Input (w/o Cache Write)" in batch.error_summary and "'many'" in batch.error_summary
    assert not UsageHour.objects.exists() and not UsageRecord.objects.exists() and not Identity.objects.exists()


def test_a_file_cut_off_after_hours_were_merged_stores_nothing(small_buffers, tmp_path, monkeypatch):
    path = export(tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # ends inside a quoted cell
    merges = merges_counted(monkeypatch)
    batch = run(path, "cut.csv")
    assert merges and batch.status == "failed"
    assert re.match(r"cut\.csv: line \d+: the file ends inside a quoted cell", batch.error_summary)
    assert not UsageHour.objects.exists() and not UsageRecord.objects.exists() and not Identity.objects.exists()


def test_a_failing_hour_merge_fails_the_import_with_its_error(small_buffers, tmp_path, monkeypatch):
    merge = HoursMerge.__call__
    calls = []

    def third_fails(self, written):
        calls.append(written)
        if len(calls) == 3:
            raise RuntimeError("the merge broke")
        return merge(self, written)

    monkeypatch.setattr(HoursMerge, "__call__", third_fails)
    with pytest.raises(RuntimeError, match="the merge broke"):
        run(export(tmp_path), "broken.csv")
    batch = ImportBatch.objects.get()
    assert batch.status == "failed"
    assert batch.error_summary == "broken.csv: internal error while importing (RuntimeError: the merge broke)"
    assert len(calls) == 3  # the parse stopped at its next buffer: nothing after the failure was merged
    assert not UsageHour.objects.exists() and not UsageRecord.objects.exists() and not Identity.objects.exists()


def test_a_run_taken_over_while_it_parsed_stores_nothing(transactional_db, small_buffers, tmp_path, monkeypatch):
    path = export(tmp_path)
    with path.open("rb") as handle:
        batch = import_batch_create(file=handle, name=path.name, queue=False)
    parse = imports._parse

    def parse_then_lose_the_claim(*args):
        outcome = parse(*args)

        def retry() -> None:  # an admin, on another connection, while this run holds its transaction open
            try:
                import_batch_retry(ImportBatch.objects.get(pk=batch.pk))
            finally:
                connections.close_all()

        admin = threading.Thread(target=retry)
        admin.start()
        admin.join()
        return outcome

    monkeypatch.setattr(imports, "_parse", parse_then_lose_the_claim)
    assert import_batch_process(batch.pk, claim_id="old-run").status == "queued"
    assert not UsageHour.objects.exists() and not UsageRecord.objects.exists() and not Identity.objects.exists()


def test_background_writes_raise_the_threads_error_in_the_caller_and_drop_what_follows(db):
    done = []

    def work(item):
        if item == "bad":
            raise ValueError("bad item")
        done.append(item)

    with pytest.raises(ValueError, match="bad item"):
        with BackgroundWrites(work) as writes:
            writes.send("first")
            writes.send("bad")
            writes.send("after")  # may be accepted before the failure is known: it is dropped
            writes.wait()
    assert done == ["first"]
    assert connection.allow_thread_sharing is False  # the connection is the caller's alone again


def test_background_writes_use_the_callers_transaction(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE pipeline_probe (n integer)")  # the caller's session only

    def work(n):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO pipeline_probe VALUES (%s)", [n])

    with BackgroundWrites(work) as writes:
        for n in range(5):
            writes.send(n)
        writes.wait()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pipeline_probe")
        assert cursor.fetchone() == (5,)
