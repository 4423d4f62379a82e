import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.factories import PersonFactory
from usage.models import Identity, ImportBatch, UsageRecord
from usage.services.imports import import_batch_create, import_batch_process

FIXTURES = Path(__file__).parent / "fixtures"


def run_import(path: Path, **kwargs) -> ImportBatch:
    with path.open("rb") as handle:
        batch = import_batch_create(file=handle, name=path.name, queue=False, **kwargs)
    return import_batch_process(batch.pk)


def totals_by_identity() -> dict[str, tuple[int, int, int, int, int]]:
    return {
        r.identity.value: (r.input_tokens, r.cache_write_tokens, r.cache_read_tokens, r.output_tokens, r.total_tokens)
        for r in UsageRecord.objects.select_related("identity")
    }


@pytest.mark.django_db
def test_openai_hourly_buckets_are_summed_into_one_day_with_cached_tokens_split_out():
    batch = run_import(FIXTURES / "openai_usage_two_users.json")
    assert batch.status == "succeeded", batch.error_summary
    assert batch.detected_format == "openai_usage"
    # Alice: two hourly buckets on 2026-09-01. input_tokens includes cached and cache-write tokens:
    # (120000 - 80000 - 5000) + (20000 - 10000) = 45000 plain input.
    alice = UsageRecord.objects.get(identity__value="user-Qm3AliceXyZ9")
    assert str(alice.day) == "2026-09-01"
    assert (alice.input_tokens, alice.cache_read_tokens, alice.cache_write_tokens, alice.output_tokens) == (
        45000,
        90000,
        5000,
        10000,
    )
    assert alice.total_tokens == 150000
    assert alice.requests == 50
    assert batch.rows_read == 3 and batch.records_written == 2


@pytest.mark.django_db
def test_anthropic_counters_are_disjoint_and_null_key_goes_to_default_workspace():
    batch = run_import(FIXTURES / "anthropic_usage_one_day.json")
    assert batch.status == "succeeded", batch.error_summary
    totals = totals_by_identity()
    assert totals["apikey_01AliceKeyR4nD0mZq"] == (15000, 41000, 300000, 22000, 378000)
    assert totals["(default workspace)"] == (10, 0, 0, 5, 15)
    assert Identity.objects.get(value="(default workspace)").person is None


@pytest.mark.django_db
def test_reimporting_the_same_file_changes_no_total():
    run_import(FIXTURES / "openai_usage_two_users.json")
    first = totals_by_identity()
    second_batch = run_import(FIXTURES / "openai_usage_two_users.json")
    assert second_batch.status == "succeeded"
    assert totals_by_identity() == first
    assert UsageRecord.objects.count() == 2
    # Every number is traceable to the import that last wrote it.
    assert set(UsageRecord.objects.values_list("import_batch", flat=True)) == {second_batch.pk}


@pytest.mark.django_db
def test_a_file_with_a_bad_row_is_rejected_whole_and_stores_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    text = (FIXTURES / "openai_usage_two_users.json").read_text().replace('"output_tokens":500', '"output_tokens":-5')
    bad.write_text(text)
    run_import(FIXTURES / "anthropic_usage_one_day.json")
    before = totals_by_identity()
    batch = run_import(bad)
    assert batch.status == "failed"
    assert "output_tokens is negative" in batch.error_summary
    assert batch.errors[0]["line"] == 1
    assert totals_by_identity() == before


@pytest.mark.django_db
def test_good_rows_can_be_imported_when_asked_and_bad_ones_are_listed(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        (FIXTURES / "openai_usage_two_users.json").read_text().replace('"output_tokens":500', '"output_tokens":"lots"')
    )
    batch = run_import(bad, import_good_rows=True)
    assert batch.status == "succeeded"
    assert batch.rows_rejected == 1 and batch.rows_imported == 2
    assert "not a number" in batch.errors[0]["reason"]
    assert set(totals_by_identity()) == {"user-Qm3AliceXyZ9"}


@pytest.mark.django_db
def test_truncated_json_names_the_file_and_reason(tmp_path):
    truncated = tmp_path / "cut.json"
    truncated.write_text((FIXTURES / "anthropic_usage_one_day.json").read_text()[:200])
    batch = run_import(truncated, requested_format="anthropic_usage")
    assert batch.status == "failed"
    assert batch.error_summary.startswith("cut.json: line 1:")
    assert "truncated JSON" in batch.error_summary


@pytest.mark.django_db
def test_a_file_that_matches_no_format_lists_the_formats_compared(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, world\n1,2\n")
    batch = run_import(junk)
    assert batch.status == "failed"
    assert "matches no known format" in batch.error_summary and "openai_usage" in batch.error_summary


@pytest.mark.django_db
def test_binary_junk_is_rejected_clearly(tmp_path):
    junk = tmp_path / "blob.bin"
    junk.write_bytes(bytes(range(256)) * 10)
    batch = run_import(junk)
    assert batch.status == "failed"
    assert "binary data" in batch.error_summary


@pytest.mark.django_db
def test_email_identities_link_to_people_and_assignment_reattributes_past_usage():
    alice = PersonFactory(email="alice@acme.example")
    run_import(FIXTURES / "openai_usage_two_users.json")
    identity = Identity.objects.get(value="user-Qm3AliceXyZ9")
    assert identity.person is None  # a user id is not an email: an admin (or a directory file) maps it
    identity.person = alice
    identity.save()
    assert UsageRecord.objects.filter(identity__person=alice).count() == 1


@pytest.mark.django_db
def test_a_running_import_is_not_taken_by_a_second_claimant():
    with (FIXTURES / "anthropic_usage_one_day.json").open("rb") as handle:
        batch = import_batch_create(file=handle, name="a.json", queue=False)
    ImportBatch.objects.filter(pk=batch.pk).update(status="running", claim_id="task-1")
    assert import_batch_process(batch.pk, claim_id="task-2") is None
    # The same message redelivered after its worker died resumes and completes.
    assert import_batch_process(batch.pk, claim_id="task-1").status == "succeeded"


@pytest.mark.django_db
def test_import_usage_command_with_wait_prints_a_summary(capsys):
    call_command("import_usage", str(FIXTURES / "anthropic_usage_one_day.json"), "--wait")
    out = capsys.readouterr().out
    assert "succeeded as anthropic_usage" in out and "2026-09-01 to 2026-09-01" in out


@pytest.mark.django_db
def test_import_usage_command_rejects_unknown_format_and_missing_file():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown --format 'nope'"):
        call_command("import_usage", str(FIXTURES / "anthropic_usage_one_day.json"), "--format", "nope")
    with pytest.raises(CommandError, match="missing.json: no such file"):
        call_command("import_usage", "missing.json")
    assert ImportBatch.objects.count() == 0


@pytest.mark.django_db
def test_import_usage_command_without_wait_queues_and_prints_ids(
    capsys, django_capture_on_commit_callbacks, sent_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_usage", str(FIXTURES / "anthropic_usage_one_day.json"))
    batch = ImportBatch.objects.get()
    assert f"queued import #{batch.pk}" in capsys.readouterr().out
    assert batch.status == "queued" and batch.raw_file.read().startswith(b'{"data"')
    sent_tasks.process_import.assert_called_once_with(batch.pk)


@pytest.mark.django_db
def test_data_as_of_is_the_newest_successful_import_or_pull():
    from datetime import UTC, datetime

    from usage.models import ProviderConnection
    from usage.services.imports import data_as_of

    assert data_as_of() is None
    batch = run_import(FIXTURES / "anthropic_usage_one_day.json")
    assert data_as_of() == batch.finished_at
    pulled = datetime(2099, 1, 1, tzinfo=UTC)
    ProviderConnection.objects.create(provider="openai", name="org", encrypted_api_key=b"x", last_success_at=pulled)
    assert data_as_of() == pulled


@pytest.mark.django_db
def test_a_value_longer_than_its_column_is_a_row_error_not_a_crash(tmp_path):
    long_model = tmp_path / "long.json"
    long_model.write_text(
        (FIXTURES / "anthropic_usage_one_day.json").read_text().replace("claude-haiku-4-5-20251001", "m" * 300)
    )
    batch = run_import(long_model)
    assert batch.status == "failed"
    assert "model is longer than 200 characters" in batch.error_summary
    assert not UsageRecord.objects.exists()


@pytest.mark.django_db
def test_a_vendor_estimate_is_labelled_estimated_not_billed(tmp_path):
    page = {
        "data": [
            {
                "date": "2026-09-01T00:00:00Z",
                "actor": {"type": "user_actor", "email_address": "Ada@acme.example"},
                "customer_type": "subscription",
                "model_breakdown": [
                    {
                        "model": "claude-sonnet-4-5-20250929",
                        "tokens": {"input": 10, "output": 20, "cache_read": 30, "cache_creation": 40},
                        "estimated_cost": {"currency": "USD", "amount": 250},
                    }
                ],
            }
        ],
        "has_more": False,
    }
    path = tmp_path / "claude_code.json"
    path.write_text(json.dumps(page))
    batch = run_import(path)
    assert batch.status == "succeeded", batch.error_summary
    record = UsageRecord.objects.get()
    # 250 cents of Anthropic's own estimate: $2.50, labelled estimated.
    assert (record.cost_usd, record.cost_source) == (Decimal("2.5"), "estimated")
