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
    send_on_commit("usage.process_import", batch_id)


def standings_refresh_on_commit() -> None:
    """Refreshes coalesce (usage.services.standings), so queuing one per committed change is cheap."""
    send_on_commit("usage.refresh_standings")
