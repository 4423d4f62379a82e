# A person's figures in a window are the sum of their team-member rows (one row, unless they moved team within the
# window), so PersonStanding repeated them: 36.5M rows at 85,000 people × 365 days, written by every rebuild and
# refresh (docs/PERFORMANCE.md). The member rows and each window's people count are already in place: nothing to
# move.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('usage', '0028_usage_hour_key_as_primary_key'),
    ]

    operations = [
        migrations.DeleteModel(name='PersonStanding'),
    ]
