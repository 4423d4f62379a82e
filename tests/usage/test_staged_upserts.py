"""The import's bulk writes (usage.services.bulk, usage.services.outcomes.HourSpool): daily records and hourly
usage go through a staging table and one INSERT … SELECT … ON CONFLICT, on SQLite and PostgreSQL alike. New
records are inserted, existing ones replaced, a re-import changes no total, the hourly spool gives the same
sums however often it is written out, and a failing import stores nothing."""

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from usage.models import Identity, ImportBatch, UsageHour, UsageRecord
from usage.parsers.cursor_csv import EXPORT_HEADER
from usage.services import imports
from usage.services.bulk import StagingTable
from usage.services.outcomes import HourSpool, csv_cell

pytestmark = pytest.mark.django_db


def cursor_export(path: Path, events: list[tuple]) -> Path:
    """A Cursor team export of (timestamp, user, model, input, cache read, output, cost) events."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(EXPORT_HEADER)
        for at, user, model, plain_input, cache_read, output, cost in events:
            total = plain_input + cache_read + output
            writer.writerow(
                [at, user, "", "", "Usage-based", model, "No", 0, plain_input, cache_read, output, total, cost]
            )
    return path


def run_import(path: Path) -> ImportBatch:
    with path.open("rb") as handle:
        batch = imports.import_batch_create(file=handle, name=path.name, queue=False)
    return imports.import_batch_process(batch.pk)


EVENTS = [
    ("2026-09-01T09:10:00.000Z", "ana@example.com", "gpt-5", 100, 1000, 10, "$0.10"),
    ("2026-09-01T09:50:00.000Z", "ana@example.com", "gpt-5", 200, 0, 20, "$0.25"),
    ("2026-09-01T10:05:00.000Z", "ana@example.com", 'odd "model", v2', 5, 0, 1, "Included"),
    ("2026-09-01T10:06:00.000Z", "bo@example.com", "", 7, 0, 3, "$1.00"),
    ("2026-09-02T23:59:00.000Z", "bo@example.com", "gpt-5", 50, 50, 50, "$0.01"),
]


def hours_stored() -> list[tuple]:
    return sorted(
        UsageHour.objects.values_list(
            "identity__value", "day", "hour", "model", "requests", "input_tokens", "output_tokens", "total_tokens"
        )
    )


def records_stored() -> list[tuple]:
    return sorted(
        UsageRecord.objects.values_list(
            "identity__value", "day", "model", "input_tokens", "cache_read_tokens", "output_tokens", "total_tokens"
        )
    )


def test_events_give_records_and_hours_with_exact_sums(tmp_path, settings):
    settings.TIME_ZONE = "UTC"
    batch = run_import(cursor_export(tmp_path / "events.csv", EVENTS))
    assert batch.status == "succeeded", batch.error_summary
    assert batch.records_written == 4
    ana_gpt5 = UsageRecord.objects.get(identity__value="ana@example.com", model="gpt-5")
    assert (ana_gpt5.input_tokens, ana_gpt5.cache_read_tokens, ana_gpt5.output_tokens) == (300, 1000, 30)
    assert ana_gpt5.cost_usd == Decimal("0.35") and isinstance(ana_gpt5.cost_usd, Decimal)
    assert ana_gpt5.requests == 2
    hours = hours_stored()
    assert [
        (value, str(day), hour, model, requests, prompt, output, total)
        for (value, day, hour, model, requests, prompt, output, total) in hours
    ] == [
        ("ana@example.com", "2026-09-01", 9, "gpt-5", 2, 1300, 30, 1330),
        ("ana@example.com", "2026-09-01", 10, 'odd "model", v2', 1, 5, 1, 6),
        ("bo@example.com", "2026-09-01", 10, "", 1, 7, 3, 10),
        ("bo@example.com", "2026-09-02", 23, "gpt-5", 1, 100, 50, 150),
    ]


def test_a_reimport_changes_no_total_and_a_restatement_replaces(tmp_path, settings):
    settings.TIME_ZONE = "UTC"
    export = cursor_export(tmp_path / "events.csv", EVENTS)
    run_import(export)
    records, hours = records_stored(), hours_stored()
    again = run_import(export)
    assert again.status == "succeeded", again.error_summary
    assert records_stored() == records and hours_stored() == hours  # replaced, never added
    assert set(UsageRecord.objects.values_list("import_batch_id", flat=True)) == {again.pk}
    # A newer export of the same days with one event changed: its figures replace the stored ones.
    changed = [EVENTS[0][:3] + (900, 0, 90, "$0.50"), *EVENTS[1:]]
    newer = run_import(cursor_export(tmp_path / "newer.csv", changed))
    assert newer.status == "succeeded", newer.error_summary
    ana_gpt5 = UsageRecord.objects.get(identity__value="ana@example.com", model="gpt-5")
    assert (ana_gpt5.input_tokens, ana_gpt5.cache_read_tokens, ana_gpt5.output_tokens) == (1100, 0, 110)
    ana_nine = UsageHour.objects.get(identity__value="ana@example.com", hour=9)
    assert (ana_nine.input_tokens, ana_nine.output_tokens, ana_nine.total_tokens) == (1100, 110, 1210)
    assert UsageHour.objects.count() == len(hours)


def test_the_spool_gives_the_same_hours_however_often_it_is_written_out(tmp_path, settings, monkeypatch):
    settings.TIME_ZONE = "UTC"
    export = cursor_export(tmp_path / "events.csv", EVENTS * 3)
    run_import(export)
    unflushed = hours_stored()
    UsageHour.objects.all().delete()
    monkeypatch.setattr(HourSpool, "BUFFER", 1)  # every new key writes the buffer out: keys repeat across lines
    flushed = run_import(export)
    assert flushed.status == "succeeded", flushed.error_summary
    assert hours_stored() == unflushed
    assert [hour[4] for hour in unflushed] == [6, 3, 3, 3]  # three copies of each event: requests summed


def test_a_store_that_fails_leaves_nothing_behind(tmp_path, settings, monkeypatch):
    settings.TIME_ZONE = "UTC"
    closed = []
    monkeypatch.setattr(HourSpool, "close", lambda spool: closed.append(spool.lines))

    def fail_after_the_writes(changed):
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports, "standings_mark_usage", fail_after_the_writes)  # after records and hours merged
    with pytest.raises(RuntimeError):
        run_import(cursor_export(tmp_path / "events.csv", EVENTS))
    batch = ImportBatch.objects.get()
    assert batch.status == "failed" and "disk full" in batch.error_summary
    assert not UsageRecord.objects.exists() and not UsageHour.objects.exists()
    assert not Identity.objects.exists()  # the identities it created were in the same transaction
    assert closed == [4]  # the spool file was written out and closed


def test_a_bad_row_names_file_line_and_reason_and_nothing_is_stored(tmp_path, settings):
    settings.TIME_ZONE = "UTC"
    bad = [*EVENTS[:2], ("2026-09-01T11:00:00.000Z", "ana@example.com", "gpt-5", 10, 0, 10, "$0.01")]
    export = cursor_export(tmp_path / "bad.csv", bad)
    text = export.read_text().replace('"10","0","10","20"', '"ten","0","10","20"')
    export.write_text(text)
    batch = run_import(export)
    assert batch.status == "failed"
    assert "bad.csv" in batch.error_summary and "line 4" in batch.error_summary
    assert "Input (w/o Cache Write)" in batch.error_summary
    assert not UsageRecord.objects.exists() and not UsageHour.objects.exists()


def test_a_staging_table_loads_rows_and_csv_alike():
    stage = StagingTable("test_stage", [("number", "integer"), ("model", "varchar(200)")])
    stage.load_rows([(1, "a"), (2, "")])
    quoted = csv_cell('b, "c"')
    stage.load_csv(io.StringIO(f"3,{quoted}\n4,\n"), not_null_text=["model"])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT number, model FROM {stage.table} ORDER BY number")
        assert cursor.fetchall() == [(1, "a"), (2, ""), (3, 'b, "c"'), (4, "")]
    stage.drop()


def test_csv_cell_quotes_only_what_needs_it():
    assert csv_cell("gpt-5") == "gpt-5"
    assert csv_cell("") == ""
    assert csv_cell('a"b') == '"a""b"' and csv_cell("a,b") == '"a,b"' and csv_cell("a\nb") == '"a\nb"'
