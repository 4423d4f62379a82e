"""Alerts and digests are recorded, then delivered (issue 13).

`notification_record` writes one Notification on its natural key (channel, recipient, subject, trigger,
period); a second call with the same key finds it and creates nothing, so a re-run never notifies twice.
`notification_deliver` claims a pending or failed notification by a conditional update (pending → sending)
before sending, so two workers or a retried task never send it twice, then marks it sent — or failed with the
error, for the task to retry with backoff (usage.tasks.deliver_notification) and the admins' notification log
to show. Email goes through Django's email backend, Slack through slack-sdk's WebhookClient.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from slack_sdk.webhook import WebhookClient

from usage import queue
from usage.models import Notification, NotificationStatus, TeamBudget
from usage.services.budgets import budget_webhook

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The mail server or webhook refused or could not be reached; the notification is marked failed."""


def notification_record(**fields) -> tuple[Notification, bool]:
    """The notification with this natural key, created if new; (notification, created)."""
    key = {name: fields.pop(name) for name in ("channel", "recipient", "subject_kind", "subject_id", "trigger")}
    key["period_start"] = fields.pop("period_start")
    existing = Notification.objects.filter(**key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return Notification.objects.create(**key, **fields), True
    except IntegrityError:  # recorded by a concurrent run between the lookup and the insert
        return Notification.objects.get(**key), False


def notification_queue_on_commit(notification: Notification) -> None:
    queue.send_on_commit("usage.deliver_notification", notification.pk)


def _send_email(notification: Notification) -> None:
    message = EmailMultiAlternatives(
        subject=notification.title,
        body=notification.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
    )
    if notification.body_html:
        message.attach_alternative(notification.body_html, "text/html")
    message.send()


def _send_slack(notification: Notification) -> None:
    budget = (
        TeamBudget.objects.filter(team_id=notification.subject_id)
        .exclude(encrypted_slack_webhook=b"")
        .order_by("-start")
        .first()
    )
    url = budget_webhook(budget) if budget else ""
    if not url:
        raise DeliveryFailed("the team has no Slack webhook any more")
    response = WebhookClient(url, timeout=10).send(text=notification.body_text)
    if response.status_code != 200:
        raise DeliveryFailed(f"Slack answered {response.status_code}: {str(response.body)[:200]}")


def notification_deliver(notification_id: int) -> bool:
    """Send one notification unless it was sent or is being sent; True if this call sent it. Raises
    DeliveryFailed (after recording the error) when sending failed, so the caller can retry."""
    claimed = Notification.objects.filter(
        Q(status=NotificationStatus.PENDING) | Q(status=NotificationStatus.FAILED), pk=notification_id
    ).update(status=NotificationStatus.SENDING, attempts=F("attempts") + 1)
    if not claimed:
        return False
    notification = Notification.objects.get(pk=notification_id)
    try:
        if notification.channel == "slack":
            _send_slack(notification)
        else:
            _send_email(notification)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"[:2000]
        logger.warning(
            "notification %s to %s failed (attempt %s): %s",
            notification.pk,
            notification.recipient,
            notification.attempts,
            reason,
        )
        Notification.objects.filter(pk=notification.pk).update(status=NotificationStatus.FAILED, last_error=reason)
        raise DeliveryFailed(reason) from error
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    return True


def retry_delay(retries: int) -> int:
    """Seconds before the next attempt: 1, 2, 4, 8, 16 minutes."""
    return 60 * 2 ** min(retries, 4)
