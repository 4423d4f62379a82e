"""A real Celery worker takes an import through real Redis and writes to PostgreSQL."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from usage.models import ImportBatch, UsageRecord
from usage.services.imports import import_batch_create

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db):
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "leaderboard.settings",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "leaderboard",
            "worker",
            "--pool=solo",
            "--loglevel=warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.mark.needs_services
@pytest.mark.real_broker
def test_a_real_worker_imports_through_redis_into_postgresql(celery_worker_process):
    with (FIXTURES / "anthropic_usage_one_day.json").open("rb") as handle:
        batch = import_batch_create(file=handle, name="anthropic.json")  # autocommit: queued at once
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.status in ("succeeded", "failed"):
            break
        assert celery_worker_process.poll() is None, celery_worker_process.stdout.read()
        time.sleep(0.5)
    assert batch.status == "succeeded", f"status {batch.status}: {batch.error_summary}"
    assert batch.claim_id and not batch.claim_id.startswith("local-")  # claimed by the Celery task id
    assert UsageRecord.objects.filter(import_batch=batch).count() == 2
    assert ImportBatch.objects.get(pk=batch.pk).rows_imported == 2
