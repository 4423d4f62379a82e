"""Ranking query parameters, shared by the pages and the API: the window (usage.periods), the metric and the
filters, validated in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.http import QueryDict

from usage.figures import METRIC_LABELS, METRICS  # noqa: F401  (re-exported)
from usage.periods import (  # noqa: F401  (re-exported: the read side names windows from here)
    ALL_TIME_START,
    EARLIEST_DATE,
    LATEST_DATE,
    PERIOD_LABELS,
    PERIODS,
    ROLLING_PERIODS,
    QueryError,
    Window,
    comparison_window,
    org_today,
    window_for,
)
from usage.services.catalog import model_canonical

# Ranks people by the share of their own allowance used (leaderboard.budgets): not a stored figure, so it is
# offered on the people board and its API only.
ALLOWANCE_METRIC = "allowance_used"
ALLOWANCE_METRIC_LABEL = "Allowance used (%)"
MAX_ID = 2**63 - 1  # ids are 64-bit; a larger number would fail in the database, not as a bad parameter


@dataclass(frozen=True)
class RankingQuery:
    window: Window
    metric: str = "total_tokens"
    provider: str = ""
    model: str = ""
    model_family: str = ""
    team_id: int | None = None
    search: str = ""
    anchor: date | None = None

    @property
    def by_model(self) -> bool:
        """A model or model family filter: answered from the daily rollups, not the kept standings."""
        return bool(self.model or self.model_family)

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
            ("model_family", self.model_family),
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


def _text_param(params: QueryDict, name: str) -> str:
    """A free-text filter. Control characters (a NUL above all: PostgreSQL refuses it in a string, which made
    `?model=%00` a 500) are no provider's or model's name, so they are a bad parameter."""
    raw = params.get(name, "").strip()
    if any(ord(char) < 32 or ord(char) == 127 for char in raw):
        raise QueryError(name, f"{raw!r} contains a control character")
    return raw


def ranking_query_from(params: QueryDict, *, default_period: str = "month") -> RankingQuery:
    """Validate the shared ranking parameters; raises QueryError naming the bad one."""
    period = params.get("period", "").strip() or default_period
    if period not in PERIODS:
        raise QueryError("period", f"unknown period {period!r}; allowed: {', '.join(PERIODS)}")
    metric = params.get("metric", "").strip() or "total_tokens"
    if metric not in METRICS and metric != ALLOWANCE_METRIC:
        raise QueryError("metric", f"unknown metric {metric!r}; allowed: {', '.join((*METRICS, ALLOWANCE_METRIC))}")
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
        provider=_text_param(params, "provider"),
        # Any spelling a source uses names its canonical model, so links with an exported name keep working.
        model=model_canonical(_text_param(params, "model")),
        model_family=_text_param(params, "model_family"),
        team_id=team_id,
        search=_text_param(params, "q")[:100],
        anchor=anchor,
    )
