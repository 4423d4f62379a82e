from django.core.management.base import BaseCommand, CommandError

from usage.services.standings import standings_refresh


class Command(BaseCommand):
    help = (
        "Rebuild every derived table (daily rollups, standings) from the usage records, for upgrades and repairs. "
        "The boards keep serving the last standings until it finishes."
    )

    def handle(self, *args, **options):
        result = standings_refresh(all_days=True)
        if result is None:
            raise CommandError("another standings refresh is running; try again when it has finished")
        self.stdout.write(
            f"rebuilt rollups and standings: {result.days} days, {result.windows} windows in {result.seconds:.1f} s"
        )
        for phase, seconds in result.phases.items():
            self.stdout.write(f"  {phase}: {seconds:.1f} s")
