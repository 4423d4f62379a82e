"""Usage over time for one person or one team subtree: what the charts and the /usage/ API endpoints show."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from .selectors import Totals, _sums, rollups_in_window
from .windows import Window

GROUPINGS = ("model", "model_family", "provider")


@dataclass
class Series:
    """Daily totals over a window, overall and split by model, model family or provider (every day present, zeros included)."""

    window: Window
    group_by: str
    days: list[date]
    daily: dict[date, Totals] = field(default_factory=dict)
    by_group: dict[str, dict[date, int]] = field(default_factory=dict)  # group → day → total tokens
    totals: Totals = field(default_factory=Totals)

    @property
    def active_days(self) -> list[date]:
        return [d for d in self.days if self.daily[d].total_tokens > 0]

    def longest_streak(self) -> int:
        best = run = 0
        for day in self.days:
            run = run + 1 if self.daily[day].total_tokens > 0 else 0
            best = max(best, run)
        return best

    def group_shares(self) -> list[tuple[str, int, float]]:
        """(group, tokens, share of all) sorted by tokens, largest first."""
        sums = {g: sum(per_day.values()) for g, per_day in self.by_group.items()}
        grand = sum(sums.values())
        return sorted(((g, n, n / grand if grand else 0.0) for g, n in sums.items()), key=lambda item: -item[1])


def _window_days(window: Window) -> list[date]:
    return [window.start + timedelta(days=i) for i in range(window.days)]


def usage_series(
    window: Window,
    *,
    person_id: int | None = None,
    team_id: int | None = None,
    group_by: str = "model",
    provider: str = "",
    model: str = "",
    model_family: str = "",
) -> Series:
    """Series for a person (their identities) or a team subtree (days each member was in it, and its shared
    identities)."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {GROUPINGS}")
    records = rollups_in_window(window, provider=provider, model=model, model_family=model_family, team_id=team_id)
    if person_id is not None:
        records = records.filter(person_id=person_id)
    elif team_id is None:
        raise ValueError("give a person_id or a team_id")
    series = Series(window=window, group_by=group_by, days=_window_days(window))
    series.daily = {day: Totals() for day in series.days}
    rows = records.values("day", group_by).annotate(**_sums())
    by_group: dict[str, dict[date, int]] = defaultdict(lambda: dict.fromkeys(series.days, 0))
    for row in rows:
        series.daily[row["day"]].add(Totals.of({**row, "active_days": 0}))
        by_group[row[group_by] or "(unknown)"][row["day"]] += row["total_tokens"]
    for day in series.days:
        series.daily[day].active_days = 1 if series.daily[day].total_tokens > 0 else 0
        series.totals.add(series.daily[day])
    series.by_group = dict(by_group)
    return series
