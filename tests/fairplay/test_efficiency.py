"""Efficiency metrics: ranked only among the people above the minimum volume; pages, CSV and API agree."""

import csv
import io
from datetime import date

import pytest

from leaderboard.selectors import people_ranking
from leaderboard.windows import ranking_query_from
from tests.factories import IdentityFactory, UsageRecordFactory, person_in_team
from usage.access import viewer_for
from usage.services.standings import standings_refresh

DAY = date(2026, 9, 3)


def usage(person, *, input_tokens=0, cache_read=0, output=0, cost="0", day=DAY):
    identity = IdentityFactory(person=person)
    return UsageRecordFactory(
        identity=identity,
        day=day,
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        output_tokens=output,
        cost_usd=cost,
        cost_source="billed",
    )


@pytest.fixture
def four(org):
    """Four people: two heavy (ranked on efficiency by default), two light (under the top half)."""
    product = org["product"]
    heavy_cached = person_in_team(product, display_name="Hana Heavy")
    heavy_fresh = person_in_team(product, display_name="Fred Fresh")
    light_cached = person_in_team(product, display_name="Lou Light")
    tiny = person_in_team(product, display_name="Tim Tiny")
    usage(heavy_cached, input_tokens=100_000, cache_read=900_000, output=10_000, cost="2.00")
    usage(heavy_fresh, input_tokens=800_000, cache_read=100_000, output=100_000, cost="9.00")
    usage(light_cached, input_tokens=100, cache_read=9_900, output=0, cost="0.01")  # 99 % cached, but tiny
    usage(tiny, input_tokens=1_000, output=10, cost="0.10")
    return {"heavy_cached": heavy_cached, "heavy_fresh": heavy_fresh, "light_cached": light_cached, "tiny": tiny}


@pytest.mark.parametrize("period", ["month", "custom"])  # kept standings, and summed on request
def test_efficiency_ranks_exclude_people_under_the_minimum_volume(four, org, period):
    standings_refresh(today=date(2026, 9, 15))
    params = {"date": "2026-09-15", "period": period, "metric": "cache_hit_rate"}
    if period == "custom":
        params.update(start="2026-09-01", end="2026-09-10")
    ranking = people_ranking(ranking_query_from(params), viewer_for(org["admin"]))
    ranked = [(s.rank, s.person_id) for s in ranking]
    # Lou has the best hit rate (99 %) but is under the top half by volume: listed apart, not ranked.
    assert ranked == [(1, four["heavy_cached"].pk), (2, four["heavy_fresh"].pk)]
    assert ranking.count() == 2
    assert {s.person_id for s in ranking.below_minimum()} == {four["light_cached"].pk, four["tiny"].pk}
    assert ranking.row_for(four["light_cached"].pk) is None


def test_a_fixed_minimum_setting_ranks_everyone_above_it(four, org, settings):
    settings.TOKENBOARD_EFFICIENCY_MIN_TOKENS = 5_000
    standings_refresh(today=date(2026, 9, 15))
    query = ranking_query_from({"date": "2026-09-15", "period": "month", "metric": "cache_hit_rate"})
    ranked = [s.person_id for s in people_ranking(query, viewer_for(org["admin"]))]
    assert ranked == [four["light_cached"].pk, four["heavy_cached"].pk, four["heavy_fresh"].pk]


def test_cost_per_million_tokens_ranks_the_cheapest_first(four, org):
    standings_refresh(today=date(2026, 9, 15))
    query = ranking_query_from({"date": "2026-09-15", "period": "month", "metric": "cost_per_mtok"})
    ranked = [s.person_id for s in people_ranking(query, viewer_for(org["admin"]))]
    assert ranked == [four["heavy_cached"].pk, four["heavy_fresh"].pk]  # $2.00/1.01M before $9.00/1M


def test_billed_equivalent_tokens_weigh_cached_tokens_less(four, org):
    standings_refresh(today=date(2026, 9, 15))
    query = ranking_query_from({"date": "2026-09-15", "period": "month", "metric": "billed_equivalent_tokens"})
    top = people_ranking(query, viewer_for(org["admin"]))[0]
    # Fred: 800k + 100k × 0.1 + 100k × 5 = 1.31M, though Hana has more raw tokens (1.01M each).
    assert top.person_id == four["heavy_fresh"].pk
    assert top.totals.metric("billed_equivalent_tokens") == 1_310_000


def test_page_csv_and_api_agree_on_efficiency(four, org, client):
    client.force_login(org["admin"])
    params = {"date": "2026-09-15", "period": "month", "metric": "cache_hit_rate"}
    page = client.get("/", params)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Cache read tokens ÷ all prompt tokens" in body  # the one-line definition
    assert "under the minimum volume" in body and "Lou Light" in body
    rows = list(csv.DictReader(io.StringIO(client.get("/", {**params, "format": "csv"}).content.decode())))
    api = client.get("/api/v1/leaderboard/people/", params).json()["results"]
    assert [r["rank"] for r in rows] == ["1", "2", "", ""]
    assert [r["person"]["id"] for r in api] == [four["heavy_cached"].pk, four["heavy_fresh"].pk]
    assert float(rows[0]["cache_hit_rate"]) == api[0]["cache_hit_rate"] == round(900_000 / 1_000_000, 6)
    assert "89.1%" in body or "90.0%" in body


def test_engineers_cannot_rank_by_cost_per_million_tokens(four, org, client):
    client.force_login(org["product_engineer"].user)
    response = client.get("/api/v1/leaderboard/people/", {"metric": "cost_per_mtok"})
    assert response.status_code == 403
    page = client.get("/", {"metric": "cost_per_mtok"})
    assert "Ranked by total tokens instead" in page.content.decode()


def test_a_person_under_the_minimum_sees_their_figures_but_no_rank(four, org, client):
    client.force_login(org["admin"])
    params = {"date": "2026-09-15", "period": "month", "metric": "cache_hit_rate"}
    body = client.get(f"/people/{four['light_cached'].pk}/", params).content.decode()
    assert "not ranked: under the minimum volume" in body and "99.0%" not in body.split("Rank by")[0]
    api = client.get(f"/api/v1/people/{four['light_cached'].pk}/", params).json()
    assert api["rank"] is None and api["totals"]["total_tokens"] == 10_000
    assert api["totals"]["cache_hit_rate"] == 0.99


def test_cost_per_million_tokens_is_left_out_of_the_api_where_cost_is(four, org, client):
    client.force_login(org["product_engineer"].user)
    rows = client.get("/api/v1/leaderboard/people/", {"date": "2026-09-15", "period": "month"}).json()["results"]
    assert rows and all("cost_per_mtok" not in row and "cost_usd" not in row for row in rows)
    assert all("cache_hit_rate" in row for row in rows)


def test_teams_rank_on_the_ratio_of_their_totals_with_the_definition_shown(four, org, client):
    client.force_login(org["admin"])
    params = {"date": "2026-09-15", "period": "month", "metric": "output_share"}
    body = client.get("/teams/", params).content.decode()
    assert "Output tokens ÷ total tokens" in body
    teams = client.get("/api/v1/leaderboard/teams/", params).json()["results"]
    product = next(t for t in teams if t["team"]["name"] == "Product")
    assert product["output_share"] == round(110_010 / 2_021_010, 6)
