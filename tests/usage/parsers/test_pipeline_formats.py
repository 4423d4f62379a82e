"""A few formats end to end: stored, parsed, identities resolved, upserted — through the real pipeline."""

from decimal import Decimal
from pathlib import Path

import pytest

from tests.factories import PersonFactory
from usage.models import ColumnMapping, Identity, ImportBatch, UsageRecord
from usage.services.imports import import_batch_create, import_batch_process

from .helpers import FIXTURES, focus_sample

PIPELINE_FIXTURES = FIXTURES.parent.parent / "fixtures"


def run_import(path: Path, **kwargs) -> ImportBatch:
    with path.open("rb") as handle:
        batch = import_batch_create(file=handle, name=path.name, queue=False, **kwargs)
    return import_batch_process(batch.pk)


@pytest.mark.django_db
def test_anthropic_usage_without_cost_is_estimated_from_the_shipped_price_table():
    batch = run_import(PIPELINE_FIXTURES / "anthropic_usage_one_day.json")
    assert batch.status == "succeeded", batch.error_summary
    alice = UsageRecord.objects.get(identity__value="apikey_01AliceKeyR4nD0mZq")
    # claude-sonnet-4-5 at $3 input / $3.75 cache write / $0.30 cache read / $15 output per million:
    # 15000 × 3 + 41000 × 3.75 + 300000 × 0.30 + 22000 × 15 = 45000 + 153750 + 90000 + 330000 = 618750 → $0.618750
    assert (alice.cost_source, alice.cost_usd) == ("estimated", Decimal("0.618750"))
    haiku = UsageRecord.objects.get(identity__value="(default workspace)")
    # claude-haiku-4-5 at $1 / $5: 10 × 1 + 5 × 5 = 35 → $0.000035
    assert (haiku.cost_source, haiku.cost_usd) == ("estimated", Decimal("0.000035"))


@pytest.mark.django_db
def test_billed_costs_are_kept_as_billed():
    batch = run_import(FIXTURES / "anthropic_cost_report.json")
    assert batch.status == "succeeded", batch.error_summary
    research = UsageRecord.objects.get(identity__value="wrkspc_01Research")
    assert (research.cost_source, research.cost_usd) == ("billed", Decimal("26.237891"))


@pytest.mark.django_db
def test_a_users_list_links_earlier_usage_by_user_id_to_the_person():
    alice = PersonFactory(email="alice@acme.example")
    run_import(PIPELINE_FIXTURES / "openai_usage_two_users.json")
    assert Identity.objects.get(value="user-Qm3AliceXyZ9").person is None
    batch = run_import(FIXTURES / "openai_users.json")
    assert batch.status == "succeeded", batch.error_summary
    assert (batch.rows_imported, batch.rows_skipped) == (1, 1)
    assert Identity.objects.get(value="user-Qm3AliceXyZ9").person == alice
    assert UsageRecord.objects.filter(identity__person=alice).count() == 1


@pytest.mark.django_db
def test_cursor_csv_imports_per_person_per_day_and_a_second_import_changes_nothing():
    bob = PersonFactory(email="bob@acme.example")
    first = run_import(FIXTURES / "cursor_team_usage.csv")
    assert first.status == "succeeded", first.error_summary
    assert (first.detected_format, first.rows_read, first.people_affected) == ("cursor_csv", 5, 1)
    records = UsageRecord.objects.filter(identity__person=bob)
    # Bob's three events are two models on 2026-09-01 (UTC, the test time zone): two records.
    assert records.count() == 2
    totals = sorted(
        (r.model, r.input_tokens, r.cache_write_tokens, r.cache_read_tokens, r.output_tokens) for r in records
    )
    assert totals == [("claude-4.5-opus-high-thinking", 2200, 30500, 410000, 9800), ("gpt-5", 1200, 0, 5000, 300)]
    run_import(FIXTURES / "cursor_team_usage.csv")
    assert (
        sorted(
            (r.model, r.input_tokens, r.cache_write_tokens, r.cache_read_tokens, r.output_tokens) for r in records.all()
        )
        == totals
    )
    assert UsageRecord.objects.count() == 4


@pytest.mark.django_db
def test_the_public_focus_sample_imports_with_every_row_skipped():
    batch = run_import(focus_sample())
    assert batch.status == "succeeded", batch.error_summary
    assert (batch.detected_format, batch.rows_read, batch.rows_skipped, batch.records_written) == (
        "focus",
        1000,
        1000,
        0,
    )


@pytest.mark.django_db
def test_a_header_only_openai_export_is_reported_as_holding_no_usage():
    batch = run_import(FIXTURES / "openai_dashboard_header_only.csv")
    assert batch.status == "failed"
    assert "no usage rows found" in batch.error_summary
    assert UsageRecord.objects.count() == 0


@pytest.mark.django_db
def test_a_generic_csv_uses_the_saved_mapping_named_in_the_format():
    ColumnMapping.objects.create(
        name="ivy-export",
        provider="other",
        columns={"day": "When", "identity": "Who", "model": "Model", "input_tokens": "In", "output_tokens": "Out"},
    )
    ivy = PersonFactory(email="ivy@acme.example")
    batch = run_import(FIXTURES / "generic_usage.csv", requested_format="generic_csv:ivy-export")
    assert batch.status == "succeeded", batch.error_summary
    record = UsageRecord.objects.get(day="2026-09-01")
    # Two rows of 1 Sept: 1000 + 500 input, 200 + 100 output; no cost column and no price → cost none.
    assert (record.identity.person, record.input_tokens, record.output_tokens) == (ivy, 1500, 300)
    assert (record.provider, record.cost_source) == ("other", "none")


@pytest.mark.django_db
def test_a_generic_csv_with_an_unknown_mapping_fails_clearly():
    batch = run_import(FIXTURES / "generic_usage.csv", requested_format="generic_csv:nope")
    assert batch.status == "failed" and "no saved column mapping named 'nope'" in batch.error_summary


@pytest.mark.django_db
def test_ccusage_goes_to_the_person_chosen_at_upload_and_is_refused_without_one():
    refused = run_import(FIXTURES / "ccusage_daily.json")
    assert refused.status == "failed" and "choose who this usage belongs to" in refused.error_summary
    me = PersonFactory(email="me@acme.example")
    batch = run_import(FIXTURES / "ccusage_daily.json", attribute_to=me)
    assert batch.status == "succeeded", batch.error_summary
    assert UsageRecord.objects.filter(identity__person=me).count() == 3


@pytest.mark.django_db
def test_cloud_rows_without_a_person_are_kept_as_unassigned_identities():
    alice = PersonFactory(email="alice@acme.example")
    batch = run_import(FIXTURES / "aws_cur2_bedrock.csv")
    assert batch.status == "succeeded", batch.error_summary
    assert (batch.rows_imported, batch.rows_skipped) == (7, 2)
    # The assumed-role session named by email links straight to Alice; "bob" waits for an admin.
    assert Identity.objects.get(provider="aws_bedrock", value="alice@acme.example").person == alice
    assert Identity.objects.get(provider="aws_bedrock", value="bob").person is None
    profile = Identity.objects.get(kind="project")
    assert profile.person is None and profile.usage_records.get().input_tokens == 1000


@pytest.mark.django_db
def test_a_parquet_cur_export_imports_like_its_csv(tmp_path):
    from .test_aws_cur import _as_parquet

    def totals():
        return {
            r.identity.value: (r.input_tokens, r.cache_write_tokens, r.cache_read_tokens, r.output_tokens, r.cost_usd)
            for r in UsageRecord.objects.select_related("identity")
        }

    batch = run_import(_as_parquet(tmp_path))
    assert batch.status == "succeeded", batch.error_summary
    assert (batch.detected_format, batch.rows_read, batch.rows_skipped) == ("aws_cur", 9, 2)
    from_parquet = totals()
    UsageRecord.objects.all().delete()
    run_import(FIXTURES / "aws_cur2_bedrock.csv")
    assert from_parquet == totals()
    # alice: 250500 input, 1,000,000 cache read, 10000 output; $1.2015 billed
    assert from_parquet["alice@acme.example"] == (250500, 0, 1000000, 10000, Decimal("1.201500"))
