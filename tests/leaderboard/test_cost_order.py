"""Cost order must not leak (issue 11): a ranking by cost is shown only where usage.access.can_rank_by_cost
allows it for the ranking actually computed — the team filter a page keeps, replaces or drops included.

In September Ivy (Infra) leads on tokens but Paul (Product) on cost, so a rank by cost differs from a rank by
tokens for both of them, and any cost-derived order shows."""

import json
import re
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import usage_for

SEPT = {"period": "month", "date": "2026-09-15"}


@pytest.fixture
def september(org):
    usage_for(org["infra_engineer"], day=date(2026, 9, 2), tokens=3_400_000, cost_usd=Decimal("12.50"))
    usage_for(org["product_engineer"], day=date(2026, 9, 3), tokens=1_200_000, cost_usd=Decimal("1234.56"))
    usage_for(org["platform_manager"], day=date(2026, 9, 4), tokens=500_000, cost_usd=Decimal("2.00"))
    usage_for(org["product_engineer"], day=date(2026, 8, 3), tokens=900_000, cost_usd=Decimal("9.00"))
    usage_for(org["infra_engineer"], day=date(2026, 8, 3), tokens=100_000, cost_usd=Decimal("900.00"))
    return org


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rank_history_ranks(html: str) -> list:
    """The y values of the person page's rank-history chart."""
    figure = json.loads(re.search(r'<script id="chart-rank" type="application/json">(.*?)</script>', html, re.S)[1])
    return [y for trace in figure["data"] for y in trace.get("y", []) if y is not None]


def test_an_engineer_cannot_read_anyones_rank_by_cost_from_the_person_api(september):
    engineer = api(september["infra_engineer"].user)
    for person in ("infra_engineer", "product_engineer", "platform_manager"):
        url = f"/api/v1/people/{september[person].pk}/"
        by_tokens = engineer.get(url, SEPT)
        assert by_tokens.status_code == 200
        refused = engineer.get(url, {**SEPT, "metric": "cost_usd"})
        assert refused.status_code == 403, refused.json()  # was 200 with the org-wide rank by cost
        assert "rank" not in refused.json() and "metric=cost_usd" in refused.json()["detail"]
    # The admin's cost order, for reference: Paul first, although Ivy leads on tokens.
    admin = api(september["admin"])
    assert (
        admin.get(f"/api/v1/people/{september['product_engineer'].pk}/", {**SEPT, "metric": "cost_usd"}).json()["rank"]
        == 1
    )


def test_a_manager_cannot_rank_someone_outside_his_subtree_by_cost_through_a_team_filter(september):
    """The product manager names his own team, which passes the check; the person page then drops the team
    filter and ranked Ivy (Infra, outside his subtree) org-wide by cost: "Rank by cost #2 of 3"."""
    manager = page(september["product_manager"].user)
    ivy = september["infra_engineer"].pk
    html = manager.get(f"/people/{ivy}/", {**SEPT, "metric": "cost_usd", "team": september["product"].pk}).content
    html = html.decode()
    assert "Rank by cost" not in html
    assert "Rank by total tokens" in html
    assert re.search(r"#1\s*<small>of 3</small>", html)  # Ivy's rank by tokens, not her #2 by cost
    assert "Ranked by total tokens instead" in html  # the viewer is told why
    # Her rank history by tokens (#2 in August, #1 in September), not by cost (#1, then #2).
    assert rank_history_ranks(html)[-2:] == [2, 1]


def test_the_person_api_with_a_team_filter_ranks_within_that_team_only(september):
    """The API keeps the team filter, so a manager's ranking by cost is within his team: someone outside it
    gets no rank at all."""
    manager = api(september["product_manager"].user)
    body = manager.get(
        f"/api/v1/people/{september['infra_engineer'].pk}/",
        {**SEPT, "metric": "cost_usd", "team": september["product"].pk},
    ).json()
    assert body["rank"] is None
    own = manager.get(
        f"/api/v1/people/{september['product_engineer'].pk}/",
        {**SEPT, "metric": "cost_usd", "team": september["product"].pk},
    ).json()
    assert own["rank"] == 1


def test_a_manager_cannot_order_teams_outside_his_subtree_by_cost_from_a_team_page(september):
    """/teams/<Engineering>/?metric=cost_usd&team=<Product>: the filter passes for the product manager, the
    team page replaces it with Engineering and listed Platform and Product in cost order."""
    manager = page(september["product_manager"].user)
    html = manager.get(
        f"/teams/{september['engineering'].pk}/", {**SEPT, "metric": "cost_usd", "team": september["product"].pk}
    ).content.decode()
    assert "rank by cost" not in html
    assert "Ranked by total tokens instead" in html


def test_a_manager_still_ranks_his_own_team_by_cost(september):
    manager = page(september["product_manager"].user)
    html = manager.get("/", {**SEPT, "metric": "cost_usd", "team": september["product"].pk}).content.decode()
    assert "ranked by cost" in html.lower() and "instead" not in html


def test_a_managers_teams_ranked_by_cost_are_placed_among_his_own_teams_only(september):
    """Platform costs less than Product: ranked among the teams of its level, the platform manager would see
    Platform at #2 by cost and so learn that Product (not his) costs more."""
    manager = api(september["platform_manager"].user)
    rows = manager.get(
        "/api/v1/leaderboard/teams/", {**SEPT, "metric": "cost_usd", "team": september["platform"].pk}
    ).json()["results"]
    assert {row["team"]["name"]: row["rank"] for row in rows} == {"Platform": 1, "Infra": 1}
    admin_rows = (
        api(september["admin"])
        .get("/api/v1/leaderboard/teams/", {**SEPT, "metric": "cost_usd", "team": september["platform"].pk})
        .json()["results"]
    )
    assert {row["team"]["name"]: row["rank"] for row in admin_rows}["Platform"] == 2  # the admin's org-wide place
    by_tokens = manager.get("/api/v1/leaderboard/teams/", {**SEPT, "team": september["platform"].pk}).json()
    assert {row["team"]["name"]: row["rank"] for row in by_tokens["results"]}["Platform"] == 1  # tokens: public
