"""Burn and forecast of allowances and team budgets, and the "allowance used (%)" ranking (issue 13).

Usage comes from the read models, like every other figure: a period's use and the recent trend are
`selectors.person_totals` over kept windows (people), a team's from its subtree's totals of the same windows;
the burn-down chart's days are daily rollups. The current period is the calendar month or quarter (the
allowance's) containing `today`.

Forecast: the daily burn rate is the mean over the last 7 days up to today, across the period's start (so the
first days of a month are forecast from the person's recent habit, not from one or two days); the
projected end-of-period total is what is used plus that rate for each day left. The band spans the projections
at the lower and the higher of that recent rate and the period-to-date rate. The run-out date is the day the
projection reaches the allowance, if that happens within the period (or the day it was reached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import Coalesce

from usage.access import Viewer, can_see_allowance, person_display_name, team_subtree_ids
from usage.models import Allowance, DailyRollup, Membership, Person, TeamBudget
from usage.periods import Window, window_for
from usage.services.budgets import allowances_on

from .selectors import Totals, current_teams, person_totals

TREND_DAYS = 7
CENT = Decimal("0.01")


@dataclass
class Burn:
    """One allowance or budget in its current period: what is used, the trend, and where it is heading."""

    period: Window
    today: date
    tokens_limit: int | None
    usd_limit: Decimal | None
    used_tokens: int
    used_usd: Decimal
    rate_tokens: float  # per day, recent trend
    rate_usd: float
    low_rate_tokens: float
    high_rate_tokens: float
    low_rate_usd: float
    high_rate_usd: float
    daily: list[tuple[date, int, Decimal]] = field(default_factory=list)  # filled for charts only

    @property
    def days_left(self) -> int:
        return max(0, (self.period.end - self.today).days)

    @property
    def remaining_tokens(self) -> int | None:
        return None if self.tokens_limit is None else self.tokens_limit - self.used_tokens

    @property
    def remaining_usd(self) -> Decimal | None:
        return None if self.usd_limit is None else self.usd_limit - self.used_usd

    @property
    def projected_tokens(self) -> int:
        return self.used_tokens + round(self.rate_tokens * self.days_left)

    @property
    def projected_usd(self) -> Decimal:
        return (self.used_usd + Decimal(str(self.rate_usd * self.days_left))).quantize(CENT)

    @property
    def band_tokens(self) -> tuple[int, int]:
        return (
            self.used_tokens + round(self.low_rate_tokens * self.days_left),
            self.used_tokens + round(self.high_rate_tokens * self.days_left),
        )

    @property
    def band_usd(self) -> tuple[Decimal, Decimal]:
        return tuple(  # type: ignore[return-value]
            (self.used_usd + Decimal(str(rate * self.days_left))).quantize(CENT)
            for rate in (self.low_rate_usd, self.high_rate_usd)
        )

    def _percent(self, tokens: int, usd: Decimal) -> float | None:
        """Of the limits set, the highest share used: the one that runs out first decides."""
        shares = []
        if self.tokens_limit is not None:
            shares.append(_share(tokens, self.tokens_limit))
        if self.usd_limit is not None:
            shares.append(_share(usd, self.usd_limit))
        return max(shares) if shares else None

    @property
    def used_percent(self) -> float:
        return self._percent(self.used_tokens, self.used_usd)

    @property
    def projected_percent(self) -> float:
        return self._percent(self.projected_tokens, self.projected_usd)

    @property
    def unit(self) -> str:
        """What the chart and the run-out date follow: tokens when the allowance has them, else USD."""
        return "tokens" if self.tokens_limit is not None else "usd"

    @property
    def reached(self) -> bool:
        return self.used_percent >= 100

    @property
    def run_out_date(self) -> date | None:
        """The day the limit will be reached at the current rate, if within the period; once reached, the day it
        was (known when the daily figures were read, else None)."""
        days = []
        for unit, limit, used, rate in (
            ("tokens", self.tokens_limit, self.used_tokens, self.rate_tokens),
            ("usd", self.usd_limit, self.used_usd, self.rate_usd),
        ):
            if limit is None:
                continue
            left = float(limit) - float(used)
            if left <= 0:
                return self._reached_on(limit, unit)
            if rate > 0:
                days.append(math.ceil(left / rate))
        if not days:
            return None
        day = self.today + timedelta(days=min(days))
        return day if day <= self.period.end else None

    def _reached_on(self, limit, unit: str) -> date | None:
        total = 0
        for day, tokens, usd in self.daily:
            total += tokens if unit == "tokens" else usd
            if total >= limit:
                return day
        return None


def _share(used, limit) -> float:
    if not limit:
        return 100.0 if used > 0 else 0.0
    return float(Decimal(used) * 100 / Decimal(limit))


def _rate(totals: Totals, days: int) -> tuple[float, float]:
    return (totals.total_tokens / days, float(totals.cost_usd) / days) if days else (0.0, 0.0)


def _trend_window(today: date) -> Window:
    """The last TREND_DAYS days up to today, whatever the period: the recent habit."""
    return Window("custom", today - timedelta(days=TREND_DAYS - 1), today)


def burn_of(limit, period: Window, today: date, used: Totals, recent: Totals) -> Burn:
    """The burn of one allowance or budget from its period's totals up to today and its recent days' totals."""
    elapsed = (min(today, period.end) - period.start).days + 1
    recent_days = TREND_DAYS
    rate_tokens, rate_usd = _rate(recent, recent_days)
    to_date_tokens, to_date_usd = _rate(used, elapsed)
    return Burn(
        period=period,
        today=today,
        tokens_limit=limit.tokens,
        usd_limit=limit.usd,
        used_tokens=used.total_tokens,
        used_usd=used.cost_usd.quantize(CENT),
        rate_tokens=rate_tokens,
        rate_usd=rate_usd,
        low_rate_tokens=min(rate_tokens, to_date_tokens),
        high_rate_tokens=max(rate_tokens, to_date_tokens),
        low_rate_usd=min(rate_usd, to_date_usd),
        high_rate_usd=max(rate_usd, to_date_usd),
    )


def _daily(rows, period: Window, today: date) -> list[tuple[date, int, Decimal]]:
    sums = {
        r["day"]: (r["tokens"], r["usd"])
        for r in rows.filter(day__gte=period.start, day__lte=min(today, period.end))
        .values("day")
        .annotate(tokens=Coalesce(Sum("total_tokens"), 0), usd=Coalesce(Sum("cost_usd"), Decimal(0)))
    }
    days = (min(today, period.end) - period.start).days + 1
    result = []
    for offset in range(days):
        day = period.start + timedelta(days=offset)
        tokens, usd = sums.get(day, (0, Decimal(0)))
        result.append((day, int(tokens), Decimal(usd)))
    return result


# --- People ----------------------------------------------------------------------------------------------


def person_burns(today: date, person_ids=None) -> dict[int, tuple[Allowance, Burn]]:
    """Every person with an allowance on `today` (or these people), with their burn: one aggregate read of the
    recent days and one per period (month, quarter)."""
    allowances = allowances_on(today, person_ids)
    burns = {}
    recent = person_totals(_trend_window(today)) if allowances else {}  # the same for every period
    for period_name in {a.period for a in allowances.values()}:
        period = window_for(period_name, today)
        used = person_totals(period)
        for person_id, allowance in allowances.items():
            if allowance.period == period_name:
                burns[person_id] = (
                    allowance,
                    burn_of(allowance, period, today, used.get(person_id, Totals()), recent.get(person_id, Totals())),
                )
    return burns


def person_burn(person_id: int, today: date, *, with_daily: bool = False) -> tuple[Allowance, Burn] | None:
    found = person_burns(today, [person_id]).get(person_id)
    if found and with_daily:
        found[1].daily = _daily(DailyRollup.objects.filter(person_id=person_id), found[1].period, today)
    return found


# --- Teams -----------------------------------------------------------------------------------------------


def team_burn(budget: TeamBudget, today: date, *, with_daily: bool = False) -> Burn:
    """A team budget's burn: usage of the days each person was in the team's subtree."""
    period = window_for(budget.period, today)

    def subtree_total(window: Window) -> Totals:
        total = Totals()
        for figures in person_totals(window, team_id=budget.team_id).values():
            total.add(figures)
        return total

    burn = burn_of(budget, period, today, subtree_total(period), subtree_total(_trend_window(today)))
    if with_daily:
        rows = DailyRollup.objects.filter(team_id__in=team_subtree_ids([budget.team_id]), person__isnull=False)
        burn.daily = _daily(rows, period, today)
    return burn


# --- The "allowance used (%)" ranking -------------------------------------------------------------------------

ALLOWANCE_METRIC = "allowance_used"


@dataclass
class AllowanceStanding:
    rank: int | None  # None: no allowance, listed apart
    person_id: int
    display_name: str
    email: str | None
    team_id: int | None
    team_name: str
    period: Window | None
    allowance: Allowance | None
    burn: Burn | None

    @property
    def used_percent(self) -> float | None:
        """Rounded to 0.1 %, as the page, the CSV and the API show it."""
        return round(self.burn.used_percent, 1) if self.burn else None


def allowance_ranking(
    today: date, viewer: Viewer, *, team_id: int | None = None, search: str = ""
) -> tuple[list[AllowanceStanding], list[AllowanceStanding]]:
    """(ranked, without an allowance): people with an allowance ranked by the share of it used in their current
    period (ties share a rank, then by name); people with usage this month but no allowance, by name. With a
    team, only people currently in its subtree; a search narrows the lists after ranking (ranks are kept)."""
    burns = person_burns(today)
    month_users = set(person_totals(window_for("month", today)))
    candidates = set(burns) | month_users
    if team_id is not None:
        in_team = set(
            Membership.objects.filter(team_id__in=team_subtree_ids([team_id]), end__isnull=True).values_list(
                "person_id", flat=True
            )
        )
        candidates &= in_team
    people = {
        p["id"]: p
        for p in Person.objects.filter(pk__in=candidates).values(
            "id", "display_name", "email", "pseudonym", "show_name"
        )
    }
    teams = current_teams(list(people))

    def standing(person_id: int, rank: int | None) -> AllowanceStanding:
        person = people[person_id]
        allowance, burn = burns.get(person_id, (None, None))
        detail = can_see_allowance(viewer, person_id)
        team = teams.get(person_id, (None, ""))
        return AllowanceStanding(
            rank=rank,
            person_id=person_id,
            display_name=person_display_name(
                viewer, person_id, person["display_name"], person["pseudonym"], person["show_name"]
            ),
            email=person["email"] if detail else None,
            team_id=team[0],
            team_name=team[1],
            period=burn.period if burn else None,
            allowance=allowance,
            burn=burn,
        )

    with_allowance = sorted(
        (pid for pid in people if pid in burns),
        key=lambda pid: (-burns[pid][1].used_percent, people[pid]["display_name"], pid),
    )
    ranked, previous, rank = [], None, 0
    for position, pid in enumerate(with_allowance, start=1):
        value = burns[pid][1].used_percent
        rank = rank if value == previous else position
        previous = value
        ranked.append(standing(pid, rank))
    apart = [
        standing(pid, None)
        for pid in sorted((p for p in people if p not in burns), key=lambda p: (people[p]["display_name"], p))
    ]
    if search:
        needle = search.casefold()
        ranked = [s for s in ranked if needle in s.display_name.casefold()]
        apart = [s for s in apart if needle in s.display_name.casefold()]
    return ranked, apart


def allowance_ranking_day(window: Window, today: date) -> date:
    """The day whose allowance period the board ranks: the window's last day, or today if that is later."""
    return min(window.end, today)
