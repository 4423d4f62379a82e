# The identity foreign keys of UsageRecord and UsageHour lose their own index: each is covered by a composite
# index that starts with identity (usage_identity_day; usage_hour_unique), and every index is written for every
# record and hour an import stores. Only the indexes are dropped (by their deterministic names): an AlterField
# would also drop and re-add, so re-validate, each foreign key over the whole table.

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "usage_usagerecord": "usage_usagerecord_identity_id_449d4db9",
    "usage_usagehour": "usage_usagehour_identity_id_509867aa",
}


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0017_standings_generation"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{index}" ON "{table}" ("identity_id")',
                )
                for table, index in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="usagehour",
                    name="identity",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="usage_hours",
                        to="usage.identity",
                    ),
                ),
                migrations.AlterField(
                    model_name="usagerecord",
                    name="identity",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="usage_records",
                        to="usage.identity",
                    ),
                ),
            ],
        ),
    ]
