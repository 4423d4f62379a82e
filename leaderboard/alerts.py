"""Budget alerts (issue 13): who crossed a threshold of their allowance or their team's budget, or is forecast
to pass 100 % before the period ends, and the notifications that tells them and their managers.

Evaluated after each standings refresh (task leaderboard.evaluate_budget_alerts) and whenever called with a
`today` (tests pass a fake clock). Each (recipient, subject, threshold, period) is recorded once
(usage.services.notifications), so evaluating again sends nothing new. Thresholds crossed together send one
message, for the highest; the lower ones are recorded as superseded so they never fire later in the period.
Slack gets team budget alerts only: a person's allowance is theirs and their managers' to see (usage.access).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import transaction

from usage.models import Membership, Notification, NotificationStatus, Person, Team, TeamBudget
from usage.periods import org_today, window_for
from usage.services.budgets import budget_webhook, budgets_on
from usage.services.notifications import notification_queue_on_commit, notification_record
from usage.services.standings import team_ancestors

from .budgets import Burn, person_burns, team_burn

logger = logging.getLogger(__name__)

FORECAST = "forecast"


def tokens_text(value: int) -> str:
    return f"{value:,}"


def usd_text(value) -> str:
    return f"${value:,.2f}"


def percent_text(value: float) -> str:
    return f"{value:.0f}%"


def page_url(path: str) -> str:
    return f"{settings.TOKENBOARD_BASE_URL}{path}"


def triggers_of(burn: Burn, thresholds) -> list[str]:
    """Thresholds (as text) the use has reached, lowest first, then "forecast" if the projection passes 100 %
    while the use has not, with days left in the period."""
    used = burn.used_percent
    crossed = [str(t) for t in sorted(thresholds) if used >= t]
    if used < 100 <= burn.projected_percent and burn.days_left > 0:
        crossed.append(FORECAST)
    return crossed


def burn_lines(burn: Burn) -> list[str]:
    """The figures of a burn, one line each (alerts, digests and the pages say the same)."""
    used, projected = [], []
    if burn.tokens_limit is not None:
        used.append(f"{tokens_text(burn.used_tokens)} of {tokens_text(burn.tokens_limit)} tokens")
        projected.append(f"{tokens_text(burn.projected_tokens)} tokens")
    if burn.usd_limit is not None:
        used.append(f"{usd_text(burn.used_usd)} of {usd_text(burn.usd_limit)}")
        projected.append(usd_text(burn.projected_usd))
    rate = (
        f"{tokens_text(round(burn.rate_tokens))} tokens a day"
        if burn.tokens_limit is not None
        else f"{usd_text(burn.rate_usd)} a day"
    )
    run_out = burn.run_out_date
    if burn.reached:
        runs_out = f"Limit reached{f' on {run_out:%d %b %Y}' if run_out else ''}."
    elif run_out:
        runs_out = f"Runs out: {run_out:%d %b %Y}."
    else:
        runs_out = "Runs out: not this period at the current rate."
    return [
        f"Used: {'; '.join(used)} ({percent_text(burn.used_percent)}) in {burn.period.label}.",
        f"Daily burn: {rate} (last 7 days).",
        f"Projected by {burn.period.end:%d %b %Y}: {'; '.join(projected)} ({percent_text(burn.projected_percent)}).",
        runs_out,
    ]


def team_managers() -> dict[int, list[Person]]:
    """Each team's direct managers, read once per evaluation."""
    people = {}
    for team_id, person in (
        (row.team_id, row.person) for row in Team.managers.through.objects.select_related("person")
    ):
        people.setdefault(team_id, []).append(person)
    return people


def managers_of(
    team_id: int | None, ancestors: dict[int, list[int]], managers: dict[int, list[Person]]
) -> list[Person]:
    """The managers of the team, or of the nearest team above it that has managers."""
    for candidate in ancestors.get(team_id, []) if team_id is not None else []:
        if managers.get(candidate):
            return sorted(managers[candidate], key=lambda p: p.pk)
    return []


@dataclass
class Alert:
    subject_kind: str
    subject_id: int
    name: str
    burn: Burn
    link: str

    def title(self, trigger: str) -> str:
        what = "allowance" if self.subject_kind == "person" else "budget"
        if trigger == FORECAST:
            return f"Tokenboard: {self.name} is forecast to exceed the {what} for {self.burn.period.label}"
        return f"Tokenboard: {self.name} has used {trigger}% of the {what} for {self.burn.period.label}"

    def reason(self, trigger: str) -> str:
        used = percent_text(self.burn.used_percent)
        if trigger == FORECAST:
            return f"forecast {percent_text(self.burn.projected_percent)} by {self.burn.period.end} (used {used})"
        return f"crossed {trigger}% (used {used})"

    def text(self, trigger: str) -> str:
        return "\n".join(
            [self.title(trigger).removeprefix("Tokenboard: ") + ".", *burn_lines(self.burn), f"Details: {self.link}"]
        )


def _recorded(today: date) -> set[tuple]:
    """Natural keys of the alerts already recorded for the periods containing `today`, read once, so a
    re-evaluation looks nothing up per person (notification_record still settles a concurrent run)."""
    starts = {window_for(period, today).start for period in ("month", "quarter")}
    return set(
        Notification.objects.filter(period_start__in=starts)
        .exclude(subject_kind="digest")
        .values_list("channel", "recipient", "subject_kind", "subject_id", "trigger", "period_start")
    )


def _notify(
    alert: Alert, triggers: list[str], recipients: list[tuple[str, str, Person | None]], recorded: set[tuple]
) -> list:
    """Record the alert for each recipient ("email" or "slack", address, person) once per trigger; the highest
    new threshold (and a new forecast) is queued, lower thresholds crossed with it are recorded as superseded."""
    thresholds = [t for t in triggers if t != FORECAST]
    queued = []
    for channel, address, person in recipients:
        for trigger in triggers:
            key = (channel, address, alert.subject_kind, alert.subject_id, trigger, alert.burn.period.start)
            if key in recorded:
                continue
            superseded = trigger in thresholds and trigger != thresholds[-1]
            notification, created = notification_record(
                channel=channel,
                recipient=address,
                subject_kind=alert.subject_kind,
                subject_id=alert.subject_id,
                trigger=trigger,
                period_start=alert.burn.period.start,
                person=person,
                title=alert.title(trigger),
                reason=alert.reason(trigger),
                body_text=alert.text(trigger),
                status=NotificationStatus.SUPERSEDED if superseded else NotificationStatus.PENDING,
            )
            if created and not superseded:
                notification_queue_on_commit(notification)
                queued.append(notification)
    return queued


def budget_alerts_evaluate(today: date | None = None) -> list:
    """Record and queue every alert due on `today` (default: the org's today); returns the queued ones."""
    today = today or org_today()
    ancestors, managers, recorded = team_ancestors(), team_managers(), _recorded(today)
    queued = []
    burns = person_burns(today)
    people = Person.objects.in_bulk(list(burns))
    teams = dict(
        Membership.objects.filter(person_id__in=list(burns), end__isnull=True).values_list("person_id", "team_id")
    )
    for person_id, (_allowance, burn) in burns.items():
        person = people.get(person_id)
        triggers = triggers_of(burn, settings.TOKENBOARD_ALLOWANCE_THRESHOLDS)
        if person is None or not person.active or not triggers:
            continue
        recipients = {person.email: person}
        for manager in managers_of(teams.get(person_id), ancestors, managers):
            recipients.setdefault(manager.email, manager)
        alert = Alert("person", person.pk, person.display_name, burn, page_url(f"/people/{person.pk}/"))
        with transaction.atomic():
            queued += _notify(
                alert, triggers, [("email", email, p) for email, p in recipients.items() if email], recorded
            )
    for budget in budgets_on(today):
        queued += _team_alerts(budget, today, managers_of(budget.team_id, ancestors, managers), recorded)
    return queued


def _team_alerts(budget: TeamBudget, today: date, managers: list[Person], recorded: set[tuple]) -> list:
    burn = team_burn(budget, today)
    triggers = triggers_of(burn, budget.thresholds or settings.TOKENBOARD_ALLOWANCE_THRESHOLDS)
    if not triggers:
        return []
    recipients: list[tuple[str, str, Person | None]] = [("email", m.email, m) for m in managers if m.email]
    if budget.encrypted_slack_webhook:
        try:
            budget_webhook(budget)
            recipients.append(("slack", f"slack:{budget.team.slug}", None))
        except Exception:
            logger.exception("the Slack webhook of team %s cannot be decrypted; alerting by email only", budget.team_id)
    alert = Alert("team", budget.team_id, budget.team.name, burn, page_url(f"/teams/{budget.team_id}/budget/"))
    with transaction.atomic():
        return _notify(alert, triggers, recipients, recorded)
