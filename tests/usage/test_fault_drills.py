"""Fault drills on PostgreSQL + Redis (docs/architecture.md, Reliability rules): a worker killed with SIGKILL in
the middle of an import, then restarted, finishes it within seconds of the sweep (not the broker's 6-hour
visibility timeout) with exact totals; the same file imported twice at once counts once; a database connection
cut in the middle of an import leaves no partial totals and the import runs again. Files are small and the
heartbeat and stale timeouts short (settings), so each drill takes seconds."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import Sum

from usage.models import ImportBatch, UsageRecord
from usage.parsers import cursor_summed
from usage.services import imports
from usage.services.imports import import_batch_create, import_batch_process, imports_sweep

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = 1
STALE_SECONDS = 4

pytestmark = pytest.mark.needs_services


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "leaderboard.settings",
        "TOKENBOARD_IMPORT_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "TOKENBOARD_IMPORT_STALE_SECONDS": str(STALE_SECONDS),
    }
    command = [sys.executable, "-m", "celery", "-A", "leaderboard", "worker", "--pool=solo", "--loglevel=warning"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def workers(transactional_db):
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        started.append(start_worker())
        return started[-1]

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()


@pytest.fixture
def short_timeouts(settings):
    settings.TOKENBOARD_IMPORT_HEARTBEAT_SECONDS = HEARTBEAT_SECONDS
    settings.TOKENBOARD_IMPORT_STALE_SECONDS = STALE_SECONDS


def cursor_export(tmp_path: Path, rows: int) -> tuple[Path, int]:
    from bench.ingest import generate_cursor

    path = tmp_path / "cursor.csv"
    facts = generate_cursor(rows, path, tmp_path / "twin.csv")
    return path, facts["total_tokens"]


def stored_total() -> int:
    return UsageRecord.objects.aggregate(total=Sum("total_tokens"))["total"] or 0


def wait_for(condition, *, seconds: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


@pytest.mark.real_broker
def test_drill_a_worker_killed_mid_import_is_resumed_by_the_sweep_with_exact_totals(workers, short_timeouts, tmp_path):
    export, expected_total = cursor_export(tmp_path, 300_000)
    worker = workers()
    with export.open("rb") as handle:
        batch = import_batch_create(file=handle, name="big.csv")  # autocommit: sent to the worker at once

    def reading() -> bool:
        batch.refresh_from_db()
        return batch.status == "running" and batch.rows_read >= imports.PROGRESS_EVERY_ROWS

    wait_for(reading, seconds=120, what="the worker to be reading the file")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    batch.refresh_from_db()
    assert batch.status == "running"  # stuck, as it was: the broker would redeliver only after 6 hours
    assert not UsageRecord.objects.exists()  # and nothing half-stored

    workers()  # restarted; beat's sweep (called here, once a second) finds the stopped heartbeat

    def finished() -> bool:
        imports_sweep()
        batch.refresh_from_db()
        return batch.status in ("succeeded", "failed")

    wait_for(finished, seconds=180, what="the import to finish after the restart", step=1)
    assert batch.status == "succeeded", batch.error_summary
    assert batch.attempts == 2
    assert stored_total() == expected_total


def test_drill_the_same_file_imported_twice_at_once_counts_once(transactional_db, tmp_path):
    export, expected_total = cursor_export(tmp_path, 20_000)
    batches = []
    for name in ("first.csv", "second.csv"):
        with export.open("rb") as handle:
            batches.append(import_batch_create(file=handle, name=name, queue=False))
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(batch_id: int) -> None:
        try:
            start.wait()
            import_batch_process(batch_id)
        except BaseException as error:  # reported by the assertion below
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(batch.pk,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert {batch.status for batch in ImportBatch.objects.all()} == {"succeeded"}
    assert stored_total() == expected_total


def connection_cut(backend_pid: int) -> None:
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


@pytest.mark.parametrize("reader", ["rows", "columnar"])
def test_drill_a_database_connection_cut_mid_import_stores_nothing_and_runs_again(
    transactional_db, sent_tasks, monkeypatch, tmp_path, reader
):
    export, expected_total = cursor_export(tmp_path, 2_000)
    with export.open("rb") as handle:
        batch = import_batch_create(file=handle, name="cut.csv", queue=False)
    monkeypatch.setattr(imports, "PROGRESS_EVERY_ROWS", 100)  # the next query after the cut is a progress update
    connection.ensure_connection()
    import_backend = connection.connection.info.backend_pid  # the import's: the columnar reader reads in a thread
    if reader == "rows":
        monkeypatch.setattr(settings, "TOKENBOARD_IMPORT_COLUMNAR", False)
        parse_guarded = imports._guarded

        def cut_after_some_rows(items):
            for count, item in enumerate(parse_guarded(items)):
                if count == 250:
                    connection_cut(import_backend)
                yield item

        monkeypatch.setattr(imports, "_guarded", cut_after_some_rows)
        cut, kept = (imports, "_guarded"), parse_guarded
    else:
        monkeypatch.setattr(cursor_summed, "CHUNK_BYTES", 16 * 1024)  # about 80 events a block
        summed = cursor_summed._summed
        blocks = []

        def cut_at_the_third_block(*args):
            blocks.append(summed(*args))
            if len(blocks) == 3:
                connection_cut(import_backend)  # the next query: this block's hours merged
            return blocks[-1]

        monkeypatch.setattr(cursor_summed, "_summed", cut_at_the_third_block)
        cut, kept = (cursor_summed, "_summed"), summed
    assert import_batch_process(batch.pk) is None
    batch.refresh_from_db()
    assert batch.status == "queued" and batch.claim_id == "" and batch.attempts == 1  # not stuck "running"
    sent_tasks.process_import.assert_called_once_with(batch.pk)  # sent again
    assert not UsageRecord.objects.exists()

    monkeypatch.setattr(*cut, kept)
    rerun = import_batch_process(batch.pk)
    assert rerun.status == "succeeded" and rerun.attempts == 2
    assert stored_total() == expected_total


@pytest.mark.real_broker
def test_drill_a_real_workers_database_connection_cut_mid_parse_is_retried_with_exact_totals(
    workers, short_timeouts, tmp_path
):
    export, expected_total = cursor_export(tmp_path, 300_000)
    workers()
    with export.open("rb") as handle:
        batch = import_batch_create(file=handle, name="big.csv")

    def reading() -> bool:
        batch.refresh_from_db()
        return batch.status == "running" and batch.rows_read >= imports.PROGRESS_EVERY_ROWS

    wait_for(reading, seconds=120, what="the worker to be reading the file")
    with connection.cursor() as cursor:  # every other session on the test database: the worker's
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )

    def finished() -> bool:
        batch.refresh_from_db()
        return batch.status in ("succeeded", "failed")

    wait_for(finished, seconds=180, what="the import to be run again and finish", step=0.5)
    assert batch.status == "succeeded", batch.error_summary
    assert batch.attempts == 2  # the cut run was requeued by the worker itself, not left "running"
    assert stored_total() == expected_total
