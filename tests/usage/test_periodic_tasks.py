import pytest
from django.conf import settings
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from usage.models import ProviderConnection


@pytest.mark.django_db
def test_setup_periodic_tasks_declares_the_schedules_and_is_safe_to_rerun(capsys):
    connection = ProviderConnection.objects.create(provider="openai", name="acme-openai", encrypted_api_key=b"x")
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    tasks = dict(PeriodicTask.objects.values_list("name", "task"))
    assert tasks["scan drop folder"] == "usage.scan_inbox"
    assert tasks[f"connection:{connection.name}"] == "usage.pull_provider_usage"
    # The rolling windows move at the org's midnight (crontab in CELERY_TIMEZONE, the org's TIME_ZONE).
    midnight = PeriodicTask.objects.get(name="move rolling windows at midnight")
    assert midnight.task == "usage.refresh_standings"
    assert (midnight.crontab.minute, midnight.crontab.hour) == ("1", "0")
    assert tasks["sweep imports"] == "usage.sweep_imports"
    digest = PeriodicTask.objects.get(name="weekly digest")  # Monday 09:00, org time zone
    assert digest.task == "leaderboard.send_weekly_digest"
    assert (digest.crontab.minute, digest.crontab.hour, digest.crontab.day_of_week) == ("0", "9", "1")
    assert digest.crontab.timezone.key == settings.TIME_ZONE
    assert tasks["purge old audit entries"] == "usage.purge_audit"
    # Declared once each, however often it runs: the schedules and the connection's pull.
    assert sorted(tasks) == sorted(
        [
            "scan drop folder",
            f"connection:{connection.name}",
            "move rolling windows at midnight",
            "sweep imports",
            "weekly digest",
            "purge old audit entries",
        ]
    )


@pytest.mark.django_db
def test_setup_periodic_tasks_queues_a_refresh_for_usage_not_in_the_standings_yet(
    sent_tasks, django_capture_on_commit_callbacks
):
    from datetime import date

    from tests.factories import UsageRecordFactory

    call_command("setup_periodic_tasks")
    sent_tasks.refresh_standings.assert_not_called()
    UsageRecordFactory(day=date(2026, 9, 1), input_tokens=5)  # marks its day, as an upgrade's migration does
    with django_capture_on_commit_callbacks(execute=True):
        call_command("setup_periodic_tasks")
    sent_tasks.refresh_standings.assert_called_once_with()


@pytest.mark.django_db
def test_setup_periodic_tasks_queues_the_rebuild_an_upgrades_migration_asked_for(
    sent_tasks, django_capture_on_commit_callbacks
):
    from usage.models import StandingsState

    StandingsState.objects.create(pk=1, rebuild_requested=True)  # as migration 0025 leaves kept standings
    with django_capture_on_commit_callbacks(execute=True):
        call_command("setup_periodic_tasks")
    sent_tasks.refresh_standings.assert_called_once_with()
