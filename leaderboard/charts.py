"""Plotly figures built on the server (plotly.graph_objects only) for the person and team pages.

Each chart is a `Chart`: the figure as plain JSON for `json_script`, drawn by static/js/charts.js with the
locally served plotly.js, plus a one-paragraph text summary for people who do not see the chart. Colours are
deterministic per model and provider, so "claude-sonnet-4-5" has the same colour on every page and chart.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from datetime import date

import plotly.graph_objects as go

from .series import Series

# Okabe–Ito-based, readable on light and dark backgrounds.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#8C6BB1",
    "#B8A000",
    "#1B9E9E",
    "#E7298A",
    "#7F7F7F",
    "#66A61E",
)
PROVIDER_COLOURS = {
    "openai": "#10A37F",
    "anthropic": "#D97757",
    "cursor": "#6E56CF",
    "google": "#4285F4",
    "aws_bedrock": "#FF9900",
    "azure_openai": "#0078D4",
    "github_copilot": "#8957E5",
    "other": "#7F7F7F",
}


def colour_for(name: str, palette: dict[str, str] | None = None) -> str:
    """The colour of a model or provider: fixed for known providers; for a model, its slot in the org's
    palette (model_palette()) or, for a model not in it, a stable hash into PALETTE."""
    if name in PROVIDER_COLOURS:
        return PROVIDER_COLOURS[name]
    if palette and name in palette:
        return palette[name]
    digest = hashlib.sha256(name.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


_PALETTE_CACHE: dict = {}


def model_palette() -> dict[str, str]:
    """Every model with usage, in name order, gets the next PALETTE colour: the same colour on every page and
    chart, and no two models share one until there are more models than colours. The model list changes only
    when an import finishes, so each process keeps it per data_as_of()."""
    from usage.models import DailyRollup
    from usage.services.imports import data_as_of
    from usage.services.standings import standings_status

    # The rollups' names (canonical where the catalog maps a spelling), current as of the last refresh.
    as_of = (data_as_of(), standings_status().refreshed_at)
    if as_of[0] is not None and _PALETTE_CACHE.get("as_of") == as_of:
        return _PALETTE_CACHE["value"]
    names = sorted({m or "(unknown)" for m in DailyRollup.objects.values_list("model", flat=True).distinct()})
    palette = {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}
    _PALETTE_CACHE.update(as_of=as_of, value=palette)
    return palette


@dataclass(frozen=True)
class Chart:
    """What a template needs to draw one chart: a DOM id, the figure JSON and a text summary."""

    id: str
    title: str
    figure: dict
    summary: str


def _layout(**overrides) -> dict:
    layout = {
        "autosize": True,
        "height": 300,
        "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified",
        "font": {"family": "system-ui, sans-serif", "size": 12},
    }
    layout.update(overrides)
    return layout


def _as_json(fig: go.Figure) -> dict:
    # plotly's own encoder turns dates and Decimals into JSON; json_script then escapes it for HTML.
    return json.loads(fig.to_json())


def plotly_text(name: str) -> str:
    """A model or provider name as Plotly text. Plotly reads a subset of HTML in legends, labels and hover
    boxes (so `<a href=…>` in a model name became a clickable link); escaped, it shows the name as written."""
    return html.escape(name, quote=False)


def _short(number: float) -> str:
    for size, unit in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if abs(number) >= size:
            return f"{number / size:.1f}".removesuffix(".0") + unit
    return f"{number:,.0f}"


def daily_usage_chart(
    series: Series, *, chart_id: str, stacked_by_label: str, palette: dict[str, str] | None = None
) -> Chart:
    """Daily tokens stacked by model (or provider), every day of the window on the x axis."""
    fig = go.Figure()
    for group, _tokens, _share in sorted(series.group_shares(), key=lambda item: item[0]):
        per_day = series.by_group[group]
        fig.add_trace(
            go.Bar(
                x=[d.isoformat() for d in series.days],
                y=[per_day[d] for d in series.days],
                name=plotly_text(group),
                marker={"color": colour_for(group, palette)},
                hovertemplate="%{y:,.0f} tokens<extra>" + plotly_text(group).replace("%", "%%") + "</extra>",
            )
        )
    fig.update_layout(**_layout(barmode="stack", yaxis={"title": {"text": "tokens"}, "rangemode": "tozero"}))
    active = series.active_days
    if active:
        busiest = max(series.days, key=lambda d: series.daily[d].total_tokens)
        top = series.group_shares()[0]
        summary = (
            f"{_short(series.totals.total_tokens)} tokens over {len(active)} active day"
            f"{'' if len(active) == 1 else 's'} from {series.window.start:%d %b} to {series.window.end:%d %b %Y}; "
            f"busiest day {busiest:%d %b} ({_short(series.daily[busiest].total_tokens)}); "
            f"most used {stacked_by_label} {top[0]} ({top[2]:.0%})."
        )
    else:
        summary = "No usage in this window."
    return Chart(chart_id, f"Daily tokens by {stacked_by_label}", _as_json(fig), summary)


def mix_chart(
    shares: list[tuple[str, int, float]], *, chart_id: str, label: str, palette: dict[str, str] | None = None
) -> Chart:
    """Share of tokens by model or provider, as a donut."""
    fig = go.Figure(
        go.Pie(
            labels=[plotly_text(name) for name, _n, _s in shares],
            values=[n for _name, n, _s in shares],
            hole=0.55,
            sort=False,
            marker={"colors": [colour_for(name, palette) for name, _n, _s in shares]},
            texttemplate="%{percent:.0%}",
            textposition="inside",
            insidetextorientation="horizontal",
            hovertemplate="%{label}: %{value:,.0f} tokens (%{percent})<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout(
            height=260,
            hovermode=False,
            margin={"l": 10, "r": 10, "t": 10, "b": 10},
            uniformtext={"minsize": 10, "mode": "hide"},  # no unreadable labels on thin slices
        )
    )
    parts = [f"{name} {share:.0%}" for name, _n, share in shares[:5]]
    summary = f"{label.capitalize()} mix: " + ", ".join(parts) + "." if parts else "No usage in this window."
    return Chart(chart_id, f"Share of tokens by {label}", _as_json(fig), summary)


def rank_history_chart(points: list[tuple[date, str, int | None]], *, chart_id: str, metric_label: str) -> Chart:
    """Rank in each of the last windows of the same kind (1 at the top); gaps where unranked."""
    ranked = [(label, rank) for _start, label, rank in points]
    while len(ranked) > 2 and ranked[0][1] is None:  # windows before any usage only stretch the axis
        ranked.pop(0)
    worst = max((rank for _label, rank in ranked if rank is not None), default=1)
    fig = go.Figure(
        go.Scatter(
            x=[label for label, _r in ranked],
            y=[rank for _label, rank in ranked],
            mode="lines+markers",
            line={"color": PALETTE[0], "width": 2},
            connectgaps=False,
            hovertemplate="%{x}: #%{y}<extra></extra>",
            name="rank",
        )
    )
    fig.update_layout(
        **_layout(
            height=240,
            hovermode="closest",
            showlegend=False,
            # Rank 1 at the top; whole ranks only.
            yaxis={
                "range": [worst + 0.5, 0.5],
                "title": {"text": "rank"},
                "tickformat": "d",
                "dtick": max(1, worst // 6),
            },
            xaxis={"type": "category"},
        )
    )
    known = [(label, rank) for label, rank in ranked if rank is not None]
    if known:
        best = min(known, key=lambda item: item[1])
        summary = (
            f"Rank by {metric_label.lower()} over the last {len(ranked)} windows: now "
            f"{'#' + str(ranked[-1][1]) if ranked[-1][1] else 'unranked'}, best #{best[1]} ({best[0]})."
        )
    else:
        summary = "Not ranked in any of these windows."
    return Chart(chart_id, "Rank history", _as_json(fig), summary)
