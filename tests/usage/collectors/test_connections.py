"""Connections as admins manage them: the key encrypted and write-only, one beat task per enabled connection,
the "test connection" messages, the window of a pull, and the sync_connection / rotate_provider_keys commands."""

import json
import logging
from datetime import UTC, date, datetime

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from tests.usage.collectors.fake_providers import GOOD_KEY
from usage import crypto
from usage.crypto import api_key_decrypt, api_key_encrypt
from usage.models import ProviderConnection, UsageRecord
from usage.services.connections import (
    connection_create,
    connection_delete,
    connection_next_run,
    connection_schedules_ensure,
    connection_test,
    connection_update,
    crontab_for,
    pull_window,
)

pytestmark = pytest.mark.django_db

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def test_the_stored_key_is_ciphertext_that_only_the_configured_keys_open(settings):
    settings.PROVIDER_KEY_ENCRYPTION_KEYS = [KEY_A]
    connection = connection_create(provider="openai", name="org", api_key="sk-admin-secret-123")
    stored = bytes(ProviderConnection.objects.get(pk=connection.pk).encrypted_api_key)

    assert b"sk-admin-secret-123" not in stored
    assert api_key_decrypt(stored) == "sk-admin-secret-123"
    settings.PROVIDER_KEY_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(crypto.KeyDecryptionError) as error:
        api_key_decrypt(stored)
    assert "sk-admin" not in str(error.value)


def test_rotating_re_encrypts_every_key_with_the_newest_so_old_keys_can_be_dropped(settings):
    settings.PROVIDER_KEY_ENCRYPTION_KEYS = [KEY_A]
    connection = connection_create(provider="anthropic", name="org", api_key="sk-ant-admin-xyz")
    settings.PROVIDER_KEY_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # new key first, old one kept for reading

    call_command("rotate_provider_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    settings.PROVIDER_KEY_ENCRYPTION_KEYS = [KEY_B]  # the old key is gone
    connection.refresh_from_db()
    assert api_key_decrypt(connection.encrypted_api_key) == "sk-ant-admin-xyz"


def test_without_configured_keys_the_embedded_run_uses_a_dev_key_and_warns_once(settings, caplog, monkeypatch):
    settings.PROVIDER_KEY_ENCRYPTION_KEYS = []
    monkeypatch.setattr(crypto, "_warned_about_dev_key", False)
    with caplog.at_level(logging.WARNING, logger="usage.crypto"):
        first = api_key_encrypt("sk-one")
        api_key_encrypt("sk-two")
    assert api_key_decrypt(first) == "sk-one"
    assert caplog.text.count("PROVIDER_KEY_ENCRYPTION_KEYS is not set") == 1
    assert "sk-one" not in caplog.text
    settings.IS_PRODUCTION = True
    with pytest.raises(ImproperlyConfigured):
        api_key_encrypt("sk-three")


def test_each_enabled_connection_has_one_beat_task_that_follows_renames_schedules_and_deletes():
    connection = connection_create(provider="openai", name="OpenAI prod", api_key="sk-1", schedule="15 */2 * * *")
    task = PeriodicTask.objects.get(name="connection:OpenAI prod")
    assert task.task == "usage.pull_provider_usage"
    assert json.loads(task.kwargs) == {"connection_id": connection.pk}
    assert (task.crontab.minute, task.crontab.hour) == ("15", "*/2")
    assert connection_next_run(connection) is not None

    connection_update(connection=connection, name="OpenAI main", schedule="0 3 * * *")
    assert list(PeriodicTask.objects.filter(task="usage.pull_provider_usage").values_list("name", flat=True)) == [
        "connection:OpenAI main"
    ]
    assert PeriodicTask.objects.get(name="connection:OpenAI main").crontab.hour == "3"

    connection_update(connection=connection, enabled=False)
    assert not PeriodicTask.objects.filter(task="usage.pull_provider_usage").exists()
    assert connection_next_run(connection) is None
    connection_update(connection=connection, enabled=True)
    connection_delete(connection)
    assert not PeriodicTask.objects.filter(task="usage.pull_provider_usage").exists()


def test_ensuring_schedules_repairs_missing_and_orphaned_tasks_but_keeps_admin_edits():
    kept = connection_create(provider="openai", name="kept", api_key="k", schedule="0 * * * *")
    lost = connection_create(provider="anthropic", name="lost", api_key="k")
    PeriodicTask.objects.filter(name="connection:lost").delete()  # e.g. deleted by hand in the admin
    edited = PeriodicTask.objects.get(name="connection:kept")
    edited.crontab = crontab_for("5 4 * * *")
    edited.save()
    ProviderConnection.objects.filter(pk=kept.pk).update(name="renamed behind our back")

    changes = connection_schedules_ensure()

    assert len(changes) == 3
    names = set(PeriodicTask.objects.filter(task="usage.pull_provider_usage").values_list("name", flat=True))
    assert names == {"connection:lost", "connection:renamed behind our back"}
    assert connection_schedules_ensure() == []  # idempotent
    assert json.loads(PeriodicTask.objects.get(name="connection:lost").kwargs) == {"connection_id": lost.pk}


def test_a_bad_schedule_or_a_missing_key_is_refused_with_the_field_named():
    with pytest.raises(ValidationError) as error:
        connection_create(provider="openai", name="x", api_key="", schedule="every hour")
    assert set(error.value.message_dict) == {"api_key", "schedule"}
    with pytest.raises(ValidationError) as error:
        connection_create(provider="openai", name="x", api_key="k", schedule="61 * * * *")
    assert "schedule" in error.value.message_dict
    assert not ProviderConnection.objects.exists()


def test_updating_without_a_key_keeps_the_stored_one():
    connection = connection_create(provider="cursor", name="team", api_key="key_cursor_1")
    connection_update(connection=connection, api_key=None, restatement_days=5)
    connection.refresh_from_db()
    assert api_key_decrypt(connection.encrypted_api_key) == "key_cursor_1" and connection.restatement_days == 5


def test_testing_a_connection_says_plainly_what_is_wrong(anthropic_api, openai_api, sleeps):
    good = connection_create(provider="anthropic", name="good", api_key=GOOD_KEY, base_url=anthropic_api.url)
    bad = connection_create(provider="anthropic", name="bad", api_key="sk-ant-api03-normal", base_url=anthropic_api.url)
    no_scope = connection_create(provider="openai", name="scope", api_key=GOOD_KEY, base_url=openai_api.url)
    openai_api.fail("403")
    unreachable = connection_create(provider="openai", name="down", api_key=GOOD_KEY, base_url="http://127.0.0.1:9")

    assert connection_test(good).ok
    check = connection_test(bad)
    assert not check.ok and "refused the key" in check.message and "invalid x-api-key" in check.message
    assert "sk-ant-api03-normal" not in check.message
    check = connection_test(no_scope)
    assert not check.ok and "lacks admin access" in check.message
    check = connection_test(unreachable)
    assert not check.ok and "could not be reached (or kept failing) at http://127.0.0.1:9" in check.message
    assert len(anthropic_api.requests) == 2  # one call per test, and a refused key is not retried


def test_a_pull_window_starts_at_the_first_hour_of_an_org_local_day(settings):
    connection = ProviderConnection(provider="openai", name="w", restatement_days=3)
    now = datetime(2026, 9, 15, 10, 30, 12, tzinfo=UTC)

    settings.TIME_ZONE = "Europe/Berlin"  # UTC+2 in September: local midnight is 22:00 UTC the day before
    assert pull_window(connection, since=date(2026, 9, 10), now=now) == (datetime(2026, 9, 6, 22, tzinfo=UTC), now)
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+5:30: the first bucket of 09-07 starts at 19:00 UTC (00:30 local)
    assert pull_window(connection, since=date(2026, 9, 10), now=now)[0] == datetime(2026, 9, 6, 19, tzinfo=UTC)
    settings.TIME_ZONE = "UTC"
    connection.last_success_at = datetime(2026, 9, 15, 9, 5, tzinfo=UTC)
    assert pull_window(connection, now=now)[0] == datetime(2026, 9, 12, tzinfo=UTC)
    connection.last_success_at = None
    assert pull_window(connection, now=now)[0] == datetime(2026, 8, 16, tzinfo=UTC)  # first run: 30 days


def test_sync_connection_with_wait_pulls_now_and_reports_the_rows(openai_api, frozen_now, sleeps, lock_cache, capsys):
    from tests.usage.collectors.test_pulls import EXPECTED_OPENAI, seed_openai, totals

    seed_openai(openai_api)
    connection_create(provider="openai", name="org", api_key=GOOD_KEY, base_url=openai_api.url, restatement_days=0)

    call_command("sync_connection", "org", "--since", "2026-09-13", "--wait")

    assert "pulled 6 rows" in capsys.readouterr().out
    assert totals() == EXPECTED_OPENAI
    with pytest.raises(CommandError, match="no connection named 'nope'"):
        call_command("sync_connection", "nope", "--wait")


def test_sync_connection_without_wait_queues_the_task(sent_tasks):
    connection = connection_create(provider="openai", name="org", api_key="k")

    call_command("sync_connection", "org", "--since", "2026-01-01", stdout=open("/dev/null", "w"))  # noqa: SIM115

    sent_tasks.pull_provider_usage.assert_called_once_with(connection_id=connection.pk, manual=True, since="2026-01-01")
    assert UsageRecord.objects.count() == 0
