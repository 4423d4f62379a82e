"""Imports that never stay stuck: a running import whose worker died is requeued by the sweep (heartbeat), a stuck
import can always be retried, an import stored while the broker is down is sent once it is back, and a run whose
import was taken over changes nothing."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from usage.models import ImportBatch, UsageRecord
from usage.parsers.base import ParseError
from usage.services.imports import (
    import_batch_create,
    import_batch_process,
    import_batch_retry,
    import_summary,
    imports_sweep,
)

FIXTURES = Path(__file__).parent / "fixtures"
OPENAI = FIXTURES / "openai_usage_two_users.json"

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, org):
    client.force_login(org["admin"])
    return client


def stored(path: Path = OPENAI) -> ImportBatch:
    with path.open("rb") as handle:
        return import_batch_create(file=handle, name=path.name, queue=False)


def running(batch: ImportBatch, *, heartbeat_ago: timedelta, attempts: int = 1) -> ImportBatch:
    beat = timezone.now() - heartbeat_ago
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running", claim_id="dead-task", started_at=beat, heartbeat_at=beat, attempts=attempts
    )
    return ImportBatch.objects.get(pk=batch.pk)


def test_the_sweep_requeues_an_import_whose_heartbeat_stopped_and_leaves_a_live_one(
    settings, sent_tasks, django_capture_on_commit_callbacks
):
    settings.TOKENBOARD_IMPORT_STALE_SECONDS = 300
    dead = running(stored(), heartbeat_ago=timedelta(minutes=6))
    alive = running(stored(), heartbeat_ago=timedelta(seconds=20))
    with django_capture_on_commit_callbacks(execute=True):
        assert imports_sweep() == (1, 1)
    sent_tasks.process_import.assert_called_once_with(dead.pk)
    dead.refresh_from_db()
    assert (dead.status, dead.claim_id) == ("queued", "")
    assert dead.dispatched_at is not None
    assert ImportBatch.objects.get(pk=alive.pk).status == "running"
    # The requeued import then runs to the end with the file's totals.
    assert import_batch_process(dead.pk, claim_id="new-task").status == "succeeded"
    assert UsageRecord.objects.filter(import_batch=dead).count() == 2


def test_an_import_whose_worker_keeps_dying_fails_with_a_message_instead_of_looping(settings, sent_tasks):
    settings.TOKENBOARD_IMPORT_MAX_ATTEMPTS = 3
    batch = running(stored(), heartbeat_ago=timedelta(hours=1), attempts=3)
    assert imports_sweep() == (0, 0)
    batch.refresh_from_db()
    assert batch.status == "failed"
    assert "stopped 3 times without finishing" in batch.error_summary
    sent_tasks.process_import.assert_not_called()


def test_a_run_claims_count_attempts_and_beat(settings):
    batch = stored()
    processed = import_batch_process(batch.pk)
    assert processed.attempts == 1 and processed.heartbeat_at is not None


def test_retry_takes_an_import_stuck_running(admin_client, sent_tasks, django_capture_on_commit_callbacks):
    batch = running(stored(), heartbeat_ago=timedelta(hours=7))
    page = admin_client.get(reverse("import-detail", args=[batch.pk])).content.decode()
    assert f'action="{reverse("import-retry", args=[batch.pk])}"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("import-retry", args=[batch.pk]), follow=True)
    assert "is queued again" in response.content.decode()
    batch.refresh_from_db()
    assert (batch.status, batch.claim_id) == ("queued", "")
    sent_tasks.process_import.assert_called_once_with(batch.pk)


def test_import_usage_requeue_takes_imports_stuck_running(settings, capsys, sent_tasks):
    settings.TOKENBOARD_IMPORT_STALE_SECONDS = 300
    stuck = running(stored(), heartbeat_ago=timedelta(minutes=10))
    call_command("import_usage", "--requeue", "--wait")
    assert f"import #{stuck.pk} openai_usage_two_users.json was stuck running" in capsys.readouterr().out
    stuck.refresh_from_db()
    assert stuck.status == "succeeded"
    assert UsageRecord.objects.filter(import_batch=stuck).count() == 2


def test_a_run_whose_import_was_retried_meanwhile_neither_fails_nor_stores_it(monkeypatch):
    batch = stored()

    def read_then_lose_the_claim(batch):
        import_batch_retry(batch)  # an admin retries the import while this run is still going
        raise ParseError("the old run's error")

    monkeypatch.setattr("usage.services.imports._reading", read_then_lose_the_claim)
    import_batch_process(batch.pk, claim_id="old-run")
    batch.refresh_from_db()
    assert (batch.status, batch.error_summary) == ("queued", "")


def test_an_upload_while_the_broker_is_down_is_kept_told_and_sent_when_it_is_back(
    admin_client, settings, sent_tasks, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    sent_tasks.process_import.side_effect = ConnectionError("Error 111 connecting to 127.0.0.1:6379")
    upload = SimpleUploadedFile("usage.json", OPENAI.read_bytes(), "application/json")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("imports-upload"), {"files": [upload]}, follow=True)
    assert response.status_code == 200
    batch = ImportBatch.objects.get()
    assert batch.status == "queued" and batch.dispatched_at is None and batch.raw_file.read()
    assert "task queue could not be reached" in response.content.decode()
    assert "sent automatically once the queue is back" in import_summary(batch)

    # The broker is back: the sweep (beat, every minute) sends it; nobody runs --requeue.
    sent_tasks.process_import.side_effect = None
    sent_tasks.process_import.reset_mock()
    ImportBatch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert imports_sweep() == (0, 1)
    sent_tasks.process_import.assert_called_once_with(batch.pk)
    batch.refresh_from_db()
    assert batch.dispatched_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert imports_sweep() == (0, 0)  # sent once


def test_the_sweep_runs_every_minute_from_beat():
    from usage.schedules import PERIODIC_TASKS

    spec = next(spec for spec in PERIODIC_TASKS if spec.task == "usage.sweep_imports")
    assert spec.cron == "* * * * *"
