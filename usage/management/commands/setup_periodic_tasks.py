from django.conf import settings
from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from usage import queue
from usage.models import StandingsDirtyDay, StandingsState
from usage.schedules import PERIODIC_TASKS
from usage.services.connections import connection_schedules_ensure


def crontab_for(cron: str) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    return schedule


class Command(BaseCommand):
    help = "Create or update the periodic tasks declared in usage.schedules (safe to re-run)."

    def handle(self, *args, **options):
        for spec in PERIODIC_TASKS:
            task, created = PeriodicTask.objects.get_or_create(
                name=spec.name,
                defaults={"task": spec.task, "crontab": crontab_for(spec.cron), "description": spec.description},
            )
            if not created and task.task != spec.task:
                task.task = spec.task
                task.save(update_fields=["task"])
            self.stdout.write(f"{'created' if created else 'kept'} periodic task {spec.name!r} ({spec.cron})")
        for change in connection_schedules_ensure():  # one pull task per enabled provider connection
            self.stdout.write(change)
        # Usage from before an upgrade that added standings, or a rebuild an upgrade's migration asked for.
        if StandingsDirtyDay.objects.exists() or StandingsState.objects.filter(rebuild_requested=True).exists():
            queue.standings_refresh_on_commit()
            self.stdout.write("queued a refresh of the standings for usage or changes not in them yet")
