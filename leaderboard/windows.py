"""Time windows and ranking query parameters, shared by the pages and the API.

Windows are inclusive ranges of the org's calendar days: day, ISO week (Monday start), calendar month,
quarter, year, all time, rolling 7/30/90 days ending on the anchor date, and a custom start–end range.
The previous window (for rank change) has the same size and ends the day before this one starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from django.http import QueryDict
from django.utils import timezone

PERIODS = ("day", "week", "month", "quarter", "year", "all", "7d", "30d", "90d", "custom")
PERIOD_LABELS = {
    "day": "Day",
    "week": "Week",
    "month": "Month",
    "quarter": "Quarter",
    "year": "Year",
    "all": "All time",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "custom": "Custom range",
}
METRICS = (
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "requests",
    "cost_usd",
    "active_days",
)
METRIC_LABELS = {
    "total_tokens": "Total tokens",
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cache_read_tokens": "Cache read tokens",
    "cache_write_tokens": "Cache write tokens",
    "requests": "Requests",
    "cost_usd": "Cost (USD)",
    "active_days": "Active days",
}
ALL_TIME_START = date(2015, 1, 1)
# Dates far from today only make window arithmetic overflow; nobody ranks usage from year 1.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)
MAX_ID = 2**63 - 1  # ids are 64-bit; a larger number would fail in the database, not as a bad parameter


class QueryError(ValueError):
    """A bad query parameter: names the parameter and what is allowed."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def org_today() -> date:
    return timezone.localdate()


@dataclass(frozen=True)
class Window:
    period: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Window | None:
        if self.period == "all":
            return None
        if self.period in ("month", "quarter", "year"):
            return window_for(self.period, self.start - timedelta(days=1))
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    @property
    def label(self) -> str:
        if self.period == "day":
            return self.start.strftime("%a %d %b %Y")
        if self.period == "month":
            return self.start.strftime("%B %Y")
        if self.period == "year":
            return str(self.start.year)
        if self.period == "quarter":
            return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year}"
        if self.period == "all":
            return "All time"
        return f"{self.start:%d %b %Y} – {self.end:%d %b %Y}"


def window_for(period: str, anchor: date, start: date | None = None, end: date | None = None) -> Window:
    if period == "day":
        return Window(period, anchor, anchor)
    if period == "week":
        monday = anchor - timedelta(days=anchor.weekday())
        return Window(period, monday, monday + timedelta(days=6))
    if period == "month":
        first = anchor.replace(day=1)
        next_first = (first + timedelta(days=32)).replace(day=1)
        return Window(period, first, next_first - timedelta(days=1))
    if period == "quarter":
        first = anchor.replace(month=(anchor.month - 1) // 3 * 3 + 1, day=1)
        next_first = (first + timedelta(days=93)).replace(day=1)
        return Window(period, first, next_first - timedelta(days=1))
    if period == "year":
        return Window(period, date(anchor.year, 1, 1), date(anchor.year, 12, 31))
    if period == "all":
        return Window(period, ALL_TIME_START, anchor)
    if period in ("7d", "30d", "90d"):
        size = int(period[:-1])
        return Window(period, anchor - timedelta(days=size - 1), anchor)
    if period == "custom":
        if start is None or end is None:
            raise QueryError("start", "period=custom needs both start and end (YYYY-MM-DD)")
        if end < start:
            raise QueryError("end", f"end ({end}) is before start ({start})")
        if (end - start).days > 366 * 20:
            raise QueryError("start", "custom ranges are limited to 20 years")
        return Window(period, start, end)
    raise QueryError("period", f"unknown period {period!r}; allowed: {', '.join(PERIODS)}")


@dataclass(frozen=True)
class RankingQuery:
    window: Window
    metric: str = "total_tokens"
    provider: str = ""
    model: str = ""
    team_id: int | None = None
    search: str = ""
    anchor: date | None = None

    def as_params(self, **overrides) -> dict[str, str]:
        """The whole state as URL parameters (pages keep it in the URL)."""
        params = {"period": self.window.period, "metric": self.metric}
        if self.window.period == "custom":
            params.update(start=self.window.start.isoformat(), end=self.window.end.isoformat())
        elif self.anchor and self.anchor != org_today():
            params["date"] = self.anchor.isoformat()
        for key, value in (
            ("provider", self.provider),
            ("model", self.model),
            ("team", self.team_id),
            ("q", self.search),
        ):
            if value:
                params[key] = str(value)
        params.update({k: str(v) for k, v in overrides.items() if v is not None})
        return {k: v for k, v in params.items() if v != ""}


def _date_param(params: QueryDict, name: str) -> date | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise QueryError(name, f"{raw!r} is not a date; use YYYY-MM-DD") from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise QueryError(name, f"{raw!r} is out of range; use a date from {EARLIEST_DATE} to {LATEST_DATE}")
    return value


def ranking_query_from(params: QueryDict, *, default_period: str = "month") -> RankingQuery:
    """Validate the shared ranking parameters; raises QueryError naming the bad one."""
    period = params.get("period", "").strip() or default_period
    if period not in PERIODS:
        raise QueryError("period", f"unknown period {period!r}; allowed: {', '.join(PERIODS)}")
    metric = params.get("metric", "").strip() or "total_tokens"
    if metric not in METRICS:
        raise QueryError("metric", f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    anchor = _date_param(params, "date") or org_today()
    start, end = _date_param(params, "start"), _date_param(params, "end")
    if period != "custom" and (start or end):
        period = "custom"
    window = window_for(period, anchor, start, end)
    team_raw = params.get("team", "").strip()
    team_id = None
    if team_raw:
        if not (team_raw.isascii() and team_raw.isdigit()) or int(team_raw) > MAX_ID:
            raise QueryError("team", f"{team_raw!r} is not a team id")
        team_id = int(team_raw)
    return RankingQuery(
        window=window,
        metric=metric,
        provider=params.get("provider", "").strip(),
        model=params.get("model", "").strip(),
        team_id=team_id,
        search=params.get("q", "").strip()[:100],
        anchor=anchor,
    )
