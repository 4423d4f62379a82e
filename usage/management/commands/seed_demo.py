import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from usage import queue
from usage.demo import demo_budgets, demo_exports
from usage.models import Allowance, ImportSource, ImportStatus, Person, Team, TeamBudget
from usage.periods import org_today
from usage.services.imports import import_batch_create, import_batch_process, import_summary
from usage.services.org import org_import
from usage.services.standings import standings_refresh

DEMO_PASSWORD = "tokenboard"


class Command(BaseCommand):
    help = "Build the demo org by writing provider export files and importing them through the real pipeline."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing if people already exist")

    def handle(self, *args, if_empty, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("seed_demo refuses to run with the production settings")
        if if_empty and Person.objects.exists():
            if not (Allowance.objects.exists() or TeamBudget.objects.exists()):  # a demo from before issue 13
                self._demo_budgets()
            self.stdout.write("demo data already present; skipping (run seed_demo without --if-empty to refresh)")
            return
        with tempfile.TemporaryDirectory() as folder:
            org_path, exports = demo_exports(Path(folder))
            result = org_import(text=org_path.read_text(), file_name=org_path.name)
            self.stdout.write(f"org: {result.people_created} people created, {result.teams_created} teams created")
            self._demo_logins()
            for path in exports:
                with path.open("rb") as handle:
                    batch = import_batch_create(file=handle, name=path.name, source=ImportSource.COMMAND, queue=False)
                batch = import_batch_process(batch.pk)
                self.stdout.write(import_summary(batch))
                if batch.status != ImportStatus.SUCCEEDED:
                    raise CommandError(f"demo import failed: {batch.error_summary}")
        refreshed = standings_refresh()
        if refreshed is not None:
            self.stdout.write(
                f"standings: {refreshed.days} days, {refreshed.windows} windows, {refreshed.seconds:.1f} s"
            )
        self._demo_budgets()
        self.stdout.write("demo logins (password 'tokenboard'): admin, manager, engineer")
        self.stdout.write("weekly digest preview: python manage.py send_digest --dry-run")

    def _demo_budgets(self) -> None:
        manager_team = Team.objects.filter(managers__user__username="manager").order_by("pk").first()
        for line in demo_budgets(org_today(), manager_team.pk if manager_team else None):
            self.stdout.write(f"budgets: {line}")
        queue.send_on_commit("leaderboard.evaluate_budget_alerts")  # the worker records and sends the alerts due

    @transaction.atomic
    def _demo_logins(self) -> None:
        users = get_user_model()
        people = list(Person.objects.order_by("pk"))
        managed_team = Team.objects.filter(parent__isnull=False, managers__isnull=False).order_by("pk").first()
        manager_person = managed_team.managers.order_by("pk").first()
        engineer_person = next(p for p in people if not p.managed_teams.exists())
        for username, person, staff in (
            ("admin", None, True),
            ("manager", manager_person, False),
            ("engineer", engineer_person, False),
        ):
            user, created = users.objects.get_or_create(
                username=username, defaults={"is_staff": staff, "is_superuser": staff}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            if person is not None and person.user_id != user.pk:
                Person.objects.filter(user=user).update(user=None)
                person.user = user
                person.save(update_fields=["user"])
