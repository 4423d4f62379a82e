"""Issue 12's defects, each seen on the demo by a new user: charts that fit their data, the browsable API, empty
states, the rank-history caption, the favicon, PORT and the cache table."""

import importlib
import json
import re
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from leaderboard import charts
from leaderboard.series import usage_series
from tests.factories import usage_for
from usage.periods import Window, comparison_window, org_today, window_for
from usage.services.standings import standings_refresh

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client_of():
    def login(person_or_user):
        client = Client()
        client.force_login(getattr(person_or_user, "user", None) or person_or_user)
        return client

    return login


def figure_of(html: str, chart_id: str) -> dict:
    match = re.search(rf'<script id="{chart_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no figure {chart_id} on the page"
    return json.loads(match.group(1))


def summary_of(html: str, chart_id: str) -> str:
    match = re.search(rf'data-chart="{chart_id}"[^>]*aria-label="[^"]*?: ([^"]*)"', html)
    assert match, f"no chart {chart_id} on the page"
    return match.group(1)


# --- The browsable API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/leaderboard/people/", "/api/v1/leaderboard/teams/"])
def test_the_rankings_open_in_a_browser_as_the_browsable_api(org, path):
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000)
    client = APIClient()
    client.force_login(org["infra_engineer"].user)
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_the_pages_link_to_the_api_docs(org, client_of):
    html = client_of(org["infra_engineer"]).get("/").content.decode()
    assert 'href="/api/docs/"' in html


# --- Charts fit their data ------------------------------------------------------------------------------


def test_an_all_time_chart_starts_at_the_first_day_with_usage_and_names_the_years(org):
    usage_for(org["infra_engineer"], day=date(2026, 9, 2), tokens=1000)
    usage_for(org["infra_engineer"], day=date(2026, 9, 4), tokens=3000)
    standings_refresh()
    window = window_for("all", date(2026, 9, 10))
    series = usage_series(window, person_id=org["infra_engineer"].pk)
    chart = charts.daily_usage_chart(series, chart_id="c", stacked_by_label="model", today=date(2026, 9, 10))
    bars = chart.figure["data"][0]
    assert bars["x"][0] == "2026-09-02" and bars["x"][-1] == "2026-09-10"
    assert chart.figure["layout"]["xaxis"]["range"] == ["2026-09-01T12:00:00", "2026-09-10T12:00:00"]
    assert "from 02 Sep 2026 to 10 Sep 2026" in chart.summary
    assert "template" not in chart.figure["layout"]  # plotly's 6 KB default template is not sent


def test_month_and_week_charts_stop_at_today(org):
    usage_for(org["infra_engineer"], day=date(2026, 12, 1), tokens=1000)
    standings_refresh()
    for period in ("month", "week"):
        series = usage_series(window_for(period, date(2026, 12, 2)), person_id=org["infra_engineer"].pk)
        chart = charts.daily_usage_chart(series, chart_id="c", stacked_by_label="model", today=date(2026, 12, 2))
        assert max(chart.figure["data"][0]["x"]) == "2026-12-02", period
        assert chart.summary.endswith("(100%).") and "to 02 Dec 2026" in chart.summary, period
        assert "31 Dec" not in chart.summary and "06 Dec" not in chart.summary


def test_a_window_entirely_in_the_future_draws_an_empty_chart(org, client_of):
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000)
    future = (org_today() + timedelta(days=70)).isoformat()
    client = client_of(org["admin"])
    for path in (f"/people/{org['infra_engineer'].pk}/", f"/teams/{org['infra'].pk}/", "/overview/"):
        response = client.get(path, {"period": "month", "date": future})
        assert response.status_code == 200, path
        assert "No usage in this window." in response.content.decode(), path


def test_a_one_day_window_draws_a_bar_per_model_not_a_time_axis(org):
    day = date(2026, 9, 2)
    usage_for(org["infra_engineer"], day=day, tokens=1000, model="gpt-5")
    usage_for(org["infra_engineer"], day=day, tokens=3000, model="claude-sonnet-4-5", provider="anthropic")
    standings_refresh()
    series = usage_series(window_for("day", day), person_id=org["infra_engineer"].pk)
    chart = charts.daily_usage_chart(series, chart_id="c", stacked_by_label="model", today=day)
    (bars,) = chart.figure["data"]
    # The catalog's names (usage.models.CatalogModel): every source's spelling counts as one model.
    assert bars["x"] == ["Claude Sonnet 4.5", "GPT-5"] and bars["y"] == [3000, 1000]
    assert chart.figure["layout"]["xaxis"]["type"] == "category"
    assert "on 02 Sep 2026" in chart.summary


def test_more_than_a_year_is_drawn_in_weeks_and_all_time_pages_stay_small(org, client_of):
    today = org_today()
    for person in ("infra_engineer", "product_engineer", "platform_manager"):
        for back in range(0, 800, 3):
            usage_for(org[person], day=today - timedelta(days=back), tokens=1000 + back, model=f"m-{back % 9}")
    client = client_of(org["admin"])
    person_html = client.get(f"/people/{org['infra_engineer'].pk}/?period=all").content.decode()
    team_html = client.get(f"/teams/{org['engineering'].pk}/?period=all").content.decode()
    assert len(person_html.encode()) < 300_000 and len(team_html.encode()) < 300_000
    bars = figure_of(person_html, "chart-daily")["data"][0]
    assert bars["x"] and all(date.fromisoformat(x).weekday() == 0 for x in bars["x"])  # a bar a week, on Mondays
    assert "Weekly tokens by model" in person_html


def test_provider_charts_and_tables_name_providers_as_the_filters_do(org, client_of):
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, provider="github_copilot", model="gpt-5")
    html = client_of(org["admin"]).get(f"/teams/{org['infra'].pk}/?period=30d").content.decode()
    assert figure_of(html, "chart-providers")["data"][0]["labels"] == ["GitHub Copilot"]
    assert "</svg>GitHub Copilot</th>" in html  # the provider mix table


def test_models_of_a_family_share_its_colour_family_and_providers_keep_theirs():
    palette = charts.family_shades(["claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "gpt-5", "gpt-5-mini"])
    assert palette["Claude Sonnet 4.5"] == charts.FAMILY_COLOURS["claude-sonnet"]
    assert palette["claude-sonnet-4-5-20250929"] != palette["Claude Sonnet 4.5"]  # told apart by shade
    assert palette["gpt-5"] == charts.FAMILY_COLOURS["gpt-5"]
    assert charts.colour_for("anthropic") == charts.PROVIDER_COLOURS["anthropic"]
    # A catalogued family plugs in through family_of.
    assert charts.family_shades(["x-1"], family_of=lambda _m: "gpt-5") == {"x-1": charts.FAMILY_COLOURS["gpt-5"]}


def test_the_all_time_rank_history_caption_names_its_months_not_the_pages_rank(org, client_of):
    today = org_today()
    usage_for(org["infra_engineer"], day=today, tokens=1000)
    usage_for(org["product_engineer"], day=today, tokens=5000)
    usage_for(org["infra_engineer"], day=today - timedelta(days=400), tokens=90_000)
    html = client_of(org["infra_engineer"]).get(f"/people/{org['infra_engineer'].pk}/?period=all").content.decode()
    assert "#1 <small>of 2</small>" in html  # all time Ivy leads …
    summary = summary_of(html, "chart-rank")
    assert re.match(rf"Rank by total tokens in each month \(the last \d+\): {today:%b %Y} #2", summary)  # … not now
    assert "now #" not in summary


# --- Windows that make sense on any day ----------------------------------------------------------------


@pytest.fixture
def early_december(org):
    """Today is 2 Dec 2026. Ivy led 1–2 Nov and leads 1–2 Dec; Paul took the rest of November."""
    with time_machine.travel(datetime(2026, 12, 2, 12, tzinfo=UTC), tick=False):
        for day in (date(2026, 11, 1), date(2026, 11, 2), date(2026, 12, 1), date(2026, 12, 2)):
            usage_for(org["infra_engineer"], day=day, tokens=100)
            usage_for(org["product_engineer"], day=day, tokens=50)
        usage_for(org["product_engineer"], day=date(2026, 11, 20), tokens=10_000)
        standings_refresh()
        yield org


def test_a_month_in_progress_ranks_changes_against_the_same_days_of_the_previous_month(early_december, client_of):
    org = early_december
    with time_machine.travel(datetime(2026, 12, 2, 12, tzinfo=UTC), tick=False):
        assert comparison_window(window_for("month", date(2026, 12, 2))) == Window(
            "custom", date(2026, 11, 1), date(2026, 11, 2)
        )
        api = APIClient()
        api.force_authenticate(org["infra_engineer"].user)
        rows = api.get("/api/v1/leaderboard/people/", {"period": "month"}).json()["results"]
        html = client_of(org["infra_engineer"]).get("/?period=month").content.decode()
        movers = client_of(org["infra_engineer"]).get("/movers/?period=month").content.decode()
        teams = client_of(org["infra_engineer"]).get("/teams/?period=month").content.decode()
    # Against all of November Ivy would have climbed and Paul dropped; against 1–2 Nov nobody moved.
    assert [(r["person"]["display_name"], r["rank"], r["previous_rank"]) for r in rows] == [
        ("Ivy Infra", 1, 1),
        ("Paul Product", 2, 2),
    ]
    assert "delta up" not in html and "delta down" not in html
    assert "Rank changes compare with 01 Nov 2026 – 02 Nov 2026, the same days of the previous month" in html
    assert "No one moved up." in movers and "No one moved down." in movers
    assert "the same days of the previous month" in teams
    # A finished month still compares with the whole previous month.
    assert comparison_window(window_for("month", date(2026, 10, 5)), today=date(2026, 12, 2)) == window_for(
        "month", date(2026, 9, 1)
    )


def test_movers_of_a_month_in_progress_are_measured_against_the_same_days(org, client_of):
    with time_machine.travel(datetime(2026, 12, 2, 12, tzinfo=UTC), tick=False):
        for day in (date(2026, 11, 1), date(2026, 11, 2)):
            usage_for(org["product_engineer"], day=day, tokens=100)
            usage_for(org["infra_engineer"], day=day, tokens=50)
        for day in (date(2026, 12, 1), date(2026, 12, 2)):
            usage_for(org["infra_engineer"], day=day, tokens=100)
            usage_for(org["product_engineer"], day=day, tokens=50)
        usage_for(org["infra_engineer"], day=date(2026, 11, 20), tokens=10_000)  # Ivy led November as a whole
        html = client_of(org["infra_engineer"]).get("/movers/?period=month").content.decode()
    climbers, drops = html.split("Biggest climbers", 1)[1].split("Biggest drops", 1)
    assert "Ivy Infra" in climbers and "Paul Product" not in climbers
    assert "Paul Product" in drops.split("Newcomers", 1)[0]


def test_pages_open_on_the_last_30_days_with_links_to_the_windows_before_and_after(early_december, client_of):
    with time_machine.travel(datetime(2026, 12, 2, 12, tzinfo=UTC), tick=False):
        client = client_of(early_december["infra_engineer"])
        html = client.get("/?metric=output_tokens&provider=openai").content.decode().replace("&amp;", "&")
        month = client.get("/?period=month&date=2026-11-10").content.decode().replace("&amp;", "&")
        current = client.get("/?period=month").content.decode()
    assert '<option value="30d" selected>' in html
    assert '<a href="?period=30d&metric=output_tokens&date=2026-11-02&provider=openai" rel="prev">' in html
    assert 'rel="next"' not in html  # nothing after today
    assert (
        '<a href="?period=month&metric=total_tokens&date=2026-10-31" rel="prev"><span aria-hidden="true">←</span> October 2026</a>'
        in month
    )
    assert '<a href="?period=month&metric=total_tokens" rel="next">December 2026 <span' in month
    assert 'rel="next"' not in current


# --- Empty states and the filters ----------------------------------------------------------------------


def empty_links(html: str) -> list[str]:
    block = html.split('<div class="empty">', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<a href="\?([^"]*)">', block.replace("&amp;", "&"))


def test_an_empty_window_suggests_only_wider_windows_and_keeps_the_filters(org, client_of):
    usage_for(org["infra_engineer"], day=org_today() - timedelta(days=60), tokens=1000, provider="anthropic")
    html = client_of(org["infra_engineer"]).get("/?period=30d&provider=openai&metric=output_tokens").content.decode()
    links = empty_links(html)
    assert "period=30d" not in " ".join(links[:2])  # already on the last 30 days: not suggested again
    assert links[:2] == [
        "period=90d&metric=output_tokens&provider=openai",
        "period=all&metric=output_tokens&provider=openai",
    ]
    assert links[2] == "period=30d&metric=output_tokens"  # dropping the provider, named as such
    assert "all providers" in html


def test_a_model_of_another_provider_says_so_instead_of_suggesting_windows(org, client_of):
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, provider="openai", model="gpt-5")
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, provider="anthropic", model="claude-opus-4-1")
    client = client_of(org["infra_engineer"])
    for path in ("/", "/teams/", "/movers/", f"/people/{org['infra_engineer'].pk}/"):
        html = client.get(f"{path}?period=30d&provider=anthropic&model=gpt-5").content.decode()
        assert "GPT-5 has no usage through Anthropic." in html, path  # the catalog's name for gpt-5
        assert empty_links(html) == [
            "period=30d&metric=total_tokens&model=GPT-5",
            "period=30d&metric=total_tokens&provider=anthropic",
        ], path


def test_the_model_list_narrows_to_the_chosen_provider(org, client_of):
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, provider="openai", model="gpt-5")
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, provider="cursor", model="gpt-5")
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, provider="anthropic", model="claude-opus-4-1")
    html = client_of(org["infra_engineer"]).get("/?provider=anthropic").content.decode()
    assert '<option value="GPT-5" data-providers="cursor openai" hidden>' in html  # the catalog's names
    assert '<option value="Claude Opus 4.1" data-providers="anthropic">' in html


# --- Tables --------------------------------------------------------------------------------------------


def member_names(html: str) -> list[str]:
    body = html.split('<table class="ranking members">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<th scope="row"><a href="/people/\d+/[^"]*">([^<]+)</a>', body)


def test_the_members_table_sorts_by_any_column_in_the_url(org, client_of):
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, cost_usd="9.00")
    usage_for(org["platform_manager"], day=org_today(), tokens=5000, cost_usd="1.00")
    client = client_of(org["admin"])
    url = f"/teams/{org['platform'].pk}/"
    default = client.get(url).content.decode()
    assert member_names(default) == ["Pat Manager", "Ivy Infra"]  # by tokens, largest first
    assert (
        '<th scope="col" class="num" aria-sort="descending"><a href="?sort=tokens" class="sort">Total tokens' in default
    )
    assert member_names(client.get(url, {"sort": "name"}).content.decode()) == ["Ivy Infra", "Pat Manager"]
    assert member_names(client.get(url, {"sort": "-name"}).content.decode()) == ["Pat Manager", "Ivy Infra"]
    by_cost = client.get(url, {"sort": "-cost", "period": "7d"}).content.decode()
    assert member_names(by_cost) == ["Ivy Infra", "Pat Manager"]
    assert 'aria-sort="descending"><a href="?sort=cost&amp;period=7d" class="sort">Cost' in by_cost
    assert '<input type="hidden" name="sort" value="-cost">' in by_cost  # changing the filters keeps the order
    assert member_names(client.get(url, {"sort": "bogus"}).content.decode()) == ["Pat Manager", "Ivy Infra"]


def test_members_sort_by_a_metric_some_of_them_have_no_figure_for(org, client_of):
    """Requests no source reported are unknown (None): they sort last instead of breaking the sort."""
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, requests=7)
    usage_for(org["platform_manager"], day=org_today(), tokens=5000)  # requests unknown
    client = client_of(org["admin"])
    page = client.get(f"/teams/{org['platform'].pk}/", {"metric": "requests"})
    assert page.status_code == 200
    assert member_names(page.content.decode()) == ["Ivy Infra", "Pat Manager"]


def test_ranking_columns_link_to_ranking_by_them(org, client_of):
    usage_for(org["infra_engineer"], day=org_today(), tokens=1000, output_tokens=200, cost_usd="9.00")
    admin = client_of(org["admin"]).get("/?metric=output_tokens&provider=openai").content.decode()
    assert 'href="?metric=total_tokens&amp;provider=openai" title="Rank by total tokens"' in admin
    assert 'href="?metric=cost_usd&amp;provider=openai" title="Rank by cost"' in admin
    assert '<th scope="col" class="metric" aria-sort="descending">Output tokens' in admin
    engineer = client_of(org["infra_engineer"]).get("/?metric=output_tokens").content.decode()
    assert "Rank by cost" not in engineer  # engineers may not rank by cost


# --- Favicon, PORT, the cache table ---------------------------------------------------------------------


def test_pages_have_a_favicon_and_favicon_ico_needs_no_login(org, client_of):
    html = client_of(org["infra_engineer"]).get("/").content.decode()
    assert re.search(r'<link rel="icon" href="/static/favicon\.svg"', html)
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    assert (ROOT / "static" / "favicon.svg").read_text().startswith("<svg")


def test_make_run_serves_and_prints_the_url_on_port():
    dry_run = subprocess.run(["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "http://127.0.0.1:8123" in dry_run.stdout and "--port 8123" in dry_run.stdout
    default = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True, env={})
    assert "http://127.0.0.1:8000" in default.stdout
    assert "127.0.0.1:${PORT:-8000}" in (ROOT / "Procfile").read_text()  # honcho gives web the port


@pytest.mark.django_db(transaction=True)
def test_migrate_alone_creates_the_database_cache_table(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "tb_cache"}}
    migration = importlib.import_module("usage.migrations.0014_cache_table")
    with connection.schema_editor() as editor:
        assert "tb_cache" not in connection.introspection.table_names()
        migration.create_cache_tables(None, editor)
    try:
        assert "tb_cache" in connection.introspection.table_names()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE tb_cache")
