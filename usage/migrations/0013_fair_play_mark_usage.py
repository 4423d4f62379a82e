from django.db import migrations
from django.utils import timezone


def mark_every_usage_day(apps, schema_editor):
    """The efficiency metrics' ranks are new columns: mark every usage day so the next refresh fills them."""
    UsageRecord = apps.get_model("usage", "UsageRecord")
    StandingsDirtyDay = apps.get_model("usage", "StandingsDirtyDay")
    now = timezone.now()
    days = UsageRecord.objects.values_list("day", flat=True).distinct()
    StandingsDirtyDay.objects.bulk_create(
        [StandingsDirtyDay(day=day, marked_at=now) for day in days], ignore_conflicts=True
    )


class Migration(migrations.Migration):
    dependencies = [("usage", "0012_fair_play")]

    operations = [migrations.RunPython(mark_every_usage_day, migrations.RunPython.noop)]
