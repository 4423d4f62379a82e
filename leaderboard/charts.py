"""Plotly figures built on the server, as plain figure data, for the person and team pages.

Each chart is a `Chart`: the figure as plain JSON for `json_script`, drawn by static/js/charts.js with the
locally served plotly.js, plus a one-paragraph text summary for people who do not see the chart. Colours are
deterministic per model family and provider, so "claude-sonnet-4-5" has the same colour on every page and chart.

Charts fit their data: a time axis runs from the window's start (or, for windows longer than a quarter, the first
day with usage) to its end or today, whichever is earlier — never into the future; more than a year of days is
drawn as weeks; a window of one day is drawn as one bar per model or provider. Figures are sent without plotly's
default template (about 6 KB each); static/js/charts.js themes them for light and dark.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import plotly.io

from usage.models import Provider
from usage.periods import org_today

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


PROVIDER_LABELS = dict(Provider.choices)

# One colour per model family; the models of a family are shades of it (family_shades). Families not listed
# get a stable hash into PALETTE.
FAMILY_COLOURS = {  # Okabe–Ito and neighbours: families of one provider get clearly different hues
    "claude-sonnet": "#D55E00",
    "claude-opus": "#8C6BB1",
    "claude-haiku": "#E69F00",
    "gpt-5": "#0072B2",
    "gpt-4.1": "#009E73",
    "gpt-4o": "#56B4E9",
    "o-series": "#1B9E9E",
    "gemini": "#CC79A7",
    "composer": "#B8A000",
}
# Until models carry a catalogued family, it is read from the name: the first pattern found names it.
_FAMILY_PATTERNS = (
    (re.compile(r"opus"), "claude-opus"),
    (re.compile(r"sonnet"), "claude-sonnet"),
    (re.compile(r"haiku"), "claude-haiku"),
    (re.compile(r"gpt-?5"), "gpt-5"),
    (re.compile(r"gpt-?4\.1"), "gpt-4.1"),
    (re.compile(r"gpt-?4o"), "gpt-4o"),
    (re.compile(r"^o[134](-|$)"), "o-series"),
    (re.compile(r"gemini"), "gemini"),
    (re.compile(r"composer"), "composer"),
)


def model_family(model: str) -> str:
    """The family of a model name ("claude-sonnet-4-5-20250929" and "Claude Sonnet 4.5" are both
    "claude-sonnet"); a name matching no known family is its own family."""
    name = model.strip().lower().replace(" ", "-")
    return next((family for pattern, family in _FAMILY_PATTERNS if pattern.search(name)), name)


def _hashed(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def _shade(colour: str, step: int) -> str:
    """The step-th shade of a colour: 0 is the colour, then alternately lighter and darker, 18% further each
    second step, so a family's models stay told apart."""
    if step == 0:
        return colour
    amount = min(0.18 * ((step + 1) // 2), 0.6)
    target = 255 if step % 2 else 0
    channels = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c + (target - c) * amount):02X}" for c in channels)


def family_shades(models, family_of=model_family) -> dict[str, str]:
    """{model: colour}: each model coloured by its family (FAMILY_COLOURS, else hashed), the family's models
    told apart by shade in name order. `family_of` is where a catalogued model family plugs in."""
    by_family: dict[str, list[str]] = {}
    for model in sorted(set(models)):
        by_family.setdefault(family_of(model), []).append(model)
    colours = {}
    for family, names in by_family.items():
        base = FAMILY_COLOURS.get(family) or _hashed(family)
        colours.update({name: _shade(base, step) for step, name in enumerate(names)})
    return colours


def colour_for(name: str, palette: dict[str, str] | None = None) -> str:
    """The colour of a provider (fixed) or a model: its entry in the org's palette (model_palette()) or, for a
    model not in it, its family's colour."""
    if name in PROVIDER_COLOURS:
        return PROVIDER_COLOURS[name]
    if palette and name in palette:
        return palette[name]
    return family_shades([name])[name]


def group_label(name: str) -> str:
    """What a chart calls a model or provider: providers by their display name, as the tables do."""
    return PROVIDER_LABELS.get(name, name)


def model_palette() -> dict[str, str]:
    """Every model with usage coloured by its catalog family (family_shades): the same colour on every page and
    chart."""
    from .selectors import rollup_models

    families = {model or "(unknown)": family for _provider, model, family in rollup_models()}
    return family_shades(families, family_of=lambda name: model_family(families.get(name) or name))


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


def _figure(data: list[dict], layout: dict) -> dict:
    """A Plotly figure as plotly.js reads it, through plotly's own encoder (dates, Decimals); json_script then
    escapes it for HTML. Built as plain data, not graph objects: validating each property took 5–15 ms a chart
    (tests/leaderboard/test_chart_figures.py validates every chart the pages render instead). No template: static/js/charts.js
    themes every figure."""
    return json.loads(plotly.io.to_json({"data": data, "layout": layout}, validate=False))


def plotly_text(name: str) -> str:
    """A model or provider name as Plotly text. Plotly reads a subset of HTML in legends, labels and hover
    boxes (so `<a href=…>` in a model name became a clickable link); escaped, it shows the name as written."""
    return html.escape(name, quote=False)


def _short(number: float) -> str:
    for size, unit in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if abs(number) >= size:
            return f"{number / size:.1f}".removesuffix(".0") + unit
    return f"{number:,.0f}"


WEEKS_BEYOND_DAYS = 366  # longer ranges are drawn a week a bar: a bar a day would be thinner than a pixel


def shown_days(series: Series, today: date | None = None) -> list[date]:
    """The days a time chart shows: the window, cut at today (no future days) and, for windows longer than a
    quarter, started at the first day with usage (an all-time window starts in 2015)."""
    last = min(series.window.end, today or org_today())
    first = series.window.start
    if series.window.days > 92:
        first = next((d for d in series.days if series.daily[d].total_tokens > 0), last)
    return [d for d in series.days if first <= d <= last]


def _at_midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def daily_usage_chart(
    series: Series,
    *,
    chart_id: str,
    stacked_by_label: str,
    palette: dict[str, str] | None = None,
    today: date | None = None,
) -> Chart:
    """Tokens stacked by model (or provider) over the shown days (shown_days): a bar a day, a bar a week
    beyond a year, and one bar per model (or provider) when a single day is shown."""
    days = shown_days(series, today)
    groups = sorted(series.by_group)
    data = []
    if len(days) == 1:
        day = days[0]
        shares = [(g, series.by_group[g][day]) for g in groups if series.by_group[g][day]]
        shares.sort(key=lambda item: -item[1])
        data.append(
            {
                "type": "bar",
                "x": [plotly_text(group_label(g)) for g, _n in shares],
                "y": [n for _g, n in shares],
                "marker": {"color": [colour_for(g, palette) for g, _n in shares]},
                "hovertemplate": "%{x}: %{y:,.0f} tokens<extra></extra>",
            }
        )
        layout = _layout(
            hovermode="closest",
            showlegend=False,
            xaxis={"type": "category", "title": {"text": f"{stacked_by_label} on {day:%a %d %b %Y}"}},
            yaxis={"title": {"text": "tokens"}, "rangemode": "tozero"},
        )
        title = f"Tokens by {stacked_by_label}"
    else:
        weekly = len(days) > WEEKS_BEYOND_DAYS
        buckets = sorted({_week_start(d) for d in days}) if weekly else days
        for group in groups:
            per_day = series.by_group[group]
            per_bucket = dict.fromkeys(buckets, 0)
            for d in days:
                per_bucket[_week_start(d) if weekly else d] += per_day[d]
            data.append(
                {
                    "type": "bar",
                    "x": [b.isoformat() for b in buckets],
                    "y": list(per_bucket.values()),
                    "name": plotly_text(group_label(group)),
                    "marker": {"color": colour_for(group, palette)},
                    "hovertemplate": "%{y:,.0f} tokens<extra>"
                    + plotly_text(group_label(group)).replace("%", "%%")
                    + "</extra>",
                }
            )
        half = timedelta(days=3.5 if weekly else 0.5)  # the range ends at the outer bars' edges
        edges = (buckets[0], buckets[-1]) if buckets else (series.window.start, series.window.end)  # all future
        layout = _layout(
            barmode="stack",
            yaxis={"title": {"text": "tokens"}, "rangemode": "tozero"},
            xaxis={
                "type": "date",
                "range": [_at_midnight(edges[0]) - half, _at_midnight(edges[1]) + half],
                "hoverformat": "week of %d %b %Y" if weekly else "%a %d %b %Y",
            },
        )
        title = f"{'Weekly' if weekly else 'Daily'} tokens by {stacked_by_label}"
    active = [d for d in days if series.daily[d].total_tokens > 0]
    if active:
        busiest = max(active, key=lambda d: series.daily[d].total_tokens)
        shown_total = sum(series.daily[d].total_tokens for d in days)
        sums = {g: sum(series.by_group[g][d] for d in days) for g in groups}
        top = max(sums, key=lambda g: (sums[g], g))
        span = f"on {days[0]:%d %b %Y}" if len(days) == 1 else f"from {days[0]:%d %b %Y} to {days[-1]:%d %b %Y}"
        summary = (
            f"{_short(shown_total)} tokens over {len(active)} active day{'' if len(active) == 1 else 's'} {span}; "
            f"busiest day {busiest:%d %b %Y} ({_short(series.daily[busiest].total_tokens)}); "
            f"most used {stacked_by_label} {group_label(top)} ({sums[top] / shown_total:.0%})."
        )
    else:
        summary = "No usage in this window."
    return Chart(chart_id, title, _figure(data, layout), summary)


def mix_chart(
    shares: list[tuple[str, int, float]], *, chart_id: str, label: str, palette: dict[str, str] | None = None
) -> Chart:
    """Share of tokens by model or provider, as a donut."""
    pie = {
        "type": "pie",
        "labels": [plotly_text(group_label(name)) for name, _n, _s in shares],
        "values": [n for _name, n, _s in shares],
        "hole": 0.55,
        "sort": False,
        "marker": {"colors": [colour_for(name, palette) for name, _n, _s in shares]},
        "texttemplate": "%{percent:.0%}",
        "textposition": "inside",
        "insidetextorientation": "horizontal",
        "hovertemplate": "%{label}: %{value:,.0f} tokens (%{percent})<extra></extra>",
    }
    layout = _layout(
        height=260,
        hovermode=False,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        uniformtext={"minsize": 10, "mode": "hide"},  # no unreadable labels on thin slices
    )
    parts = [f"{group_label(name)} {share:.0%}" for name, _n, share in shares[:5]]
    summary = f"{label.capitalize()} mix: " + ", ".join(parts) + "." if parts else "No usage in this window."
    return Chart(chart_id, f"Share of tokens by {label}", _figure([pie], layout), summary)


def rank_history_chart(
    points: list[tuple[date, str, int | None]], *, chart_id: str, metric_label: str, per: str = ""
) -> Chart:
    """Rank in each of the last windows of the same kind (1 at the top); gaps where unranked. `per` names the
    kind ("month") when it differs from the page's window (all time, rolling and custom windows), so the
    caption never reads as the page's own rank."""
    ranked = [(label, rank) for _start, label, rank in points]
    while len(ranked) > 2 and ranked[0][1] is None:  # windows before any usage only stretch the axis
        ranked.pop(0)
    worst = max((rank for _label, rank in ranked if rank is not None), default=1)
    line = {
        "type": "scatter",
        "x": [label for label, _r in ranked],
        "y": [rank for _label, rank in ranked],
        "mode": "lines+markers",
        "line": {"color": PALETTE[0], "width": 2},
        "connectgaps": False,
        "hovertemplate": "%{x}: #%{y}<extra></extra>",
        "name": "rank",
    }
    layout = _layout(
        height=240,
        hovermode="closest",
        showlegend=False,
        # Rank 1 at the top; whole ranks only.
        yaxis={"range": [worst + 0.5, 0.5], "title": {"text": "rank"}, "tickformat": "d", "dtick": max(1, worst // 6)},
        xaxis={"type": "category"},
    )
    known = [(label, rank) for label, rank in ranked if rank is not None]
    if known:
        best = min(known, key=lambda item: item[1])
        latest = f"#{ranked[-1][1]}" if ranked[-1][1] else "unranked"
        if per:
            summary = (
                f"Rank by {metric_label.lower()} in each {per} (the last {len(ranked)}): {ranked[-1][0]} "
                f"{latest}, best #{best[1]} ({best[0]})."
            )
        else:
            summary = (
                f"Rank by {metric_label.lower()} over the last {len(ranked)} windows: now {latest}, "
                f"best #{best[1]} ({best[0]})."
            )
    else:
        summary = "Not ranked in any of these windows."
    return Chart(chart_id, f"Rank per {per}" if per else "Rank history", _figure([line], layout), summary)


def trend_with_ghost(
    current: dict[date, float],
    previous: dict[date, float] | None,
    *,
    chart_id: str,
    title: str,
    unit: str,
    today: date | None = None,
) -> Chart:
    """A day's (or, beyond a year, a week's) values as bars over the shown days — to today, and from the first
    day with data for windows longer than a quarter — with the compared window as a dotted "ghost" line, its
    n-th day drawn over the current window's n-th day. `unit` is "tokens" or "USD"."""
    all_days = sorted(current)
    last = min(all_days[-1], today or org_today())
    first = all_days[0]
    if len(all_days) > 92:
        first = next((d for d in all_days if current[d] and d <= last), last)
    days = [d for d in all_days if first <= d <= last]
    offset = all_days.index(first) if days else 0
    earlier = sorted(previous) if previous else []
    ghost = [previous[earlier[offset + i]] if offset + i < len(earlier) else None for i in range(len(days))]
    weekly = len(days) > WEEKS_BEYOND_DAYS
    money = unit == "USD"

    def bucketed(values: list) -> tuple[list[str], list]:
        if not weekly:
            return [d.isoformat() for d in days], values
        sums: dict[date, float] = {}
        for d, v in zip(days, values, strict=True):
            if v is not None:
                sums[_week_start(d)] = sums.get(_week_start(d), 0) + v
        return [w.isoformat() for w in sums], list(sums.values())

    x, y = bucketed([float(current[d]) if money else current[d] for d in days])
    value_format = "$%{y:,.2f}" if money else "%{y:,.0f} tokens"
    data = [
        {
            "type": "bar",
            "x": x,
            "y": y,
            "name": f"{title} (this window)",
            "marker": {"color": PALETTE[0]},
            "hovertemplate": value_format,
        }
    ]
    if previous:
        gx, gy = bucketed([float(v) if money and v is not None else v for v in ghost])
        data.append(
            {
                "type": "scatter",
                "x": gx,
                "y": gy,
                "name": "compared window",
                "mode": "lines",
                "line": {"color": "#7F7F7F", "dash": "dot", "width": 2},
                "connectgaps": False,
                "hovertemplate": value_format,
            }
        )
    half = timedelta(days=3.5 if weekly else 0.5)
    axis_days = [date.fromisoformat(v) for v in x] or [first]
    layout = _layout(
        height=260,
        yaxis={"title": {"text": unit}, "rangemode": "tozero", "tickprefix": "$" if money else ""},
        xaxis={
            "type": "date",
            "range": [_at_midnight(axis_days[0]) - half, _at_midnight(axis_days[-1]) + half],
            "hoverformat": "week of %d %b %Y" if weekly else "%a %d %b %Y",
        },
    )
    total = sum(current[d] for d in days)
    if total:
        shown = f"${total:,.2f}" if money else f"{_short(total)} tokens"
        summary = f"{shown} from {days[0]:%d %b %Y} to {days[-1]:%d %b %Y}"
        compared = sum(v for v in ghost if v is not None)
        if previous and compared:
            summary += f", {(total - compared) / compared:+.0%} on the same days of the compared window"
        busiest = max(days, key=lambda d: current[d])
        summary += f"; busiest day {busiest:%d %b %Y}."
    else:
        summary = "No usage in this window."
    return Chart(chart_id, f"{'Weekly' if weekly else 'Daily'} {title.lower()}", _figure(data, layout), summary)
