"""Charts are built as plain Plotly figure data (leaderboard.charts), not graph objects, so nothing checks their
properties as they are built: every chart a page renders is checked here against Plotly's schema instead."""

from datetime import date

import plotly.graph_objects as go
import pytest

from leaderboard import charts
from leaderboard.budget_charts import burn_down_chart
from leaderboard.budgets import person_burn
from tests.factories import usage_for
from tests.leaderboard.test_chart_labels import chart_figures
from usage.services.budgets import allowance_save
from usage.services.standings import standings_refresh

pytestmark = pytest.mark.django_db


def test_every_chart_the_pages_render_is_a_valid_plotly_figure(client, org):
    ivy, infra = org["infra_engineer"], org["infra"]
    for day, tokens, model, provider in (
        (date(2026, 8, 20), 700, "gpt-5", "openai"),
        (date(2026, 9, 1), 1000, "gpt-5", "openai"),
        (date(2026, 9, 2), 500, "claude-sonnet-4-5", "anthropic"),
    ):
        usage_for(ivy, day=day, tokens=tokens, model=model, provider=provider)
    client.force_login(org["admin"])  # sees every chart of every page
    pages = {
        "person": f"/people/{ivy.pk}/?period=month&date=2026-09-15",
        "person, one day": f"/people/{ivy.pk}/?period=day&date=2026-09-01",
        "person, a year by weeks": f"/people/{ivy.pk}/?period=year&date=2026-09-15",
        "team": f"/teams/{infra.pk}/?period=month&date=2026-09-15",
        "overview": "/overview/?period=month&date=2026-09-15",
    }
    checked = 0
    for name, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, name
        figures = chart_figures(response.content.decode())
        assert figures, name
        for figure in figures:
            go.Figure(figure)  # raises ValueError naming any property Plotly does not have
            checked += 1
    assert checked >= 10


def test_the_burn_down_chart_is_a_valid_plotly_figure(org):
    ivy, today = org["infra_engineer"], date(2026, 9, 10)
    allowance_save(person=ivy, tokens=1_000_000, usd="100", start=date(2026, 1, 1))
    usage_for(ivy, day=date(2026, 9, 2), tokens=300_000)
    standings_refresh(today=today)
    _allowance, burn = person_burn(ivy.pk, today)
    figure = burn_down_chart(burn, chart_id="chart-burn").figure
    assert [trace["name"] for trace in figure["data"]] == ["forecast range", "forecast", "used", "allowance"]
    go.Figure(figure)


def test_a_figure_with_a_property_plotly_does_not_have_is_refused():
    chart = charts.rank_history_chart([(date(2026, 9, 1), "Sep 2026", 3)], chart_id="c", metric_label="Tokens")
    go.Figure(chart.figure)
    chart.figure["data"][0]["hovertemplat"] = "%{y}"
    with pytest.raises(ValueError, match="hovertemplat"):
        go.Figure(chart.figure)
