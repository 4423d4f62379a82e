# A person's figures in a window are the sum of their team-member rows (one row, unless they moved team within the
# window), so PersonStanding repeated them: 36.5M rows at 85,000 people × 365 days, written by every rebuild and
# refresh (docs/PERFORMANCE.md). The member rows and each window's people count are already in place: nothing to
# move.

from django.db import migrations


def rebuild_requested(apps, schema_editor):
    """Going back before this migration brings the person rows' table back empty, which the code of then adds
    refreshes' changes to: the next refresh rebuilds every standing, those before it serving meanwhile."""
    StandingWindow = apps.get_model("usage", "StandingWindow")
    StandingsState = apps.get_model("usage", "StandingsState")
    if StandingWindow.objects.exists():
        StandingsState.objects.update_or_create(pk=1, defaults={"rebuild_requested": True})


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0028_usage_hour_key_as_primary_key'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, rebuild_requested),  # undone last: after the table is back
        migrations.DeleteModel(name='PersonStanding'),
    ]
