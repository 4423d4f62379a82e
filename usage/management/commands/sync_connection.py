from datetime import date

from django.core.management.base import BaseCommand, CommandError

from usage.models import ProviderConnection
from usage.services.connections import QueueUnavailable, connection_run, connection_sync_queue


def since_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Pull a provider connection's usage now: from --since (a backfill) or the last success, minus the "
        "restatement window. Queues the pull for the worker, or (--wait) runs it here."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the connection's name (see the Connections page)")
        parser.add_argument("--since", type=since_date, help="first day to pull (YYYY-MM-DD, org time zone)")
        parser.add_argument("--wait", action="store_true", help="pull in the foreground (needs no worker)")

    def handle(self, *args, name, since, wait, **options):
        connection = ProviderConnection.objects.filter(name=name).first()
        if connection is None:
            known = ", ".join(ProviderConnection.objects.order_by("name").values_list("name", flat=True)) or "none"
            raise CommandError(f"no connection named {name!r} (known: {known})")
        if not wait:
            try:
                connection_sync_queue(connection, since=since)
            except QueueUnavailable as error:
                raise CommandError(f"{connection.name!r}: {error} (or run with --wait)") from None
            self.stdout.write(f"queued a pull of {connection.name!r}" + (f" from {since}" if since else ""))
            return
        result = connection_run(connection.pk, since=since, manual=True)
        if result is None:
            raise CommandError(f"{connection.name!r}: skipping: previous run still going")
        window = f"{result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC"
        if not result.ok:
            raise CommandError(f"{connection.name!r} ({window}): {result.message}")
        self.stdout.write(f"{connection.name!r} ({window}): {result.message}")
