"""The database cache's table, created by `migrate` itself: a deployment without Redis that runs Django's usual
`manage.py migrate` gets a working cache (titles, throttling) without also knowing about `createcachetable`."""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    # createcachetable creates the table of every DatabaseCache in settings.CACHES and skips existing ones; with
    # Redis configured there is none, so it does nothing.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("usage", "0013_fair_play_mark_usage")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop, elidable=True)]
