from django.db import migrations

# Rows a refresh adds changes to in place: PersonStanding, TeamMemberStanding, TeamStanding.
UPDATED_IN_PLACE = ("PersonStanding", "TeamMemberStanding", "TeamStanding")


def _tables_alter(apps, schema_editor, change: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in UPDATED_IN_PLACE:
        table = schema_editor.connection.ops.quote_name(apps.get_model("usage", name)._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} {change}")


def room_to_update(apps, schema_editor):
    """Leave a tenth of each page free, so a refresh's UPDATE writes the row's new version on its own page and
    leaves the indexes alone (a HOT update; none of the figures is indexed). Full pages moved every updated row
    and added it to every index: 1.6 s for 28,590 member rows of one import at 85,000 people
    (docs/PERFORMANCE.md). Pages written from now on keep the room; rebuild_rollups rewrites the rest."""
    _tables_alter(apps, schema_editor, "SET (fillfactor = 90)")


def full_pages(apps, schema_editor):
    _tables_alter(apps, schema_editor, "RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0025_standings_requests_reported_days"),
    ]

    operations = [migrations.RunPython(room_to_update, full_pages)]
