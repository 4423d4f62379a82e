from django.db import migrations
from django.utils import timezone


def mark_every_usage_day(apps, schema_editor):
    """Existing usage predates the standings: mark its days so the first refresh builds them (queued by
    setup_periodic_tasks, or run `manage.py rebuild_rollups`)."""
    UsageRecord = apps.get_model("usage", "UsageRecord")
    StandingsDirtyDay = apps.get_model("usage", "StandingsDirtyDay")
    now = timezone.now()
    days = UsageRecord.objects.values_list("day", flat=True).distinct()
    StandingsDirtyDay.objects.bulk_create(
        [StandingsDirtyDay(day=day, marked_at=now) for day in days], ignore_conflicts=True
    )


class Migration(migrations.Migration):
    dependencies = [("usage", "0003_standings")]

    operations = [migrations.RunPython(mark_every_usage_day, migrations.RunPython.noop)]
