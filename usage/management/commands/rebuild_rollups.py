from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from usage.services.standings import standings_refresh


class Command(BaseCommand):
    help = (
        "Rebuild every derived table (daily rollups, standings) from the usage records, for upgrades and repairs. "
        "The boards keep serving the last standings until it finishes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.TOKENBOARD_REBUILD_WORKERS,
            help="PostgreSQL connections that build at once, one per database core "
            f"(default {settings.TOKENBOARD_REBUILD_WORKERS}: TOKENBOARD_REBUILD_WORKERS); SQLite builds on one",
        )

    def handle(self, *args, workers, **options):
        if workers < 1:
            raise CommandError(f"--workers must be at least 1, not {workers}")
        result = standings_refresh(all_days=True, workers=workers)
        if result is None:
            raise CommandError("another standings refresh is running; try again when it has finished")
        self.stdout.write(
            f"rebuilt rollups and standings: {result.days} days, {result.windows} windows in {result.seconds:.1f} s"
        )
        if result.workers > 1:
            self.stdout.write(f"built by {result.workers} connections at once; each step's time is theirs summed:")
        for phase, seconds in result.phases.items():
            self.stdout.write(f"  {phase}: {seconds:.1f} s")
