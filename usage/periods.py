"""The org's calendar: time windows as inclusive ranges of the org's days (TIME_ZONE).

Windows are day, ISO week (Monday start), calendar month, quarter, year, all time, rolling 7/30/90 days ending
on the anchor date, and a custom start–end range. The previous window (for rank change) has the same size and
ends the day before this one starts; for a month, quarter or year it is the previous calendar period.

Both sides use it: the write side to know which standings a changed day touches, the read side to turn the
pages' and API's parameters into windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

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
ALL_TIME_START = date(2015, 1, 1)
# Dates far from today only make window arithmetic overflow; nobody ranks usage from year 1.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)


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
    if period in ROLLING_PERIODS:
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


def comparison_window(window: Window, today: date | None = None) -> Window | None:
    """What a window's rank change compares against. A week, month, quarter or year still in progress is
    compared with the same number of days at the start of the previous one (1–3 Dec with 1–3 Nov), not the whole
    previous period: one day of December against all of November would swing every rank. Any other window is
    compared with Window.previous()."""
    previous = window.previous()
    today = today or org_today()
    if (
        previous is None
        or window.period not in ("week", "month", "quarter", "year")
        or not window.start <= today < window.end
    ):
        return previous
    elapsed = (today - window.start).days
    return Window("custom", previous.start, min(previous.start + timedelta(days=elapsed), previous.end))


CALENDAR_PERIODS = ("day", "week", "month", "quarter", "year")
ROLLING_PERIODS = ("7d", "30d", "90d")


def calendar_windows_containing(day: date) -> list[Window]:
    """The day, week, month, quarter and year that contain the day."""
    return [window_for(period, day) for period in CALENDAR_PERIODS]


def current_windows(today: date) -> list[Window]:
    """The windows a board shows for today, with the windows their rank changes compare against: the previous
    window, and for a week, month, quarter or year in progress the same days of the previous one (a custom
    window, comparison_window)."""
    windows = [window_for(period, today) for period in (*CALENDAR_PERIODS, *ROLLING_PERIODS, "all")]
    compared = [w.previous() for w in windows] + [comparison_window(w, today) for w in windows]
    return list(dict.fromkeys(w for w in windows + compared if w is not None))


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _whole_month_starts_in(monday: date, end: date) -> bool:
    """Whether a month that ends by `end` starts within the week from monday (then the month is used)."""
    first = _next_month(monday)
    return first <= monday + timedelta(days=6) and _next_month(first) - timedelta(days=1) <= end


PIECE_SIZES = ("day", "week", "month", "year")


def cover(start: date, end: date, *, largest: str = "year") -> Iterator[Window]:
    """Disjoint calendar windows (years, months, weeks, days — none larger than `largest`) whose union is
    exactly start..end, in date order: a long range is summed from a few stored periods, not from every day."""
    allowed = PIECE_SIZES[: PIECE_SIZES.index(largest) + 1]
    day = start
    while day <= end:
        if "year" in allowed and day.month == 1 and day.day == 1 and date(day.year, 12, 31) <= end:
            yield window_for("year", day)
            day = date(day.year + 1, 1, 1)
        elif "month" in allowed and day.day == 1 and _next_month(day) - timedelta(days=1) <= end:
            yield window_for("month", day)
            day = _next_month(day)
        elif (
            "week" in allowed
            and day.weekday() == 0
            and day + timedelta(days=6) <= end
            and not ("month" in allowed and _whole_month_starts_in(day, end))
        ):
            yield window_for("week", day)
            day += timedelta(days=7)
        else:
            yield window_for("day", day)
            day += timedelta(days=1)


def day_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges, so a year of days is one range, not 365 parameters."""
    ranges: list[list[date]] = []
    for day in sorted(days):
        if ranges and day - ranges[-1][1] == timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(first, last) for first, last in ranges]
