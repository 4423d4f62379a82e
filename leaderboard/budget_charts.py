"""The burn-down chart of an allowance or team budget (issue 13): built on the server like leaderboard.charts."""

from __future__ import annotations

from .alerts import burn_lines
from .budgets import Burn
from .charts import PALETTE, Chart, _figure, _layout


def burn_down_chart(burn: Burn, *, chart_id: str) -> Chart:
    """Use so far this period (cumulative), the allowance line, and the forecast with its band to the period's
    end. Follows tokens when the allowance has them, else USD."""
    in_tokens = burn.unit == "tokens"
    limit = float(burn.tokens_limit if in_tokens else burn.usd_limit)
    days, cumulative, total = [], [], 0.0
    for day, tokens, usd in burn.daily:
        total += tokens if in_tokens else float(usd)
        days.append(day.isoformat())
        cumulative.append(total)
    unit = "tokens" if in_tokens else "USD"
    value_format = "%{y:,.0f} tokens" if in_tokens else "$%{y:,.2f}"
    end = burn.period.end.isoformat()
    today = (burn.daily[-1][0] if burn.daily else burn.today).isoformat()
    used = float(burn.used_tokens if in_tokens else burn.used_usd)
    projected = float(burn.projected_tokens if in_tokens else burn.projected_usd)
    low, high = (float(v) for v in (burn.band_tokens if in_tokens else burn.band_usd))
    data = []
    if burn.days_left:
        data.append(  # the band: low projection to the end, then back along the high one
            {
                "type": "scatter",
                "x": [today, end, end, today],
                "y": [used, low, high, used],
                "mode": "lines",
                "fill": "toself",
                "fillcolor": "rgba(230,159,0,0.2)",
                "line": {"width": 0},
                "hoverinfo": "skip",
                "name": "forecast range",
            }
        )
        data.append(
            {
                "type": "scatter",
                "x": [today, end],
                "y": [used, projected],
                "mode": "lines",
                "line": {"color": PALETTE[1], "dash": "dot", "width": 2},
                "name": "forecast",
                "hovertemplate": value_format + "<extra>forecast</extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "x": days,
            "y": cumulative,
            "mode": "lines+markers",
            "line": {"color": PALETTE[0], "width": 2},
            "marker": {"size": 4},
            "name": "used",
            "hovertemplate": value_format + "<extra>used</extra>",
        }
    )
    data.append(
        {
            "type": "scatter",
            "x": [burn.period.start.isoformat(), end],
            "y": [limit, limit],
            "mode": "lines",
            "line": {"color": PALETTE[5], "dash": "dash", "width": 2},
            "name": "allowance",
            "hovertemplate": value_format + "<extra>allowance</extra>",
        }
    )
    layout = _layout(
        yaxis={"title": {"text": unit}, "rangemode": "tozero"},
        xaxis={"range": [burn.period.start.isoformat(), end]},
        hovermode="closest",
    )
    return Chart(chart_id, f"Burn-down, {burn.period.label}", _figure(data, layout), " ".join(burn_lines(burn)))
