"""The ranking endpoints send the rows their views build without running the serializers over them
(leaderboard/api/views.py: 2–3 ms of a request at 85,000 people). Each row must be exactly what its serializer
renders, key order included, for every shape a row takes: cost shown or not, figures hidden, per member, a top
person, an opted-out person's pseudonym."""

import json

import pytest
from rest_framework.renderers import JSONRenderer

from leaderboard.api.serializers import PersonStandingSerializer, TeamStandingSerializer

from .conftest import WINDOW

PEOPLE = "/api/v1/leaderboard/people/"
TEAMS = "/api/v1/leaderboard/teams/"


def rendered_by(serializer_class, rows: list[dict]) -> list[dict]:
    return json.loads(JSONRenderer().render(serializer_class(rows, many=True).data))


@pytest.mark.parametrize("role", ["engineer", "manager_x", "admin"])
@pytest.mark.parametrize(
    ("url", "params", "serializer_class"),
    [
        (PEOPLE, {}, PersonStandingSerializer),
        (PEOPLE, {"metric": "cache_hit_rate"}, PersonStandingSerializer),
        (TEAMS, {}, TeamStandingSerializer),
        (TEAMS, {"per_capita": "true"}, TeamStandingSerializer),
    ],
)
def test_ranking_rows_are_what_their_serializer_renders(
    clients, usage, org, settings, role, url, params, serializer_class
):
    settings.TOKENBOARD_MIN_TEAM_SIZE = 2  # Infra and Product (one active member each) hide their figures
    org["product_engineer"].show_name = False
    org["product_engineer"].save()

    response = clients[role].get(url, {**WINDOW, **params})

    assert response.status_code == 200
    rows = response.json()["results"]
    assert rows
    assert [list(row.items()) for row in rows] == [list(row.items()) for row in rendered_by(serializer_class, rows)]


def test_the_rows_carry_money_as_six_place_strings_and_hidden_figures_as_nulls(clients, usage, settings):
    settings.TOKENBOARD_MIN_TEAM_SIZE = 2

    teams = {row["team"]["name"]: row for row in clients["admin"].get(TEAMS, WINDOW).json()["results"]}
    engineer_view = {row["team"]["name"]: row for row in clients["engineer"].get(TEAMS, WINDOW).json()["results"]}

    assert teams["Engineering"]["cost_usd"] == "6.750000"
    assert teams["Engineering"]["per_member"]["cost_usd"] == "2.250000"
    assert teams["Engineering"]["cost_per_mtok"] == "1125.000000"
    assert engineer_view["Product"]["figures_visible"] is False
    assert (
        engineer_view["Product"]["total_tokens"] is None
        and engineer_view["Product"]["per_member"]["total_tokens"] is None
    )
    assert "cost_usd" not in engineer_view["Engineering"]
