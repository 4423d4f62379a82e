"""Tasks of the read side: budget alerts and titles after a standings refresh, and the weekly digest."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="leaderboard.evaluate_budget_alerts", acks_late=True, ignore_result=True)
def evaluate_budget_alerts() -> None:
    """Queued after every standings refresh: record and queue the alerts now due (each is sent once)."""
    from .alerts import budget_alerts_evaluate

    queued = budget_alerts_evaluate()
    if queued:
        logger.info("budget alerts: %d queued", len(queued))


@shared_task(name="leaderboard.warm_titles", acks_late=True, ignore_result=True)
def warm_titles() -> None:
    """Queued after every standings refresh: cache the current windows' titles and movers, the models the palette
    and filter lists are built from, the teams' member counts and the boards on the metrics whose order is not
    kept, before pages ask for them (the first three read millions of rows at 85,000 people)."""
    from .insights import metric_orders_warm, titles_warm
    from .selectors import current_member_counts, rollup_models

    titles_warm()
    rollup_models()
    current_member_counts()
    metric_orders_warm()


@shared_task(name="leaderboard.send_weekly_digest", acks_late=True, ignore_result=True)
def send_weekly_digest() -> None:
    """Beat: Monday 09:00 in the org's time zone. Records each person's digest once and queues its delivery."""
    from .digest import digests_send

    digests_send()
