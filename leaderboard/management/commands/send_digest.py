from datetime import date

from django.core.management.base import BaseCommand, CommandError

from leaderboard.digest import digest_recipients, digests_send


class Command(BaseCommand):
    help = (
        "Render and send the weekly digest now (last complete week). Each person gets it once per week: a re-run "
        "sends nothing new. --dry-run prints the digests without sending or recording them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print the digests; send and record nothing.")
        parser.add_argument("--to", metavar="EMAIL", help="Only the digest of the person with this email.")
        parser.add_argument("--date", help="Act as if today were this day (YYYY-MM-DD); default: the org's today.")

    def handle(self, *args, dry_run, to, date: str | None = None, **options):
        today = None
        if date:
            try:
                today = _parse_date(date)
            except ValueError:
                raise CommandError(f"--date: {date!r} is not a date; use YYYY-MM-DD") from None
        if to and not digest_recipients(to).exists():
            raise CommandError(f"--to: no active person with email {to!r} who receives the digest")
        runs = digests_send(today, to=to, dry_run=dry_run, now=True)
        for run in runs:
            if dry_run:
                self.stdout.write(f"To: {run.person.email}\nSubject: {run.digest.subject}\n\n{run.digest.text()}\n")
                self.stdout.write("-" * 72)
            else:
                self.stdout.write(f"{run.person.email}: {run.outcome}")
        self.stdout.write(f"{len(runs)} digest(s) {'rendered (dry run)' if dry_run else 'processed'}.")


def _parse_date(raw: str) -> date:
    return date.fromisoformat(raw.strip())
