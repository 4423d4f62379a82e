"""The overview page's story: the org's usage over the window against the window it is compared with, who is
active, the top models and providers, how fresh each source is, and — for the viewer with a person — their
month so far and a year of active days.

Figures count ranked usage (identities assigned to a person), as the rankings do, so the overview's totals
are the sums of the people ranking's rows (and of the API's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Max, Sum

from usage.models import DailyRollup, ProviderConnection

from .selectors import rollups_in_window
from .windows import RankingQuery, Window, comparison_window, org_today


@dataclass
class OrgDay:
    tokens: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)


@dataclass
class OrgUsage:
    """Ranked usage per day over a window, with its totals and the number of people active in it."""

    window: Window
    days: dict[date, OrgDay]
    active_people: int

    @property
    def tokens(self) -> int:
        return sum(day.tokens for day in self.days.values())

    @property
    def cost_usd(self) -> Decimal:
        return sum((day.cost_usd for day in self.days.values()), Decimal(0))


def org_usage(window: Window, *, provider: str = "", model: str = "", model_family: str = "") -> OrgUsage:
    """Ranked usage per day of the window (every day present, zeros included): one grouped query, and one
    count of distinct people."""
    records = rollups_in_window(window, provider=provider, model=model, model_family=model_family).filter(
        person__isnull=False
    )
    days = {window.start + timedelta(days=i): OrgDay() for i in range(window.days)}
    for row in records.values("day").annotate(tokens=Sum("total_tokens"), cost=Sum("cost_usd")):
        days[row["day"]] = OrgDay(row["tokens"] or 0, row["cost"] or Decimal(0))
    active = records.aggregate(people=Count("person", distinct=True))["people"]
    return OrgUsage(window, days, active)


def change(current, previous) -> float | None:
    """Relative change from previous to current (0.25 = +25%); None when there is nothing to compare with."""
    if not previous:
        return None
    return float((current - previous) / previous)


@dataclass
class Comparison:
    current: OrgUsage
    previous: OrgUsage | None

    @property
    def tokens_change(self) -> float | None:
        return change(self.current.tokens, self.previous.tokens) if self.previous else None

    @property
    def cost_change(self) -> float | None:
        return change(self.current.cost_usd, self.previous.cost_usd) if self.previous else None

    @property
    def people_change(self) -> float | None:
        return change(self.current.active_people, self.previous.active_people) if self.previous else None


def org_comparison(query: RankingQuery) -> Comparison:
    """The window's org usage and that of the window its rank changes compare with (comparison_window)."""
    filters = {"provider": query.provider, "model": query.model, "model_family": query.model_family}
    previous_window = comparison_window(query.window)
    return Comparison(
        current=org_usage(query.window, **filters),
        previous=org_usage(previous_window, **filters) if previous_window is not None else None,
    )


@dataclass(frozen=True)
class SourceFreshness:
    provider: str
    latest_day: date
    days_behind: int
    last_pull: object  # datetime | None: the newest successful pull of a connection to this provider


def source_freshness(today: date | None = None) -> list[SourceFreshness]:
    """Per provider with usage: the newest day with usage, how many days before today that is, and the last
    successful pull of its connections (None for providers imported from files only). Stalest first."""
    today = today or org_today()
    pulls = dict(
        ProviderConnection.objects.filter(last_success_at__isnull=False)
        .values("provider")
        .annotate(last=Max("last_success_at"))
        .values_list("provider", "last")
    )
    rows = DailyRollup.objects.values("provider").annotate(latest=Max("day")).values_list("provider", "latest")
    sources = [
        SourceFreshness(provider, latest, max((today - latest).days, 0), pulls.get(provider))
        for provider, latest in rows
    ]
    return sorted(sources, key=lambda s: (-s.days_behind, s.provider))


# --- My year of active days ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarDay:
    day: date
    tokens: int
    level: int  # 0 (none) to 4 (the busiest quarter of active days)
    column: int  # the week, 0 = the oldest
    row: int  # the weekday, 0 = Monday


def activity_calendar(person_id: int, *, today: date | None = None, weeks: int = 53) -> list[CalendarDay]:
    """A GitHub-style year of the person's days: `weeks` columns of Monday–Sunday ending with this week (no
    future days), each day's tokens and a level by quartile of their active days."""
    today = today or org_today()
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    tokens = dict(
        DailyRollup.objects.filter(person_id=person_id, day__gte=first, day__lte=today)
        .values("day")
        .annotate(tokens=Sum("total_tokens"))
        .values_list("day", "tokens")
    )
    active = sorted(n for n in tokens.values() if n > 0)
    cuts = [active[(len(active) - 1) * q // 4] for q in (1, 2, 3)] if active else []

    def level(n: int) -> int:
        return 0 if n <= 0 else 1 + sum(n > cut for cut in cuts)

    days = []
    for offset in range((today - first).days + 1):
        day = first + timedelta(days=offset)
        n = tokens.get(day, 0)
        days.append(CalendarDay(day, n, level(n), offset // 7, offset % 7))
    return days
