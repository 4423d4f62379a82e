import logging

from celery import shared_task
from django.conf import settings

from usage import queue
from usage.models import ImportBatch
from usage.services.imports import import_batch_process
from usage.services.standings import standings_refresh

logger = logging.getLogger(__name__)


@shared_task(name="usage.process_import", bind=True, acks_late=True, ignore_result=True)
def process_import(self, batch_id: int) -> None:
    """Parse and store one import. Idempotent: claims the batch by task id (a redelivered message resumes)."""
    if not ImportBatch.objects.filter(pk=batch_id).exists():
        logger.warning("import %s no longer exists; skipping", batch_id)
        return
    import_batch_process(batch_id, claim_id=self.request.id)


@shared_task(name="usage.sweep_imports", ignore_result=True)
def sweep_imports() -> None:
    """Every minute: requeue imports whose worker died (no heartbeat) and send imports stored while the broker
    was down, so neither waits for an operator's `import_usage --requeue`."""
    from usage.services.imports import imports_sweep

    released, sent = imports_sweep()
    if released or sent:
        logger.info("import sweep: %d stuck import(s) queued again, %d sent to the broker", released, sent)


@shared_task(name="usage.scan_inbox", ignore_result=True)
def scan_inbox() -> None:
    """Import settled files from the drop folder (TOKENBOARD_INBOX). Safe to overlap: files are claimed by
    renaming them into processing/, and each is imported synchronously so it lands in done/ or failed/."""
    from usage.services.inbox import inbox_scan

    scan = inbox_scan()
    if scan.done or scan.failed:
        logger.info(
            "drop folder: %d imported, %d failed, %d still being written",
            len(scan.done),
            len(scan.failed),
            len(scan.waiting),
        )


@shared_task(name="usage.pull_provider_usage", bind=True, acks_late=True, ignore_result=True)
def pull_provider_usage(self, connection_id: int, since: str | None = None, manual: bool = False) -> None:
    """Pull one provider connection's window (beat: one PeriodicTask per enabled connection). Safe to run
    twice: a per-connection lock skips a run while the previous one is still going, and a re-pull upserts."""
    from datetime import date

    from usage.services.connections import connection_run

    connection_run(
        connection_id, since=date.fromisoformat(since) if since else None, run_id=self.request.id, manual=manual
    )


@shared_task(name="usage.refresh_standings", bind=True, acks_late=True, ignore_result=True, max_retries=120)
def refresh_standings(self) -> None:
    """Bring rollups and standings up to date with the committed usage (queued on every commit that changes
    usage, and by beat after the org's midnight). Runs coalesce: one refreshes everything dirty under a lock;
    a run that finds the lock taken retries shortly, so a day marked during the running refresh is not left. A
    rebuild a migration asked for runs on TOKENBOARD_REBUILD_WORKERS connections, as rebuild_rollups does."""
    if standings_refresh(workers=settings.TOKENBOARD_REBUILD_WORKERS) is None:
        raise self.retry(countdown=5)
    # Budget alerts and titles read the fresh standings; in their own tasks, so neither can fail a refresh.
    queue.send_on_commit("leaderboard.evaluate_budget_alerts")
    queue.send_on_commit("leaderboard.warm_titles")


@shared_task(name="usage.deliver_notification", bind=True, acks_late=True, ignore_result=True, max_retries=5)
def deliver_notification(self, notification_id: int) -> None:
    """Send one recorded alert or digest. Idempotent (usage.services.notifications claims it before sending); a
    failed send is recorded on the notification log and retried with backoff."""
    from usage.services.notifications import DeliveryFailed, notification_deliver, retry_delay

    try:
        notification_deliver(notification_id)
    except DeliveryFailed as error:
        raise self.retry(countdown=retry_delay(self.request.retries), exc=error) from error


@shared_task(name="usage.purge_audit", ignore_result=True)
def purge_audit() -> None:
    """Delete audit entries older than TOKENBOARD_AUDIT_RETENTION_DAYS (beat: daily)."""
    from usage.services.audit import audit_purge

    deleted = audit_purge()
    if deleted:
        logger.info("audit trail: %d entries past the retention period deleted", deleted)
