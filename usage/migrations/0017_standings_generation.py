import uuid

from django.db import migrations, models


def name_the_last_refresh(apps, schema_editor):
    """Standings refreshed before the field existed get their generation now: what the cache keeps of them is
    kept from the start, not only after the next refresh."""
    StandingsState = apps.get_model("usage", "StandingsState")
    StandingsState.objects.filter(refreshed_at__isnull=False).update(generation=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0016_rollup_day_model_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="standingsstate",
            name="generation",
            field=models.UUIDField(
                blank=True,
                help_text="New at every refresh: a cached answer of the standings keys on it (unlike a count or a "
                "time, no other standings ever had it: not a restored backup's, nor another database's sharing "
                "the cache).",
                null=True,
            ),
        ),
        migrations.RunPython(name_the_last_refresh, migrations.RunPython.noop),
    ]
