"""Budget alerts with a fake clock, locmem email and a fake Slack webhook on 127.0.0.1 (issue 13)."""

import json
import threading
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail

from leaderboard.alerts import budget_alerts_evaluate
from leaderboard.budgets import person_burn, team_burn
from tests.factories import usage_for
from usage.models import Notification
from usage.services.budgets import allowance_save, budget_save
from usage.services.notifications import DeliveryFailed, notification_deliver
from usage.services.standings import standings_refresh

SEPT = date(2026, 9, 1)


def _usage(person, first: date, last: date, tokens: int, **kwargs):
    day = first
    while day <= last:
        usage_for(person, day=day, tokens=tokens, **kwargs)
        day += timedelta(days=1)


def _evaluate(today: date) -> list[Notification]:
    standings_refresh(today=today)
    queued = budget_alerts_evaluate(today)
    for notification in queued:
        notification_deliver(notification.pk)
    return queued


def _sent():
    return sorted((m.to[0], m.subject) for m in mail.outbox)


@pytest.mark.django_db
def test_thresholds_fire_once_each_forecast_first_and_a_rerun_sends_nothing(org):
    ivy = org["infra_engineer"]
    allowance_save(person=ivy, tokens=1_000_000, start=SEPT)
    # 60,000 a day since 30 Aug: 30 % of September's used by the 5th, and the last 7 days' rate (across the
    # month's start) projects 1.8 M by the 30th.
    _usage(ivy, date(2026, 8, 30), date(2026, 9, 5), 60_000)
    queued = _evaluate(date(2026, 9, 5))
    assert [(n.trigger, n.recipient) for n in queued] == [
        ("forecast", ivy.email),
        ("forecast", org["platform_manager"].email),  # Infra has no manager: the nearest team above has
    ]
    assert _sent() == sorted(
        [
            (ivy.email, "Tokenboard: Ivy Infra is forecast to exceed the allowance for September 2026"),
            (
                org["platform_manager"].email,
                "Tokenboard: Ivy Infra is forecast to exceed the allowance for September 2026",
            ),
        ]
    )
    body = mail.outbox[0].body.splitlines()
    assert body[1] == "Used: 300,000 of 1,000,000 tokens (30%) in September 2026."
    assert body[2] == "Daily burn: 60,000 tokens a day (last 7 days)."
    assert body[3] == "Projected by 30 Sep 2026: 1,800,000 tokens (180%)."
    assert body[4] == "Runs out: 17 Sep 2026."
    assert body[5].endswith(f"/people/{ivy.pk}/")

    # A re-run the same day, and the next day with no change in triggers, send nothing new.
    assert _evaluate(date(2026, 9, 5)) == []
    _usage(ivy, date(2026, 9, 6), date(2026, 9, 9), 60_000)  # 540,000: 54 %
    assert [n.trigger for n in _evaluate(date(2026, 9, 9))] == ["50", "50"]
    assert _evaluate(date(2026, 9, 9)) == []
    _usage(ivy, date(2026, 9, 10), date(2026, 9, 14), 60_000)  # 840,000: 84 %
    assert [n.trigger for n in _evaluate(date(2026, 9, 14))] == ["80", "80"]
    _usage(ivy, date(2026, 9, 15), date(2026, 9, 17), 60_000)  # 1,020,000: 102 %
    assert [n.trigger for n in _evaluate(date(2026, 9, 17))] == ["100", "100"]
    assert mail.outbox[-1].body.splitlines()[4] == "Limit reached."
    assert _evaluate(date(2026, 9, 18)) == []
    assert len(mail.outbox) == 8
    assert Notification.objects.filter(status="sent").count() == 8


@pytest.mark.django_db
def test_thresholds_crossed_together_send_only_the_highest_and_never_the_lower_later(org):
    paul = org["product_engineer"]
    allowance_save(person=paul, usd="10.00", start=SEPT)
    _usage(paul, SEPT, date(2026, 9, 30), 1000, cost_usd=Decimal("0.30"))  # $9.00 by the 30th: 90 %
    queued = _evaluate(date(2026, 9, 30))
    assert {n.trigger for n in queued} == {"80"}
    assert set(Notification.objects.filter(trigger="50").values_list("status", flat=True)) == {"superseded"}
    assert len(mail.outbox) == 2  # Paul and Prue Manager
    assert _evaluate(date(2026, 9, 30)) == []


@pytest.mark.django_db
def test_team_defaults_are_inherited_and_a_person_override_wins(org):
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    allowance_save(team=org["engineering"], tokens=500, start=SEPT)
    allowance_save(team=org["platform"], tokens=300, start=SEPT)
    allowance_save(person=paul, tokens=100, start=SEPT)
    _usage(ivy, SEPT, SEPT, 150)
    _usage(paul, SEPT, SEPT, 150)
    standings_refresh(today=SEPT)
    assert person_burn(ivy.pk, SEPT)[1].tokens_limit == 300  # Infra → Platform's default
    assert person_burn(paul.pk, SEPT)[1].tokens_limit == 100  # own override over Engineering's
    assert person_burn(org["product_manager"].pk, SEPT)[1].tokens_limit == 500


class _FakeSlack(BaseHTTPRequestHandler):
    received: list = []
    answer = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).answer)
        self.end_headers()
        self.wfile.write(b"ok" if type(self).answer == 200 else b"server_error")

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_slack(monkeypatch):
    """A webhook server on 127.0.0.1; slack-sdk is pointed at it (https refused for real webhooks: tests only)."""
    server = HTTPServer(("127.0.0.1", 0), _FakeSlack)
    _FakeSlack.received, _FakeSlack.answer = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(
        "usage.services.notifications.budget_webhook",
        lambda budget: f"http://127.0.0.1:{server.server_port}/services/T0/B0/x",
    )
    yield _FakeSlack
    server.shutdown()


@pytest.mark.django_db
def test_team_budget_alerts_go_to_managers_and_the_teams_slack_once(org, fake_slack):
    platform = org["platform"]
    budget_save(
        team=platform,
        tokens=1000,
        thresholds=[50, 100],
        slack_webhook_url="https://hooks.slack.com/services/T0/B0/secret",
        start=SEPT,
    )
    _usage(org["infra_engineer"], SEPT, date(2026, 9, 2), 300)  # 600 of 1,000 in the Platform subtree
    standings_refresh(today=date(2026, 9, 2))
    assert team_burn(platform.budgets.get(), date(2026, 9, 2)).used_tokens == 600
    queued = budget_alerts_evaluate(date(2026, 9, 2))
    assert sorted((n.channel, n.trigger) for n in queued) == [
        ("email", "50"),
        ("email", "forecast"),
        ("slack", "50"),
        ("slack", "forecast"),
    ]
    for notification in queued:
        notification_deliver(notification.pk)
    assert [m["text"].splitlines()[0] for m in fake_slack.received] == [
        "Platform has used 50% of the budget for September 2026.",
        "Platform is forecast to exceed the budget for September 2026.",
    ]
    assert {m.to[0] for m in mail.outbox} == {org["platform_manager"].email}
    assert budget_alerts_evaluate(date(2026, 9, 2)) == []


@pytest.mark.django_db
def test_a_failing_webhook_is_recorded_retried_and_never_sent_twice(org, fake_slack):
    budget_save(team=org["platform"], tokens=100, slack_webhook_url="https://hooks.slack.com/services/x", start=SEPT)
    _usage(org["infra_engineer"], SEPT, SEPT, 60)
    standings_refresh(today=SEPT)
    fake_slack.answer = 500
    slack = next(n for n in budget_alerts_evaluate(SEPT) if n.channel == "slack" and n.trigger == "50")
    with pytest.raises(DeliveryFailed, match="Slack answered 500"):
        notification_deliver(slack.pk)
    slack.refresh_from_db()
    assert (slack.status, slack.attempts) == ("failed", 1)
    assert "500" in slack.last_error
    fake_slack.answer = 200
    assert notification_deliver(slack.pk) is True  # the retry
    assert notification_deliver(slack.pk) is False  # a redelivered task sends nothing
    slack.refresh_from_db()
    assert (slack.status, slack.attempts, slack.last_error) == ("sent", 2, "")
    assert len(fake_slack.received) == 2  # the refused attempt and the retry: nothing after


@pytest.mark.django_db
def test_a_failing_mail_server_is_recorded_and_does_not_block_the_refresh(org, settings, sent_tasks):
    settings.EMAIL_BACKEND = "tests.leaderboard.test_budget_alerts.BrokenMailBackend"
    ivy = org["infra_engineer"]
    allowance_save(person=ivy, tokens=100, start=SEPT)
    _usage(ivy, SEPT, SEPT, 90)
    assert standings_refresh(today=SEPT) is not None
    queued = budget_alerts_evaluate(SEPT)
    with pytest.raises(DeliveryFailed, match="mail server down"):
        notification_deliver(queued[0].pk)
    assert Notification.objects.get(pk=queued[0].pk).status == "failed"


class BrokenMailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


@pytest.mark.django_db
def test_the_refresh_task_queues_the_alert_evaluation(sent_tasks, django_capture_on_commit_callbacks):
    from usage.tasks import refresh_standings

    with django_capture_on_commit_callbacks(execute=True):
        refresh_standings.apply()
    getattr(sent_tasks, "leaderboard.evaluate_budget_alerts").assert_called_once_with()


@pytest.mark.django_db
def test_the_delivery_task_retries_a_failing_send_with_backoff_then_leaves_it_failed(org, settings, monkeypatch):
    from usage import tasks
    from usage.services.notifications import retry_delay

    settings.EMAIL_BACKEND = "tests.leaderboard.test_budget_alerts.BrokenMailBackend"
    ivy = org["infra_engineer"]
    allowance_save(person=ivy, tokens=100, start=SEPT)
    _usage(ivy, SEPT, SEPT, 90)
    standings_refresh(today=SEPT)
    notification = budget_alerts_evaluate(SEPT)[0]
    countdowns = []
    original_retry = tasks.deliver_notification.retry
    monkeypatch.setattr(
        tasks.deliver_notification,
        "retry",
        lambda *args, countdown=None, **kwargs: countdowns.append(countdown) or original_retry(*args, **kwargs),
    )
    result = tasks.deliver_notification.apply(args=[notification.pk])
    assert result.failed()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", 6)  # the first try and 5 retries
    assert "mail server down" in notification.last_error
    # 1, 2, 4, 8, 16 minutes; the sixth call gives up (max_retries=5) and the error stays on the log.
    assert countdowns == [retry_delay(n) for n in range(6)] == [60, 120, 240, 480, 960, 960]
