"""Where services queue background work. Tasks import services, so services send tasks by name through here
rather than importing usage.tasks back."""

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def send(task_name: str, *args) -> bool:
    """Queue a task now; False (logged) when the broker cannot take it, so the caller can keep it for later."""
    try:
        current_app.send_task(task_name, args=args)
    except Exception:
        logger.exception("could not queue %s%s", task_name, args)
        return False
    return True


def send_on_commit(task_name: str, *args) -> None:
    transaction.on_commit(lambda: send(task_name, *args))


def standings_refresh_on_commit() -> None:
    """Refreshes coalesce (usage.services.standings), so queuing one per committed change is cheap."""
    send_on_commit("usage.refresh_standings")
