"""A newer export of a scope (provider, account, day, format) replaces what older exports said about it: records it
no longer has go, a renamed model does not count twice, and an older export never undoes a newer one. "Newer" is
the export time the file carries (GCP billing's export_time), else the upload order."""

import io
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from tests.factories import cursor_csv, imported
from usage.models import ImportBatch, UsageRecord
from usage.services.imports import import_batch_create, import_batch_process, import_batch_retry
from usage.services.records import RecordSpool

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["held", "written out"])
def records(request, monkeypatch):
    """Every case with the import's records held in memory, and written out a record at a time
    (usage.services.records): the scopes and what is superseded come out the same."""
    if request.param == "written out":
        monkeypatch.setattr(RecordSpool, "BUFFER", 1)


def output_tokens() -> int:
    return UsageRecord.objects.aggregate(total=Sum("output_tokens"))["total"] or 0


A = cursor_csv(
    ("2026-09-01", "alice@acme.example", "gpt-5", 500),
    ("2026-09-01", "bob@acme.example", "gpt-5", 400),
    ("2026-09-02", "carol@acme.example", "claude-4-sonnet", 500),
)
# The same days exported again later: alice's model renamed, carol's row gone, new figures.
B = cursor_csv(
    ("2026-09-01", "alice@acme.example", "gpt-5-2025-08-07", 1399),
    ("2026-09-01", "bob@acme.example", "gpt-5", 700),
    ("2026-09-02", "dave@acme.example", "gpt-5", 699),
)


def test_a_newer_export_of_the_same_days_replaces_them_and_an_a_b_a_sequence_ends_as_the_last_file_says():
    imported(A)
    assert output_tokens() == 1400
    imported(B)
    assert output_tokens() == 2798  # not 1400 + 2798 - overlaps: carol's row and alice's old model are gone
    assert not UsageRecord.objects.filter(identity__value__icontains="carol").exists()
    assert list(UsageRecord.objects.filter(identity__value__icontains="alice").values_list("model", flat=True)) == [
        "gpt-5-2025-08-07"
    ]
    imported(A)  # uploaded last, so it is the newest statement of those days
    assert output_tokens() == 1400


def test_a_retried_older_import_does_not_undo_a_newer_one():
    first = imported(A)
    imported(B)
    import_batch_retry(first)
    rerun = import_batch_process(first.pk)
    assert rerun.status == "succeeded"
    assert output_tokens() == 2798
    assert rerun.scopes_superseded == 2 and rerun.records_written == 0


def test_the_import_page_says_which_days_a_newer_export_kept(client, org):
    first = imported(A)
    imported(B)
    import_batch_retry(first)
    import_batch_process(first.pk)
    client.force_login(org["admin"])
    page = client.get(reverse("import-detail", args=[first.pk])).content.decode()
    assert "2 provider × account × day scope(s) of this file were not written" in page
    api = client.get(f"/api/v1/imports/{first.pk}/").json()  # the page and the API agree
    assert api["scopes_superseded"] == 2 and api["records_written"] == 0


def test_the_import_page_says_what_a_newer_export_replaced(client, org):
    first = imported(A)
    second = imported(B)
    assert (second.records_replaced, second.replaced_imports) == (2, [first.pk])  # carol's row, alice's old model
    client.force_login(org["admin"])
    page = client.get(reverse("import-detail", args=[second.pk])).content.decode()
    assert "This export replaced 2 records of" in page and f">import #{first.pk}</a>" in page
    api = client.get(f"/api/v1/imports/{second.pk}/").json()  # the page and the API agree
    assert (api["records_replaced"], api["replaced_imports"]) == (2, [first.pk])


def test_days_the_newer_export_does_not_cover_are_kept():
    imported(A)
    imported(cursor_csv(("2026-09-02", "dave@acme.example", "gpt-5", 10)))
    assert output_tokens() == 900 + 10  # 1 September untouched, 2 September replaced


GCP_HEADER = (
    "billing_account_id,service.id,service.description,sku.id,sku.description,usage_start_time,usage_end_time,"
    "project.id,project.name,labels,cost,currency,usage.amount,usage.unit,credits,cost_type,export_time\n"
)


def gcp_csv(output_tokens: int, export_time: str) -> bytes:
    row = (
        "012345-6789AB-CDEF01,C7E2-9256-1C43,Vertex AI,A1B2-0002,Gemini 2.5 Pro Thinking Text Output - Predictions,"
        "2026-09-01 10:00:00 UTC,2026-09-01 11:00:00 UTC,acme-ml-prod,ML Prod,"
        f'"[{{""key"": ""user"", ""value"": ""alice""}}]",0.5,USD,{output_tokens},count,[],regular,{export_time}\n'
    )
    return (GCP_HEADER + row).encode()


def test_an_export_time_in_the_file_decides_which_is_newer_whatever_the_upload_order():
    newer = imported(gcp_csv(2000, "2026-09-03 04:00:00 UTC"), name="billing-late.csv")
    assert newer.exported_at is not None and newer.exported_at.isoformat().startswith("2026-09-03T04:00")
    older = imported(gcp_csv(1500, "2026-09-02 04:00:00 UTC"), name="billing-early.csv")  # uploaded later
    assert output_tokens() == 2000
    assert older.scopes_superseded == 1


def test_the_import_page_says_what_newer_means(client, org):
    client.force_login(org["admin"])
    page = client.get(reverse("imports-upload")).content.decode()
    assert "replaces" in page and "export time" in page and "upload order" in page


def test_created_at_orders_exports_that_carry_no_export_time():
    first = imported(A)
    second = imported(B)
    # Made older than the first: B's statement now predates A's, so a re-run of B must not undo A.
    ImportBatch.objects.filter(pk=second.pk).update(created_at=first.created_at - timedelta(hours=1))
    ImportBatch.objects.filter(pk=first.pk).update(created_at=timezone.now())
    import_batch_retry(ImportBatch.objects.get(pk=first.pk))
    import_batch_process(first.pk)
    import_batch_retry(ImportBatch.objects.get(pk=second.pk))
    assert import_batch_process(second.pk).records_written == 0
    assert output_tokens() == 1400


PERSONAL_HEADER = (
    '"Date","Kind","Model","Max Mode","Input (w/ Cache Write)","Input (w/o Cache Write)","Cache Read",'
    '"Output Tokens","Total Tokens","Cost"\n'
)


def personal_csv(*rows: tuple[str, str, int]) -> bytes:
    """(day, model, output tokens) → one person's own Cursor export (no User column)."""
    lines = [
        f'"{day}T10:00:00.000Z","Included","{model}","No","0","0","0","{out}","{out}","Included"\n'
        for day, model, out in rows
    ]
    return (PERSONAL_HEADER + "".join(lines)).encode()


def test_personal_exports_of_the_same_days_replace_only_their_own_persons_usage(org):
    def personal_import(person, content: bytes) -> ImportBatch:
        batch = import_batch_create(file=io.BytesIO(content), name="mine.csv", queue=False, attribute_to=person)
        processed = import_batch_process(batch.pk)
        assert processed.status == "succeeded", processed.error_summary
        return processed

    ivy, paul = org["infra_engineer"], org["product_engineer"]
    personal_import(ivy, personal_csv(("2026-09-01", "gpt-5", 100), ("2026-09-02", "gpt-5", 5)))
    personal_import(paul, personal_csv(("2026-09-01", "gpt-5", 40)))
    assert output_tokens() == 145  # Paul's own export does not replace Ivy's
    personal_import(ivy, personal_csv(("2026-09-01", "gpt-5-codex", 70)))
    assert output_tokens() == 70 + 5 + 40  # Ivy's newer export replaces her 1 September only
