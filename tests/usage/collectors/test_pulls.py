"""Pulls from fake provider admin APIs through the real pipeline: pagination, restatement, retries,
failures that store nothing, the per-connection lock, and a worker killed mid-run."""

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.usage.collectors.fake_providers import GOOD_KEY
from usage.collectors.http import JsonClient
from usage.models import ImportBatch, ProviderConnection, UsageRecord
from usage.services.connections import connection_create, connection_lock_key, connection_run, connection_sync

pytestmark = pytest.mark.django_db


def hour(day: int, h: int) -> datetime:
    return datetime(2026, 9, day, h, tzinfo=UTC)


def openai_result(user, model, *, input_tokens, cached=0, cache_write=0, output=0, requests=1, kind="completions"):
    return {
        "object": f"organization.usage.{kind}.result",
        "input_tokens": input_tokens,
        "input_cached_tokens": cached,
        "input_cache_write_tokens": cache_write,
        "input_uncached_tokens": input_tokens - cached - cache_write,
        "output_tokens": output,
        "num_model_requests": requests,
        "user_id": user,
        "api_key_id": f"key_{user}",
        "project_id": "proj_1",
        "model": model,
        "batch": None,
    }


def seed_openai(fake):
    fake.hourly = {
        hour(13, 9): [
            openai_result("user-alice", "gpt-5", input_tokens=1000, cached=200, cache_write=100, output=300, requests=2)
        ],
        hour(13, 15): [openai_result("user-alice", "gpt-5", input_tokens=500, output=50)],
        hour(14, 10): [
            openai_result("user-alice", "gpt-5", input_tokens=2000, cached=1000, output=400, requests=3),
            openai_result("user-bob", "gpt-4.1", input_tokens=700, output=70),
        ],
        hour(14, 11): [
            openai_result("user-alice", "text-embedding-3-small", input_tokens=5000, requests=4, kind="embeddings")
        ],
        hour(14, 23): [openai_result("user-bob", "gpt-4.1", input_tokens=300, output=30)],
    }


# (identity, day, model, kind) → (input, cache_read, cache_write, output, total, requests), worked out by hand:
# alice 09-13: plain input (1000-200-100) + 500 = 1200, read 200, write 100, output 350.
EXPECTED_OPENAI = {
    ("user-alice", "2026-09-13", "gpt-5", "completions"): (1200, 200, 100, 350, 1850, 3),
    ("user-alice", "2026-09-14", "gpt-5", "completions"): (1000, 1000, 0, 400, 2400, 3),
    ("user-bob", "2026-09-14", "gpt-4.1", "completions"): (1000, 0, 0, 100, 1100, 2),
    ("user-alice", "2026-09-14", "text-embedding-3-small", "embeddings"): (5000, 0, 0, 0, 5000, 4),
}


def totals() -> dict:
    return {
        (r.identity.value, r.day.isoformat(), r.model, r.usage_kind): (
            r.input_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            r.output_tokens,
            r.total_tokens,
            r.requests,
        )
        for r in UsageRecord.objects.select_related("identity")
    }


def make_connection(fake, *, key=GOOD_KEY, **fields) -> ProviderConnection:
    fields.setdefault("restatement_days", 1)
    return connection_create(
        provider=fake.provider, name=f"{fake.provider} org", api_key=key, base_url=fake.url, **fields
    )


def test_a_multi_page_openai_pull_imports_every_page_with_exact_totals(openai_api, frozen_now, sleeps):
    seed_openai(openai_api)
    openai_api.page_size = 10
    connection = make_connection(openai_api)

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert result.ok, result.message
    assert openai_api.violations == []
    # 09-14 minus one restatement day → from 09-13 00:00 UTC to now: 59 hourly buckets, 6 pages per endpoint.
    completions = openai_api.requests_to("/usage/completions")
    assert len(completions) == 6
    assert completions[0].param("start_time") == str(int(hour(13, 0).timestamp()))
    assert [r.param("page") for r in completions[1:]] == [f"page_{n}" for n in (10, 20, 30, 40, 50)]
    assert totals() == EXPECTED_OPENAI
    batch = ImportBatch.objects.get(detected_format="openai_usage")
    assert (batch.source, batch.connection, batch.status) == ("api", connection, "succeeded")
    assert batch.raw_file.read().count(b"\n") == 12  # the raw pages, one JSON line each, re-processable
    connection.refresh_from_db()
    assert connection.last_success_at == frozen_now
    assert connection.last_rows_pulled == 6 and not connection.failing
    assert sleeps == []


def test_a_restated_day_replaces_its_totals_instead_of_adding_to_them(openai_api, frozen_now, sleeps):
    seed_openai(openai_api)
    connection = make_connection(openai_api)
    assert connection_sync(connection, since=date(2026, 9, 14)).ok
    # The provider restates 09-14 (late data): alice's 10:00 bucket grows, bob's 23:00 bucket disappears.
    openai_api.hourly[hour(14, 10)][0] = openai_result(
        "user-alice", "gpt-5", input_tokens=2600, cached=1000, output=500, requests=4
    )
    del openai_api.hourly[hour(14, 23)]
    connection.refresh_from_db()

    result = connection_sync(connection)  # the scheduled run: last success minus one restatement day

    assert result.ok, result.message
    assert openai_api.requests_to("/usage/completions")[-1].param("start_time") == str(int(hour(14, 0).timestamp()))
    expected = dict(EXPECTED_OPENAI)
    expected[("user-alice", "2026-09-14", "gpt-5", "completions")] = (1600, 1000, 0, 500, 3100, 4)
    expected[("user-bob", "2026-09-14", "gpt-4.1", "completions")] = (700, 0, 0, 70, 770, 1)
    assert totals() == expected  # 09-13 (outside the second window) is kept as it was
    assert UsageRecord.objects.count() == 4


def test_an_anthropic_pull_sends_the_admin_headers_and_follows_next_page(anthropic_api, frozen_now, sleeps):
    anthropic_api.page_size = 7
    result_row = {
        "uncached_input_tokens": 1500,
        "cache_creation": {"ephemeral_1h_input_tokens": 100, "ephemeral_5m_input_tokens": 400},
        "cache_read_input_tokens": 30000,
        "output_tokens": 2200,
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": "apikey_01Alice",
        "workspace_id": "wrkspc_01",
        "model": "claude-sonnet-4-5",
        "service_tier": None,
        "context_window": None,
    }
    anthropic_api.hourly = {hour(14, 8): [result_row], hour(14, 21): [dict(result_row, output_tokens=800)]}
    connection = make_connection(anthropic_api)

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert result.ok, result.message
    assert anthropic_api.violations == []
    messages = anthropic_api.requests_to("usage_report/messages")
    assert all(r.headers["x-api-key"] == GOOD_KEY and r.headers["anthropic-version"] == "2023-06-01" for r in messages)
    assert messages[0].param("starting_at") == "2026-09-13T00:00:00Z"
    assert len(messages) == 9  # 59 hourly buckets, 7 per page
    assert totals() == {
        ("apikey_01Alice", "2026-09-14", "claude-sonnet-4-5", "messages"): (
            3000,
            60000,
            1000,
            3000,
            67000,
            None,
        )  # no request counts: unknown
    }


def test_a_429_waits_what_retry_after_says_and_then_succeeds(openai_api, frozen_now, sleeps):
    seed_openai(openai_api)
    openai_api.fail("429", retry_after="7", when=lambda r: "/usage/completions" in r.path)
    connection = make_connection(openai_api)

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert result.ok, result.message
    assert sleeps == [7.0]
    assert totals() == EXPECTED_OPENAI


def test_a_500_storm_gives_up_cleanly_and_stores_nothing(openai_api, frozen_now, sleeps):
    seed_openai(openai_api)
    # The first pages come back fine; every later page fails: a half-pulled window must not be imported.
    openai_api.page_size = 10
    openai_api.fail("500", times=1000, when=lambda r: r.param("page") == "page_30")
    connection = make_connection(openai_api)

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert not result.ok
    assert ImportBatch.objects.count() == 0 and UsageRecord.objects.count() == 0
    connection.refresh_from_db()
    assert connection.failing and connection.last_error_at is not None
    assert "gave up after 6 attempts" in connection.last_error and "HTTP 500" in connection.last_error
    assert connection.last_success_at is None
    # Exponential backoff with full jitter: retry n waits at most base · 2^(n-1) seconds.
    assert len(sleeps) == 5
    assert all(0 <= wait <= 2**n for n, wait in enumerate(sleeps))


def test_a_bad_key_stops_at_once_with_the_providers_message(anthropic_api, frozen_now, sleeps):
    connection = make_connection(anthropic_api, key="sk-ant-admin-WRONG")

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert not result.ok
    assert len(anthropic_api.requests) == 1 and sleeps == []  # 401 is never retried
    connection.refresh_from_db()
    assert connection.failing
    assert "HTTP 401" in connection.last_error and "invalid x-api-key" in connection.last_error
    assert "WRONG" not in connection.last_error


def test_slow_answers_and_truncated_bodies_are_retried(openai_api, frozen_now, sleeps):
    seed_openai(openai_api)
    openai_api.fail("slow", delay=1.5, when=lambda r: "/usage/completions" in r.path)
    openai_api.fail("truncated", when=lambda r: "/usage/embeddings" in r.path)
    connection = make_connection(openai_api)

    result = connection_sync(connection, since=date(2026, 9, 14), client_options={"timeout": 0.5})

    assert result.ok, result.message
    assert len(sleeps) == 2  # one retry for the timeout, one for the truncated body
    assert totals() == EXPECTED_OPENAI


def test_a_second_run_of_the_same_connection_skips_while_the_first_is_going(
    openai_api, frozen_now, sleeps, lock_cache, monkeypatch, caplog
):
    seed_openai(openai_api)
    connection = make_connection(openai_api)
    second_runs = []
    real_get = JsonClient.get

    def get_and_start_another_run(self, path, params=None):
        if not second_runs:  # half-way through the first run, the schedule fires again
            second_runs.append(connection_run(connection.pk, since=date(2026, 9, 14), run_id="second"))
        return real_get(self, path, params)

    monkeypatch.setattr(JsonClient, "get", get_and_start_another_run)
    with caplog.at_level(logging.INFO, logger="usage.services.connections"):
        first = connection_run(connection.pk, since=date(2026, 9, 14), run_id="first")

    assert second_runs == [None]
    assert "skipping: previous run still going" in caplog.text
    assert first is not None and first.ok
    assert totals() == EXPECTED_OPENAI
    assert ImportBatch.objects.filter(detected_format="openai_usage").count() == 1
    assert lock_cache.get(connection_lock_key(connection.pk)) is None  # released when the run ended


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so no handler records or cleans anything."""


def test_a_worker_killed_mid_run_stores_nothing_and_the_redelivered_run_gives_exact_totals(
    openai_api, frozen_now, sleeps, lock_cache, monkeypatch
):
    seed_openai(openai_api)
    openai_api.page_size = 10
    connection = make_connection(openai_api)
    real_get = JsonClient.get
    calls = []

    def killed_on_the_fourth_page(self, path, params=None):
        calls.append(path)
        if len(calls) == 4:
            raise WorkerKilled
        return real_get(self, path, params)

    monkeypatch.setattr(JsonClient, "get", killed_on_the_fourth_page)
    with pytest.raises(WorkerKilled):
        connection_run(connection.pk, since=date(2026, 9, 14), run_id="task-1")
    assert ImportBatch.objects.count() == 0 and UsageRecord.objects.count() == 0
    connection.refresh_from_db()
    assert connection.last_success_at is None

    # A killed worker leaves its lock behind; the broker redelivers the same message (same task id).
    lock_cache.set(connection_lock_key(connection.pk), "task-1", 3600)
    monkeypatch.setattr(JsonClient, "get", real_get)
    rerun = connection_run(connection.pk, since=date(2026, 9, 14), run_id="task-1")

    assert rerun is not None and rerun.ok, rerun and rerun.message
    assert totals() == EXPECTED_OPENAI
    # And once more, as a duplicate delivery would: still exact, nothing doubled.
    assert connection_run(connection.pk, since=date(2026, 9, 14), run_id="task-2").ok
    assert totals() == EXPECTED_OPENAI


def test_a_disabled_connection_is_not_pulled_on_schedule_but_can_be_pulled_by_hand(
    openai_api, frozen_now, sleeps, lock_cache
):
    seed_openai(openai_api)
    connection = make_connection(openai_api, enabled=False)

    assert connection_run(connection.pk, since=date(2026, 9, 14)) is None
    assert openai_api.requests == []
    assert connection_run(connection.pk, since=date(2026, 9, 14), manual=True).ok
    assert totals() == EXPECTED_OPENAI


def test_a_retry_after_date_is_honoured_and_a_very_long_one_ends_the_run(openai_api, frozen_now, sleeps):
    from email.utils import format_datetime

    from usage.collectors.http import retry_after_seconds

    assert 29 <= retry_after_seconds(format_datetime(frozen_now + timedelta(seconds=30), usegmt=True)) <= 30
    openai_api.fail("429", retry_after="3600")
    connection = make_connection(openai_api)

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert not result.ok and sleeps == []
    connection.refresh_from_db()
    assert connection.failing and "asks to wait 3600 s" in connection.last_error
    assert UsageRecord.objects.count() == 0


def test_drill_a_provider_answering_500_for_hours_is_backed_off_then_caught_up_with_no_gap(
    openai_api, frozen_now, sleeps
):
    """Fault drill: after a good pull the provider fails every request for two scheduled runs (hours); each run
    backs off, gives up and stores nothing; the first run after it recovers pulls from the last success, so
    the days of the outage are all there, exactly once."""
    import time_machine

    seed_openai(openai_api)
    connection = make_connection(openai_api)
    assert connection_sync(connection, since=date(2026, 9, 13)).ok
    last_success = ProviderConnection.objects.get(pk=connection.pk).last_success_at
    # Usage keeps happening during the outage.
    openai_api.hourly[hour(15, 11)] = [openai_result("user-bob", "gpt-4.1", input_tokens=900, output=90)]
    openai_api.fail("500", times=10_000)
    for hours_later in (1, 2):
        with time_machine.travel(frozen_now + timedelta(hours=hours_later), tick=True):
            connection.refresh_from_db()
            failed = connection_sync(connection)
        assert not failed.ok and "HTTP 500" in failed.message
    assert len(sleeps) == 10 and all(0 <= wait <= 2**n for n, wait in enumerate(sleeps[:5]))  # backoff each run
    connection.refresh_from_db()
    assert connection.failing and connection.last_success_at == last_success
    assert totals() == EXPECTED_OPENAI  # the outage changed nothing

    openai_api.faults.clear()
    with time_machine.travel(frozen_now + timedelta(hours=3), tick=True):
        connection.refresh_from_db()
        recovered = connection_sync(connection)
    assert recovered.ok, recovered.message
    expected = {**EXPECTED_OPENAI, ("user-bob", "2026-09-15", "gpt-4.1", "completions"): (900, 0, 0, 90, 990, 1)}
    assert totals() == expected
    connection.refresh_from_db()
    assert not connection.failing
