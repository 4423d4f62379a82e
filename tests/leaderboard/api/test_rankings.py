from decimal import Decimal

import pytest

from tests.factories import PersonFactory, TeamFactory, person_in_team, usage_for

from .conftest import DAY, WINDOW

PEOPLE = "/api/v1/leaderboard/people/"
TEAMS = "/api/v1/leaderboard/teams/"


def by_name(response) -> dict:
    return {row["person"]["display_name"]: row for row in response.json()["results"]}


def test_people_ranking_lists_everyone_with_usage_in_rank_order_with_the_documented_fields(clients, usage):
    response = clients["admin"].get(PEOPLE, WINDOW)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and body["next"] is None and body["previous"] is None
    assert [(r["rank"], r["person"]["display_name"], r["total_tokens"]) for r in body["results"]] == [
        (1, "Paul Product", 3000),
        (2, "Pat Manager", 2000),
        (3, "Ivy Infra", 1000),
    ]
    first = body["results"][0]
    assert set(first) == {
        "rank",
        "previous_rank",
        "person",
        "total_tokens",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "requests",
        "cost_usd",
        "active_days",
        "cache_hit_rate",
        "output_share",
        "cost_per_mtok",
        "billed_equivalent_tokens",
    }
    assert first["person"]["team"] == {
        "id": usage["product"].identity.person.memberships.get().team_id,
        "name": "Product",
    }
    assert first["cost_usd"] == "3.500000"
    assert first["active_days"] == 1
    assert first["previous_rank"] is None  # no usage in the previous window


def test_ties_share_a_rank_and_the_next_rank_is_skipped(org, clients):
    for person, tokens in (
        (org["infra_engineer"], 500),
        (org["product_engineer"], 500),
        (org["platform_manager"], 100),
    ):
        usage_for(person, day=DAY, tokens=tokens)
    ranks = [row["rank"] for row in clients["engineer"].get(PEOPLE, WINDOW).json()["results"]]
    assert ranks == [1, 1, 3]


def test_rank_change_compares_with_the_previous_window_of_the_same_size(org, clients, usage):
    # August: the infra engineer led; September (see `usage`): third.
    usage_for(org["infra_engineer"], day=DAY.replace(month=8), tokens=10_000)
    rows = by_name(clients["admin"].get(PEOPLE, {"period": "month", "date": "2026-09-10"}))
    assert rows["Ivy Infra"]["rank"] == 3 and rows["Ivy Infra"]["previous_rank"] == 1


def test_an_opted_out_person_shows_to_engineers_as_a_pseudonym_without_email_or_cost(org, clients, usage):
    product_engineer = org["product_engineer"]
    product_engineer.show_name = False
    product_engineer.save()
    rows = by_name(clients["engineer"].get(PEOPLE, WINDOW))
    assert "Paul Product" not in rows
    hidden = rows[product_engineer.pseudonym]
    assert hidden["person"]["id"] == product_engineer.pk
    assert "email" not in hidden["person"] and "cost_usd" not in hidden
    # The engineer's own row carries their email and cost.
    assert rows["Ivy Infra"]["person"]["email"] == org["infra_engineer"].email
    assert rows["Ivy Infra"]["cost_usd"] == "1.250000"
    # Their manager and the admin see the real name and email.
    for viewer in ("manager_y", "admin"):
        row = by_name(clients[viewer].get(PEOPLE, WINDOW))["Paul Product"]
        assert row["person"]["email"] == product_engineer.email and row["cost_usd"] == "3.500000"


def test_a_manager_sees_email_and_cost_only_for_their_subtree(clients, usage):
    rows = by_name(clients["manager_x"].get(PEOPLE, WINDOW))
    assert "email" in rows["Ivy Infra"]["person"] and "cost_usd" in rows["Ivy Infra"]  # Infra is under Platform
    assert "email" in rows["Pat Manager"]["person"]  # themselves
    assert "email" not in rows["Paul Product"]["person"] and "cost_usd" not in rows["Paul Product"]


def test_people_ranking_filters_by_metric_provider_model_team_and_search(org, clients, usage):
    usage_for(org["infra_engineer"], day=DAY, tokens=9000, provider="anthropic", model="claude-sonnet-4-5", requests=1)
    admin = clients["admin"]
    rows = admin.get(PEOPLE, {**WINDOW, "provider": "anthropic"}).json()["results"]
    assert [(r["person"]["display_name"], r["total_tokens"]) for r in rows] == [("Ivy Infra", 9000)]
    rows = admin.get(PEOPLE, {**WINDOW, "model": "gpt-5"}).json()["results"]
    assert rows[0]["person"]["display_name"] == "Paul Product"
    rows = admin.get(PEOPLE, {**WINDOW, "team": org["platform"].pk}).json()["results"]
    assert {r["person"]["display_name"] for r in rows} == {"Ivy Infra", "Pat Manager"}
    rows = admin.get(PEOPLE, {**WINDOW, "metric": "cost_usd"}).json()["results"]
    assert rows[0]["person"]["display_name"] == "Paul Product"
    rows = admin.get(PEOPLE, {**WINDOW, "metric": "requests"}).json()["results"]
    assert rows[0]["person"]["display_name"] == "Ivy Infra"
    rows = admin.get(PEOPLE, {**WINDOW, "q": "ivy"}).json()["results"]
    assert [(r["rank"], r["person"]["display_name"]) for r in rows] == [(1, "Ivy Infra")]


def test_pagination_is_page_number_style_with_page_size(clients, usage):
    body = clients["engineer"].get(PEOPLE, {**WINDOW, "page_size": 2}).json()
    assert body["count"] == 3 and len(body["results"]) == 2 and "page=2" in body["next"]
    second = clients["engineer"].get(PEOPLE, {**WINDOW, "page_size": 2, "page": 2}).json()
    assert [r["rank"] for r in second["results"]] == [3] and second["next"] is None


@pytest.mark.parametrize(
    ("params", "parameter", "allowed"),
    [
        ({"period": "fortnight"}, "period", "allowed: day, week, month"),
        ({"metric": "vibes"}, "metric", "allowed: total_tokens"),
        ({"start": "2026-09-10", "end": "2026-09-01"}, "end", "before start"),
        ({"period": "custom", "start": "2026-09-01"}, "start", "needs both start and end"),
        ({"date": "2026-13-45"}, "date", "YYYY-MM-DD"),
        ({"start": "yesterday", "end": "2026-09-01"}, "start", "YYYY-MM-DD"),
        ({"date": "0001-01-02", "period": "30d"}, "date", "from 1900-01-01"),
        ({"team": "platform"}, "team", "not a team id"),
        ({"team": "999999"}, "team", "no team with id 999999"),
        ({"page": "99"}, "page", "not a page"),
        ({"page": "0"}, "page", "not a page"),
        ({"page_size": "501"}, "page_size", "from 1 to 500"),
    ],
)
@pytest.mark.parametrize("url", [PEOPLE, TEAMS, "/api/v1/usage/"])
def test_bad_parameters_are_a_400_naming_the_parameter_and_what_is_allowed(
    clients, usage, url, params, parameter, allowed
):
    response = clients["admin"].get(url, params)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [parameter]
    assert allowed in body[parameter][0]


def test_teams_ranking_ranks_subtree_totals_and_hides_small_teams_figures_from_engineers(org, clients, usage):
    body = clients["engineer"].get(TEAMS, WINDOW).json()
    rows = {r["team"]["name"]: r for r in body["results"]}
    assert body["count"] == 4
    # Engineering = everyone (6000); three active members meet the default minimum team size of 3.
    assert rows["Engineering"]["rank"] == 1 and rows["Engineering"]["total_tokens"] == 6000
    assert rows["Engineering"]["figures_visible"] is True and rows["Engineering"]["active_members"] == 3
    assert "cost_usd" not in rows["Engineering"]
    # Platform has two active members: engineers see its place but no figures.
    platform = rows["Platform"]
    assert platform["figures_visible"] is False and platform["total_tokens"] is None
    assert platform["per_member"]["total_tokens"] is None and platform["top_person"] is None
    assert platform["members"] == 2


def test_team_managers_see_their_teams_figures_and_cost(org, clients, usage):
    rows = {r["team"]["name"]: r for r in clients["manager_x"].get(TEAMS, WINDOW).json()["results"]}
    assert rows["Platform"]["figures_visible"] is True
    assert rows["Platform"]["total_tokens"] == 3000 and rows["Platform"]["cost_usd"] == "3.250000"
    assert rows["Platform"]["top_person"]["display_name"] == "Pat Manager"
    assert rows["Product"]["figures_visible"] is False  # not theirs, and too small


def test_per_capita_ranks_teams_by_figures_per_active_member(org, clients, usage):
    # A big team of five light users outranks Product (its sibling) on totals but not per member.
    big = TeamFactory(name="Big", parent=org["engineering"])
    for _ in range(5):
        usage_for(person_in_team(big), day=DAY, tokens=1000)
    admin = clients["admin"]
    totals = {r["team"]["name"]: r["rank"] for r in admin.get(TEAMS, WINDOW).json()["results"]}
    per_capita = admin.get(TEAMS, {**WINDOW, "per_capita": "true"}).json()["results"]
    ranks = {r["team"]["name"]: r["rank"] for r in per_capita}
    assert totals["Big"] < totals["Product"]
    assert ranks["Product"] < ranks["Big"]
    big_row = next(r for r in per_capita if r["team"]["name"] == "Big")
    assert big_row["per_member"]["total_tokens"] == 1000 and big_row["total_tokens"] == 5000
    assert Decimal(big_row["per_member"]["cost_usd"]) == 0


def test_teams_ranking_team_parameter_restricts_to_the_subtree(org, clients, usage):
    rows = clients["admin"].get(TEAMS, {**WINDOW, "team": org["platform"].pk}).json()["results"]
    assert {r["team"]["name"] for r in rows} == {"Platform", "Infra"}


def test_per_capita_must_be_a_boolean(clients):
    response = clients["admin"].get(TEAMS, {"per_capita": "maybe"})
    assert response.status_code == 400 and "per_capita" in response.json()


def test_people_without_usage_in_the_window_are_not_ranked(clients, usage):
    PersonFactory(display_name="Idle Ida")
    names = {r["person"]["display_name"] for r in clients["admin"].get(PEOPLE, WINDOW).json()["results"]}
    assert "Idle Ida" not in names


def test_ranking_by_cost_is_refused_where_the_order_would_leak_hidden_costs(org, clients, usage):
    refused = clients["engineer"].get(PEOPLE, {**WINDOW, "metric": "cost_usd"})
    assert refused.status_code == 403 and "metric=cost_usd" in refused.json()["detail"]
    assert clients["manager_x"].get(PEOPLE, {**WINDOW, "metric": "cost_usd"}).status_code == 403
    within_own_team = clients["manager_x"].get(PEOPLE, {**WINDOW, "metric": "cost_usd", "team": org["platform"].pk})
    assert within_own_team.status_code == 200
    assert clients["manager_x"].get(TEAMS, {**WINDOW, "metric": "cost_usd"}).status_code == 403
