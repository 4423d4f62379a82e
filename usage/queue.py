"""Where services queue background work. Tasks import services, so services send tasks by name through here
rather than importing usage.tasks back (and tests record what would be sent by replacing `send`)."""

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def send(task_name: str, *args, **kwargs) -> None:
    """Queue a task by name now; raises what the broker raises (Redis down, queue folder missing)."""
    current_app.send_task(task_name, args=args, kwargs=kwargs)


def send_on_commit(task_name: str, *args) -> None:
    """Queue a task once the transaction commits. A broker that is down is logged, not raised: the work it
    names is stored first (an import stays queued, dirty days stay marked) and is sent again later."""

    def send_logged() -> None:
        try:
            send(task_name, *args)
        except Exception:
            logger.exception("could not queue %s%s; the stored work waits to be re-sent", task_name, args)

    transaction.on_commit(send_logged)


def import_queue_on_commit(batch_id: int) -> None:
    """Send the import once the transaction commits and record that it reached the broker: an import whose
    message could not be sent keeps dispatched_at empty, and the sweep (usage.sweep_imports) sends it once
    the broker is back."""
    from django.utils import timezone

    from usage.models import ImportBatch

    def dispatch() -> None:
        try:
            send("usage.process_import", batch_id)
        except Exception:
            logger.exception("could not queue import %s; it is stored and the sweep sends it later", batch_id)
            return
        ImportBatch.objects.filter(pk=batch_id).update(dispatched_at=timezone.now())

    transaction.on_commit(dispatch)


def standings_refresh_on_commit() -> None:
    """Refreshes coalesce (usage.services.standings), so queuing one per committed change is cheap."""
    send_on_commit("usage.refresh_standings")
