"""A team's rank is its rank among the teams of its level across the org, on its page as on the board and in
the API, and its arrow compares it with the same teams in the previous window."""

from datetime import date

import pytest

from tests.factories import TeamFactory, UserFactory, person_in_team, usage_for

DAY = date(2026, 9, 2)
QUERY = "period=custom&start=2026-09-02&end=2026-09-02"


@pytest.fixture
def eleven_teams(db):
    org = TeamFactory(name="Org", slug="org")
    teams = []
    for index in range(11):
        team = TeamFactory(name=f"Team {index:02d}", slug=f"team-{index}", parent=org)
        person = person_in_team(team)
        usage_for(person, day=DAY, tokens=(11 - index) * 1_000)  # Team 00 first … Team 10 last
        usage_for(person, day=date(2026, 9, 1), tokens=(index + 1) * 1_000)  # the day before: the reverse
        teams.append(team)
    return teams


def test_the_last_of_eleven_teams_shows_eleventh_on_its_page_board_and_api(eleven_teams, client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    last = eleven_teams[-1]
    page = client.get(f"/teams/{last.pk}/?{QUERY}").content.decode()
    rank_block = page.split("Team rank by", 1)[1][:600]
    assert "#11<" in rank_block
    assert "Down 10 from #1" in rank_block  # first of the eleven the day before
    board = client.get(f"/api/v1/leaderboard/teams/?{QUERY}").json()["results"]
    ranks = {row["team"]["id"]: (row["rank"], row["previous_rank"]) for row in board}
    assert ranks[last.pk] == (11, 1)
    assert ranks[eleven_teams[0].pk] == (1, 11)
