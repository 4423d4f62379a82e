"""Imports history, the result page with its rejected rows (and their CSV), retry and re-process all;
and the import_usage command's --requeue and exit status."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tests.factories import ImportBatchFactory
from usage.models import ImportBatch, UsageRecord
from usage.services.imports import import_batch_create, import_batch_process

FIXTURES = Path(__file__).parent / "fixtures"
OPENAI = FIXTURES / "openai_usage_two_users.json"
ANTHROPIC = FIXTURES / "anthropic_usage_one_day.json"

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, org):
    client.force_login(org["admin"])
    return client


@pytest.fixture
def delay(sent_tasks):
    return sent_tasks.process_import


def stored_import(path: Path, *, name: str | None = None, process: bool = True, **kwargs) -> ImportBatch:
    with path.open("rb") as handle:
        batch = import_batch_create(file=handle, name=name or path.name, queue=False, **kwargs)
    return import_batch_process(batch.pk) if process else batch


@pytest.fixture
def half_bad_export(tmp_path) -> Path:
    """The OpenAI fixture with one non-numeric token count (its third bucket result)."""
    bad = tmp_path / "half_bad.json"
    bad.write_text(OPENAI.read_text().replace('"output_tokens":500', '"output_tokens":"lots"'))
    return bad


@pytest.mark.parametrize("persona", ["infra_engineer", "platform_manager"])
def test_engineers_and_managers_get_403_on_every_imports_page(client, org, persona, delay):
    batch = ImportBatchFactory(status="failed")
    client.force_login(org[persona].user)
    for url in (
        reverse("imports-list"),
        reverse("import-detail", args=[batch.pk]),
        reverse("import-errors-csv", args=[batch.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("import-retry", args=[batch.pk])).status_code == 403
    assert client.post(reverse("imports-reprocess")).status_code == 403
    batch.refresh_from_db()
    assert batch.status == "failed"
    delay.assert_not_called()


def test_the_history_lists_every_import_with_source_who_when_status_and_counts(admin_client, org):
    stored_import(ANTHROPIC, user=org["admin"])
    ImportBatchFactory(original_name="from-the-inbox.csv", source="drop_folder", status="failed", rows_rejected=7)
    page = admin_client.get(reverse("imports-list")).content.decode()
    assert ANTHROPIC.name in page and "from-the-inbox.csv" in page
    assert "Upload" in page and "Drop folder" in page
    assert ">admin<" in page  # who started the upload
    assert "Succeeded" in page and "Failed" in page
    assert "2026-09-01 – 2026-09-01" in page
    # Newest first.
    assert page.index("from-the-inbox.csv") < page.index(ANTHROPIC.name)


def test_the_history_is_paginated_and_filters_by_status(admin_client):
    for number in range(55):
        ImportBatchFactory(original_name=f"export-{number:02d}.json", status="succeeded")
    ImportBatchFactory(original_name="broken.json", status="failed")
    first = admin_client.get(reverse("imports-list")).content.decode()
    assert "Page 1 of 2" in first and "broken.json" in first and "export-00.json" not in first
    second = admin_client.get(reverse("imports-list"), {"page": 2}).content.decode()
    assert "export-00.json" in second
    failed = admin_client.get(reverse("imports-list"), {"status": "failed"}).content.decode()
    assert "broken.json" in failed and "export-54.json" not in failed


def test_the_result_page_shows_format_period_counts_and_every_rejected_row(admin_client, half_bad_export):
    batch = stored_import(half_bad_export, import_good_rows=True)
    assert batch.status == "succeeded"
    page = admin_client.get(reverse("import-detail", args=[batch.pk])).content.decode()
    assert "openai_usage" in page and "(detected)" in page
    assert "2026-09-01 to 2026-09-01" in page
    counts = page.split('class="counts stack"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r'<td data-label="[^"]+" class="num">([^<]*)</td>', counts)
    # read, imported, skipped, rejected, daily records, people affected (user ids map to no one yet)
    assert cells == ["3", "2", "0", "1", "1", "0"]
    rejected = page.split('class="rejected"', 1)[1]
    error = batch.errors[0]
    assert f'<td class="num">{error["line"]}</td><td>{error["reason"]}</td>' in rejected.replace("&#x27;", "'")
    assert reverse("import-errors-csv", args=[batch.pk]) in page
    assert "Retry this import" not in page  # it succeeded


def test_a_failed_import_shows_its_summary_and_a_retry_button(admin_client, half_bad_export):
    batch = stored_import(half_bad_export)
    assert batch.status == "failed"
    page = admin_client.get(reverse("import-detail", args=[batch.pk])).content.decode()
    assert "file rejected whole" in page and "half_bad.json" in page
    assert f'action="{reverse("import-retry", args=[batch.pk])}"' in page


def test_an_unfinished_import_polls_for_progress_on_its_result_page(admin_client):
    batch = ImportBatchFactory(status="running")
    page = admin_client.get(reverse("import-detail", args=[batch.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in page and "reload=1" in page


def test_the_errors_csv_lists_each_rejected_row_and_defuses_spreadsheet_formulas(admin_client):
    reasons = ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "plain reason"]
    batch = ImportBatchFactory(
        original_name="=cmd.csv",
        status="failed",
        rows_rejected=len(reasons),
        errors=[{"line": n, "reason": r} for n, r in enumerate(reasons, start=2)] + [{"line": None, "reason": "x"}],
    )
    response = admin_client.get(reverse("import-errors-csv", args=[batch.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="import-{batch.pk}-errors.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["file", "line", "reason"]
    # Every cell a spreadsheet would run as a formula starts with a quote; plain text is left alone.
    assert [row[2] for row in rows[1:-1]] == ["'" + r for r in reasons[:-1]] + ["plain reason"]
    assert {row[0] for row in rows[1:]} == {"'=cmd.csv"}
    assert [row[1] for row in rows[1:]] == [str(n) for n in range(2, 2 + len(reasons))] + [""]


def test_retry_requeues_a_failed_import_from_its_stored_file(
    admin_client, half_bad_export, delay, django_capture_on_commit_callbacks
):
    batch = stored_import(half_bad_export)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("import-retry", args=[batch.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("import-detail", args=[batch.pk])
    batch.refresh_from_db()
    assert batch.status == "queued"
    delay.assert_called_once_with(batch.pk)


def test_retry_refuses_an_import_that_did_not_fail_and_answers_only_post(admin_client, delay):
    batch = stored_import(ANTHROPIC)
    assert admin_client.get(reverse("import-retry", args=[batch.pk])).status_code == 405
    response = admin_client.post(reverse("import-retry", args=[batch.pk]), follow=True)
    assert "only a failed or running import is retried" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == "succeeded"
    delay.assert_not_called()


def test_reprocess_all_requeues_finished_and_stuck_running_imports_and_leaves_queued_ones(
    admin_client, delay, django_capture_on_commit_callbacks
):
    first = stored_import(OPENAI)
    second = stored_import(ANTHROPIC, name="broken.json", requested_format="openai_usage")
    assert (first.status, second.status) == ("succeeded", "failed")
    running = stored_import(ANTHROPIC, process=False)
    ImportBatch.objects.filter(pk=running.pk).update(status="running", claim_id="task-1")
    queued = stored_import(OPENAI, process=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("imports-reprocess"), follow=True)
    assert "Re-queued 3 import(s)" in response.content.decode()
    assert sorted(c.args for c in delay.call_args_list) == sorted([(first.pk,), (second.pk,), (running.pk,)])
    statuses = dict(ImportBatch.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "queued", second.pk: "queued", running.pk: "queued", queued.pk: "queued"}
    assert ImportBatch.objects.get(pk=running.pk).claim_id == ""  # the old run, if alive, drops its results


def test_reprocessing_an_import_replaces_its_totals_rather_than_adding_them(delay):
    from usage.services.imports import imports_reprocess_all

    batch = stored_import(OPENAI)
    before = sorted(UsageRecord.objects.values_list("identity__value", "total_tokens"))
    assert imports_reprocess_all() == 1
    assert import_batch_process(batch.pk).status == "succeeded"
    assert sorted(UsageRecord.objects.values_list("identity__value", "total_tokens")) == before


def test_import_usage_requeue_resends_imports_left_queued(delay, capsys, django_capture_on_commit_callbacks):
    left = stored_import(ANTHROPIC, process=False)  # stored, but its message never reached the broker
    done = stored_import(OPENAI)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_usage", "--requeue")
    delay.assert_called_once_with(left.pk)
    assert f"re-sent import #{left.pk}" in capsys.readouterr().out
    assert ImportBatch.objects.get(pk=done.pk).status == "succeeded"


def test_import_usage_requeue_with_wait_runs_them_here(capsys):
    left = stored_import(ANTHROPIC, process=False)
    call_command("import_usage", "--requeue", "--wait")
    assert ImportBatch.objects.get(pk=left.pk).status == "succeeded"
    assert "succeeded as anthropic_usage" in capsys.readouterr().out


def test_import_usage_exits_non_zero_when_any_file_is_rejected_but_imports_the_others(half_bad_export, capsys):
    with pytest.raises(CommandError, match=r"1 of 2 file\(s\) rejected"):
        call_command("import_usage", str(ANTHROPIC), str(half_bad_export), "--wait")
    assert "half_bad.json: line" in capsys.readouterr().err
    assert dict(ImportBatch.objects.values_list("original_name", "status")) == {
        ANTHROPIC.name: "succeeded",
        "half_bad.json": "failed",
    }


def test_import_usage_needs_files_or_requeue(db):
    with pytest.raises(CommandError, match="give one or more export files, or --requeue"):
        call_command("import_usage")


def test_the_progress_page_shows_a_failure_whole_with_its_advice(admin_client):
    summary = (
        "usage.csv: 1,204 bad row(s), file rejected whole (first: line 7: "
        + "x" * 300
        + "). Fix the file, or re-import choosing 'import the good rows'."
    )
    batch = ImportBatchFactory(status="failed", error_summary=summary)
    html = admin_client.get(reverse("imports-progress"), {"ids": batch.pk}).content.decode()
    assert "re-import choosing &#x27;import the good rows&#x27;." in html


def test_a_file_that_could_not_be_read_is_not_headed_as_zero_rejected_rows(admin_client, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"object": "page", "data": [')
    batch = stored_import(broken)
    assert batch.status == "failed" and batch.rows_rejected == 0 and len(batch.errors) == 1
    html = admin_client.get(reverse("import-detail", args=[batch.pk])).content.decode()
    assert "Rejected rows (0)" not in html
    assert "Why the file was not read" in html
