"""Periodic tasks, declared in one place. `manage.py setup_periodic_tasks` writes them into
django-celery-beat's tables (idempotent), where admins can then see and edit them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicTaskSpec:
    name: str
    task: str
    cron: str  # "minute hour day_of_month month_of_year day_of_week"
    description: str


PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    PeriodicTaskSpec(
        name="scan drop folder",
        task="usage.scan_inbox",
        cron="* * * * *",
        description="Import settled files from TOKENBOARD_INBOX into done/ or failed/.",
    ),
    PeriodicTaskSpec(
        name="sweep imports",
        task="usage.sweep_imports",
        cron="* * * * *",
        description="Queue again imports whose worker died (no heartbeat) and send imports stored while the broker "
        "was down.",
    ),
    PeriodicTaskSpec(
        name="move rolling windows at midnight",
        task="usage.refresh_standings",
        cron="1 0 * * *",
        description="The rolling 7/30/90-day and all-time standings start the org's new day (and any refresh a "
        "failure left undone is retried).",
    ),
    PeriodicTaskSpec(
        name="purge old audit entries",
        task="usage.purge_audit",
        cron="30 3 * * *",
        description="Delete audit trail entries older than TOKENBOARD_AUDIT_RETENTION_DAYS (0 keeps them).",
    ),
    PeriodicTaskSpec(
        name="weekly digest",
        task="leaderboard.send_weekly_digest",
        cron="0 9 * * 1",
        description="Monday 09:00 in the org's time zone: each person's weekly digest email (issue 13).",
    ),
]
