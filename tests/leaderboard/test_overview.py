"""The overview page: the org's window against the compared one, agreeing with the rankings and the API; cost
for admins only; an engineer's month and year of active days."""

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from leaderboard.overview import activity_calendar, source_freshness
from tests.factories import person_in_team, usage_for
from usage.models import ProviderConnection
from usage.periods import org_today
from usage.services.standings import standings_refresh

DATE = "date=2026-09-15"


@pytest.fixture
def september(org):
    """30 days to 15 Sep (17 Aug – 15 Sep) against the 30 before (18 Jul – 16 Aug)."""
    usage_for(org["infra_engineer"], day=date(2026, 9, 2), tokens=3_000_000, cost_usd=Decimal("12.50"))
    usage_for(org["product_engineer"], day=date(2026, 9, 14), tokens=1_000_000, cost_usd=Decimal("4.25"))
    usage_for(
        org["product_engineer"], day=date(2026, 9, 14), tokens=500_000, provider="anthropic", model="claude-opus-4-1"
    )
    usage_for(org["infra_engineer"], day=date(2026, 8, 1), tokens=2_000_000, cost_usd=Decimal("8"))
    return org


def login(person_or_user) -> Client:
    client = Client()
    client.force_login(getattr(person_or_user, "user", None) or person_or_user)
    return client


def stat(html: str, label: str) -> str:
    match = re.search(rf'<span class="stat-label">{label}</span><span class="stat-value[^"]*">(.*?)</span>', html)
    assert match, label
    return re.sub(r"<[^>]+>", "", match.group(1))


def test_the_overview_is_first_in_the_navigation_for_everyone(september):
    for persona in ("infra_engineer", "platform_manager", "admin"):
        html = login(september[persona]).get("/").content.decode()
        nav = html.split('<nav aria-label="Main">', 1)[1]
        assert re.search(r'^\s*<a href="/overview/"', nav), persona


def test_the_overview_totals_agree_with_the_people_ranking_and_the_api(september):
    org = september
    html = login(org["admin"]).get(f"/overview/?{DATE}").content.decode()
    api = APIClient()
    api.force_authenticate(org["admin"])
    rows = api.get("/api/v1/leaderboard/people/", {"period": "30d", "date": "2026-09-15"}).json()["results"]
    assert sum(r["total_tokens"] for r in rows) == 4_500_000
    assert stat(html, "Tokens") == "4.5M"
    assert stat(html, "Cost") == "$16.75" and sum(Decimal(r["cost_usd"]) for r in rows) == Decimal("16.75")
    assert stat(html, "Active people") == "2"
    # Against 2M tokens and one person in the 30 days before: +125% tokens, +100% people.
    assert "+125%</span> on the compared window" in html and "+100%</span> on the compared window" in html
    assert "compared with 18 Jul 2026 – 16 Aug 2026" in html
    figure = json.loads(
        re.search(r'<script id="chart-org-tokens" type="application/json">(.*?)</script>', html).group(1)
    )
    bars, ghost = figure["data"]
    assert bars["x"][0] == "2026-08-17" and bars["x"][-1] == "2026-09-15"
    assert sum(bars["y"]) == 4_500_000 and sum(v for v in ghost["y"] if v) == 2_000_000
    assert ghost["line"]["dash"] == "dot"
    # The top model and provider, by tokens.
    assert stat(html, "Top model") == "GPT-5" and stat(html, "Top provider") == "OpenAI"  # the catalog's name
    # Shares read the same in the headline and the tables: one decimal.
    assert "88.9% of tokens" in html and '<td class="num">88.9%</td>' in html


def test_cost_is_on_the_overview_for_admins_only(september):
    for persona in ("infra_engineer", "platform_manager"):
        html = login(september[persona]).get(f"/overview/?{DATE}").content.decode()
        assert "chart-org-cost" not in html and ">Cost<" not in html and "$16.75" not in html, persona
    assert "chart-org-cost" in login(september["admin"]).get(f"/overview/?{DATE}").content.decode()


def test_an_engineer_sees_their_month_and_a_year_of_active_days(org):
    today = org_today()
    for back in (0, 1, 2, 40, 200):
        usage_for(org["infra_engineer"], day=today - timedelta(days=back), tokens=1000 * (back + 1))
    html = login(org["infra_engineer"]).get("/overview/").content.decode()
    assert "My month" in html and "chart-my-trend" in html and "chart-my-rank" in html and "chart-my-models" in html
    assert 'aria-label="Active days over the last 12 months: 5"' in html
    assert f"<title>{today:%a %d %b %Y}: 1,000 tokens</title>" in html
    # An admin who is not a person has no month of their own.
    assert "My month" not in login(org["admin"]).get("/overview/").content.decode()


def test_the_activity_calendar_has_whole_weeks_to_today_and_levels_by_quartile(org):
    today = date(2026, 9, 16)  # a Wednesday
    for back, tokens in ((0, 10), (1, 20), (2, 30), (3, 40), (9, 1000)):
        usage_for(org["infra_engineer"], day=today - timedelta(days=back), tokens=tokens)
    standings_refresh()
    days = activity_calendar(org["infra_engineer"].pk, today=today)
    assert days[0].day.weekday() == 0 and days[0].column == 0 and days[-1].day == today  # no future days
    assert days[-1].column == 52 and days[-1].row == 2
    levels = {d.day: d.level for d in days if d.tokens}
    assert levels[today] == 1 and levels[today - timedelta(days=9)] == 4
    assert sum(1 for d in days if d.level == 0) == len(days) - 5


def test_freshness_per_source_puts_the_stalest_first_with_its_last_pull(org):
    today = org_today()
    usage_for(org["infra_engineer"], day=today, tokens=10, provider="openai", model="gpt-5")
    usage_for(org["infra_engineer"], day=today - timedelta(days=5), tokens=10, provider="cursor", model="composer-1")
    pulled = ProviderConnection.objects.create(provider="openai", name="org", encrypted_api_key=b"x")
    ProviderConnection.objects.filter(pk=pulled.pk).update(last_success_at="2026-09-01T10:00Z")
    standings_refresh()
    sources = source_freshness(today)
    assert [(s.provider, s.days_behind) for s in sources] == [("cursor", 5), ("openai", 0)]
    assert sources[0].last_pull is None and sources[1].last_pull is not None
    html = login(org["infra_engineer"]).get("/overview/").content.decode()
    assert "imported from files" in html and 'class="num stale">5<' in html


def test_overview_keeps_pseudonyms_for_people_who_hide_their_name(september):
    hidden = person_in_team(september["product"], display_name="Secret Sam", show_name=False)
    usage_for(hidden, day=date(2026, 9, 10), tokens=9_000_000)
    html = login(september["infra_engineer"]).get(f"/overview/?{DATE}").content.decode()
    assert "Secret Sam" not in html
