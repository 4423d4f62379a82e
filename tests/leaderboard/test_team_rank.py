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


@pytest.mark.django_db
def test_a_comparison_windows_subtree_sums_equal_the_per_person_sums(org):
    """The previous window's team ranks come from subtree totals summed in the database (_subtree_figures); they
    must equal the per-person sums the current window uses: a mid-window move (Ivy: Infra, then Product; both
    under Engineering, so one active member there), a shared key, requests known on one source only, cost."""
    from decimal import Decimal

    from django.http import QueryDict

    from leaderboard.selectors import _team_figures
    from leaderboard.windows import ranking_query_from
    from tests.factories import IdentityFactory, MembershipFactory, UsageRecordFactory
    from usage.services.standings import standings_refresh, team_ancestors

    ivy = org["infra_engineer"]
    ivy.memberships.update(end=date(2026, 9, 2))
    MembershipFactory(person=ivy, team=org["product"], start=date(2026, 9, 3))
    usage_for(ivy, day=date(2026, 9, 1), tokens=100, requests=3, cost_usd=Decimal("0.10"))
    usage_for(ivy, day=date(2026, 9, 4), tokens=200, provider="anthropic", requests=None)
    usage_for(org["product_engineer"], day=date(2026, 9, 4), tokens=400, cost_usd=Decimal("1.25"))
    shared = IdentityFactory(provider="openai", kind="api_key", attribution="shared", shared_team=org["platform"])
    UsageRecordFactory(identity=shared, day=date(2026, 9, 2), input_tokens=800, provider="openai", model="gpt-5")
    standings_refresh(all_days=True)

    query = ranking_query_from(QueryDict("start=2026-09-01&end=2026-09-05"))
    ancestors = team_ancestors()
    per_person = _team_figures(query.window, query, ancestors)
    subtree = _team_figures(query.window, query, ancestors, tops=False)
    assert {t: (f.totals, f.active_members) for t, f in subtree.items()} == {
        t: (f.totals, f.active_members) for t, f in per_person.items()
    }
    engineering = subtree[org["engineering"].pk]
    assert (engineering.totals.total_tokens, engineering.totals.requests, engineering.active_members) == (1500, 3, 2)
    assert engineering.totals.cost_usd == Decimal("1.35")
