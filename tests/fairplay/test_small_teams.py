"""A team under the minimum of active members shows no figures to an engineer anywhere: pages, charts, movers,
CSV and API."""

import csv
import io
from datetime import date

import pytest

from tests.factories import IdentityFactory, UsageRecordFactory, usage_for

TOKENS = 7_777_777  # Ivy's, the only active member of Infra (minimum 3)
DAY = date(2026, 9, 3)
WINDOW = {"period": "month", "date": "2026-09-15"}


@pytest.fixture
def engineer(org, client):
    usage_for(org["infra_engineer"], day=DAY, tokens=TOKENS)
    usage_for(org["product_engineer"], day=DAY, tokens=1_000)
    usage_for(org["product_engineer"], day=date(2026, 8, 3), tokens=1_000)
    client.force_login(org["product_engineer"].user)
    return client


def test_team_page_shows_no_figures_or_charts(engineer, org):
    body = engineer.get(f"/teams/{org['infra'].pk}/", WINDOW).content.decode()
    assert "fewer active members" in body
    assert f"{TOKENS:,}" not in body and "chart-trend" not in body
    assert "Ignored a filter" not in body  # the page's own team is no filter the engineer set


def test_team_filter_on_boards_movers_and_csv_is_dropped(engineer, org):
    team = {"team": org["infra"].pk, **WINDOW}
    for url in ("/", "/movers/"):
        response = engineer.get(url, team)
        body = response.content.decode()
        assert "Ignored a filter — team" in body
        assert response.context["query"].team_id is None
    exported = engineer.get("/", {**team, "format": "csv"}).content.decode()
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 2  # the whole board, not Infra's members as a team
    teams_csv = list(csv.DictReader(io.StringIO(engineer.get("/teams/", {**WINDOW, "format": "csv"}).content.decode())))
    infra = next(row for row in teams_csv if row["team"] == "Infra")
    assert infra["total_tokens"] == "" and infra["active_members"] == "" and infra["top_user"] == ""


def test_api_gives_no_figures(engineer, org):
    infra = org["infra"].pk
    people = engineer.get("/api/v1/leaderboard/people/", {"team": infra, **WINDOW})
    assert people.status_code == 403 and "fewer active members" in people.json()["detail"]
    assert engineer.get("/api/v1/leaderboard/teams/", {"team": infra, **WINDOW}).status_code == 403
    teams = engineer.get("/api/v1/leaderboard/teams/", WINDOW).json()["results"]
    row = next(t for t in teams if t["team"]["id"] == infra)
    assert row["figures_visible"] is False and row["total_tokens"] is None and row["top_person"] is None
    assert row["cache_hit_rate"] is None
    detail = engineer.get(f"/api/v1/teams/{infra}/", WINDOW).json()
    assert detail["totals"]["total_tokens"] is None and "member_list" not in detail
    assert engineer.get(f"/api/v1/teams/{infra}/usage/", WINDOW).status_code == 403  # the chart's data


def test_the_teams_manager_still_sees_them(org, client):
    usage_for(org["infra_engineer"], day=DAY, tokens=TOKENS)
    client.force_login(org["platform_manager"].user)
    response = client.get("/api/v1/leaderboard/people/", {"team": org["infra"].pk, **WINDOW})
    assert response.status_code == 200
    assert response.json()["results"][0]["total_tokens"] == TOKENS


def test_a_teams_shared_identities_count_as_no_active_member(engineer, org, settings):
    """Ivy is Infra's one active member; its shared key's usage belongs to no person, so it does not make up the
    minimum of two and the filter on Infra stays closed to an engineer outside it."""
    settings.TOKENBOARD_MIN_TEAM_SIZE = 2
    shared = IdentityFactory(person=None, attribution="shared", shared_team=org["infra"])
    UsageRecordFactory(identity=shared, day=DAY, provider=shared.provider, input_tokens=5, total_tokens=5)

    people = engineer.get("/api/v1/leaderboard/people/", {"team": org["infra"].pk, **WINDOW})

    assert people.status_code == 403 and "fewer active members" in people.json()["detail"]
