"""The parts of the import pipeline that make large exports fast and memory-flat (bench/ingest.py measures
them): JSON lines read line by line, records upserted in a stream (COPY on PostgreSQL, batches elsewhere)
with the same replace-on-natural-key semantics, and the count helpers' fast paths."""

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from usage.models import UsageRecord
from usage.parsers.base import ParseError, is_null, load_json_documents, to_int
from usage.services.bulk import LOAD_BATCH
from usage.services.imports import import_batch_create, import_batch_process


def run_import(path: Path, **kwargs):
    with path.open("rb") as handle:
        batch = import_batch_create(file=handle, name=path.name, queue=False, **kwargs)
    return import_batch_process(batch.pk)


def usage_page(day_start: int, results: list[dict]) -> dict:
    return {
        "object": "page",
        "data": [{"object": "bucket", "start_time": day_start, "end_time": day_start + 86400, "results": results}],
    }


def result(user: str, input_tokens: int, output_tokens: int = 0, model: str = "gpt-4.1") -> dict:
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": input_tokens,
        "input_cached_tokens": 0,
        "output_tokens": output_tokens,
        "num_model_requests": 1,
        "user_id": user,
        "model": model,
    }


SEPT_1 = 1788220800  # 2026-09-01T00:00:00Z


class LinesOnly(io.StringIO):
    """A text stream that fails if anyone reads it whole."""

    def read(self, size=-1):
        raise AssertionError("the whole file was read into memory")


def test_json_lines_are_read_one_line_at_a_time_never_whole():
    stream = LinesOnly('{"data": [1]}\n\n{"data": [2]}\n{"data": [3]}\n')
    assert list(load_json_documents(stream)) == [(1, {"data": [1]}), (3, {"data": [2]}), (4, {"data": [3]})]


def test_a_pretty_printed_single_document_is_still_read_whole():
    text = json.dumps([{"data": [1]}, {"data": [2]}], indent=2)
    assert list(load_json_documents(io.StringIO(text))) == [(1, {"data": [1]}), (1, {"data": [2]})]


def test_a_bad_line_in_json_lines_names_its_line():
    with pytest.raises(ParseError) as error:
        list(load_json_documents(io.StringIO('{"data": []}\n{"data": []}\n{"data": [\n')))
    assert error.value.line == 3
    assert "not a JSON document or JSON lines" in error.value.reason


def test_count_fast_paths_accept_and_reject_exactly_what_the_general_path_does():
    assert to_int(59200, "n") == 59200 and to_int("59200", "n") == 59200 and to_int("59200.0", "n") == 59200
    for bad in (True, -1, "-1", 10**15 + 1, str(10**15 + 1), "²"):
        with pytest.raises(ValueError):
            to_int(bad, "n")
    assert [is_null(v) for v in ("", " NULL ", "none", "-", "nulls", "12345", None, 0)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        True,
        False,
    ]


@pytest.mark.django_db
def test_a_restated_day_replaces_the_record_and_points_it_at_the_newer_import(tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(json.dumps(usage_page(SEPT_1, [result("user-a", 1000, 10), result("user-b", 50)])) + "\n")
    second.write_text(json.dumps(usage_page(SEPT_1, [result("user-a", 700, 7)])) + "\n")
    run_import(first)
    newer = run_import(second)
    assert newer.status == "succeeded", newer.error_summary
    a = UsageRecord.objects.get(identity__value="user-a")
    # Replaced, not added: the newer export is the truth for that day.
    assert (a.input_tokens, a.output_tokens, a.total_tokens) == (700, 7, 707)
    assert a.import_batch_id == newer.pk
    assert a.cost_source in ("estimated", "none") and isinstance(a.cost_usd, Decimal)
    # The newer export states the whole day: user-b, whom it no longer has, is gone (issue 11).
    assert not UsageRecord.objects.filter(identity__value="user-b").exists()
    assert UsageRecord.objects.count() == 1


@pytest.mark.django_db
def test_more_records_than_one_upsert_batch_are_all_written_once(tmp_path):
    users = LOAD_BATCH + 301  # more rows than one executemany batch (SQLite loads the staging table in batches)
    export = tmp_path / "many.jsonl"
    with export.open("w") as out:
        # Two lines (pages) for the same day: each user's two results add up into one record.
        for _ in range(2):
            out.write(json.dumps(usage_page(SEPT_1, [result(f"user-{i}", i + 1) for i in range(users)])) + "\n")
    batch = run_import(export)
    assert batch.status == "succeeded", batch.error_summary
    assert batch.rows_read == 2 * users and batch.records_written == users
    assert UsageRecord.objects.count() == users
    assert sum(UsageRecord.objects.values_list("input_tokens", flat=True)) == 2 * sum(range(1, users + 1))
    again = run_import(export)
    assert again.records_written == users and UsageRecord.objects.count() == users
