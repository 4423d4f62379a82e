"""The real path: celery beat fires a connection's periodic task → a real worker (solo pool) takes it through
real Redis → pulls from a fake provider on 127.0.0.1 → writes to PostgreSQL."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection as db_connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tests.usage.collectors.fake_providers import GOOD_KEY
from tests.usage.collectors.test_pulls import openai_result
from usage.models import ImportBatch, ProviderConnection, UsageRecord
from usage.services.connections import connection_create

ROOT = Path(__file__).resolve().parents[3]
WAIT_SECONDS = 90  # beat fires "* * * * *" at the next minute boundary; then the pull takes a few seconds


def database_url_of_test_db() -> str:
    db = db_connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def celery(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "leaderboard", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def celery_env(transactional_db, settings, tmp_path):
    key = Fernet.generate_key().decode()
    settings.PROVIDER_KEY_ENCRYPTION_KEYS = [key]  # the worker must decrypt what this process encrypts
    return {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PROVIDER_KEY_ENCRYPTION_KEYS": key,
        "DJANGO_SETTINGS_MODULE": "leaderboard.settings",
    }


@pytest.mark.needs_services
@pytest.mark.real_broker
def test_beat_fires_the_connection_schedule_and_a_real_worker_pulls_into_postgresql(celery_env, openai_api, tmp_path):
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    openai_api.hourly = {
        yesterday: [
            openai_result("user-alice", "gpt-5", input_tokens=1000, cached=400, output=100, requests=2),
            openai_result("user-bob", "gpt-4.1", input_tokens=50, output=5),
        ]
    }
    connection = connection_create(
        provider="openai",
        name="beat test",
        api_key=GOOD_KEY,
        base_url=openai_api.url,
        schedule="* * * * *",
        restatement_days=1,
    )
    # A previous success keeps the window short: yesterday's local midnight minus one restatement day, to now.
    ProviderConnection.objects.filter(pk=connection.pk).update(last_success_at=timezone.now() - timedelta(days=1))
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "leaderboard", "purge", "-f"],
        cwd=ROOT,
        env=celery_env,
        capture_output=True,
        timeout=60,
        check=True,
    )  # stale messages from earlier runs on this Redis database must not run against this test's rows
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = celery(
        ["worker", "--pool=solo", "--loglevel=info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        celery_env,
        worker_log,
    )
    beat = celery(["beat", "--loglevel=info", "--max-interval=2"], celery_env, beat_log)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            connection.refresh_from_db()
            if connection.failing or (connection.last_rows_pulled and connection.last_success_at):
                break
            assert worker.poll() is None, worker_log.read_text()
            assert beat.poll() is None, beat_log.read_text()
            time.sleep(1)
    finally:
        stop(beat)
        stop(worker)
    logs = f"--- worker\n{worker_log.read_text()[-4000:]}\n--- beat\n{beat_log.read_text()[-3000:]}"
    assert not connection.failing, f"{connection.last_error}\n{logs}"
    assert connection.last_rows_pulled == 2, logs
    task = PeriodicTask.objects.get(name="connection:beat test")
    assert task.total_run_count >= 1 and task.last_run_at is not None  # beat sent it, not this test
    assert "usage.pull_provider_usage" in beat_log.read_text()
    batch = ImportBatch.objects.get(connection=connection, detected_format="openai_usage")
    assert batch.source == "api" and batch.status == "succeeded"
    alice = UsageRecord.objects.get(identity__value="user-alice")
    assert (alice.input_tokens, alice.cache_read_tokens, alice.output_tokens, alice.requests) == (600, 400, 100, 2)
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
