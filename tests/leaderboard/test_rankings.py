from array import array
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leaderboard import selectors
from leaderboard.selectors import RankedOrder, competition_ranks, people_ranking, person_totals, teams_ranking
from leaderboard.windows import QueryError, ranking_query_from, window_for
from tests.factories import UsageRecordFactory, usage_for
from usage.access import viewer_for
from usage.models import Membership
from usage.services.standings import one_generation, standings_generation, standings_refresh


def query(**params):
    return ranking_query_from({"date": "2026-09-15", **params})


def test_ties_share_a_rank():
    assert competition_ranks([9, 9, 5, 5, 5, 1]) == [1, 1, 3, 3, 3, 6]


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("day", date(2026, 9, 15), date(2026, 9, 15)),
        ("week", date(2026, 9, 14), date(2026, 9, 20)),
        ("month", date(2026, 9, 1), date(2026, 9, 30)),
        ("quarter", date(2026, 7, 1), date(2026, 9, 30)),
        ("year", date(2026, 1, 1), date(2026, 12, 31)),
        ("7d", date(2026, 9, 9), date(2026, 9, 15)),
        ("90d", date(2026, 6, 18), date(2026, 9, 15)),
    ],
)
def test_windows_are_inclusive_calendar_ranges(period, start, end):
    window = window_for(period, date(2026, 9, 15))
    assert (window.start, window.end) == (start, end)


def test_the_previous_window_has_the_same_size_or_is_the_previous_calendar_period():
    assert window_for("month", date(2026, 3, 15)).previous() == window_for("month", date(2026, 2, 1))
    previous = window_for("7d", date(2026, 9, 15)).previous()
    assert (previous.start, previous.end) == (date(2026, 9, 2), date(2026, 9, 8))


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"period": "fortnight"}, "period"),
        ({"metric": "vibes"}, "metric"),
        ({"date": "2026-13-01"}, "date"),
        ({"period": "custom", "start": "2026-09-10", "end": "2026-09-01"}, "end"),
        ({"team": "x"}, "team"),
        ({"team": "١٢"}, "team"),
        ({"team": "99999999999999999999"}, "team"),  # beyond a 64-bit id: a bad parameter, not a database error
        ({"date": "0001-01-02", "period": "30d"}, "date"),
    ],
)
def test_bad_parameters_name_themselves(params, param):
    with pytest.raises(QueryError) as raised:
        ranking_query_from(params)
    assert raised.value.param == param


@pytest.mark.django_db
def test_people_are_ranked_with_ties_and_previous_rank(org):
    ivy, paul, pat = org["infra_engineer"], org["product_engineer"], org["platform_manager"]
    for person, now, before in ((ivy, 500, 10), (paul, 500, 300), (pat, 100, 0)):
        usage_for(person, day=date(2026, 9, 3), tokens=now)
        if before:
            usage_for(person, day=date(2026, 8, 3), tokens=before)
    standings_refresh()  # what the refresh worker does after each commit
    standings = people_ranking(query(), viewer_for(org["admin"]))
    # Ivy and Paul tie on 500 (ordered by name); last month Paul led 300 to 10; Pat had no usage.
    assert [(s.display_name, s.rank, s.previous_rank) for s in standings] == [
        ("Ivy Infra", 1, 2),
        ("Paul Product", 1, 1),
        ("Pat Manager", 3, None),
    ]
    assert standings[0].share_of_leader == 1.0 and standings[2].share_of_leader == 0.2


@pytest.mark.django_db
def test_engineers_do_not_see_others_cost_or_email(org):
    usage_for(org["product_engineer"], day=date(2026, 9, 3), tokens=10)
    usage_for(org["infra_engineer"], day=date(2026, 9, 3), tokens=5)
    standings_refresh()  # what the refresh worker does after each commit
    standings = {s.person_id: s for s in people_ranking(query(), viewer_for(org["infra_engineer"].user))}
    assert standings[org["product_engineer"].pk].email is None and not standings[org["product_engineer"].pk].detail
    assert standings[org["infra_engineer"].pk].email == org["infra_engineer"].email


@pytest.mark.django_db
def test_team_totals_follow_the_membership_on_each_day(org, settings):
    settings.TOKENBOARD_MIN_TEAM_SIZE = 1
    ivy = org["infra_engineer"]
    # Ivy moves from Infra to Product on 2026-09-10: usage before counts for Infra, after for Product.
    Membership.objects.filter(person=ivy).update(end=date(2026, 9, 9))
    Membership.objects.create(person=ivy, team=org["product"], start=date(2026, 9, 10))
    usage_for(ivy, day=date(2026, 9, 5), tokens=70)
    usage_for(ivy, day=date(2026, 9, 12), tokens=30)
    standings_refresh()  # what the refresh worker does after each commit
    teams = {t.name: t for t in teams_ranking(query(), viewer_for(org["admin"]))}
    assert teams["Infra"].totals.total_tokens == 70
    assert teams["Platform"].totals.total_tokens == 70  # subtree total includes Infra
    assert teams["Product"].totals.total_tokens == 30
    assert teams["Engineering"].totals.total_tokens == 100
    assert teams["Engineering"].active_members == 1
    team_filtered = people_ranking(query(team=str(org["product"].pk)), viewer_for(org["admin"]))
    assert [(s.person_id, s.totals.total_tokens) for s in team_filtered] == [(ivy.pk, 30)]


@pytest.mark.django_db
def test_a_persons_cost_report_replaces_their_estimate_and_an_unowned_one_counts_for_nobody(org):

    ivy = org["infra_engineer"]
    usage_for(ivy, day=date(2026, 9, 3), tokens=1000, cost_usd=Decimal("1.50"), cost_source="estimated")
    # The same spend as billed by the provider's cost report for Ivy's key: the bill replaces the estimate.
    usage_for(ivy, day=date(2026, 9, 3), tokens=0, usage_kind="cost", cost_usd=Decimal("1.40"), cost_source="billed")
    UsageRecordFactory(  # a project nobody owns: account-level
        day=date(2026, 9, 3), usage_kind="cost", cost_usd=Decimal("9.00"), cost_source="billed"
    )
    standings_refresh()  # what the refresh worker does after each commit
    [standing] = people_ranking(query(), viewer_for(org["admin"]))
    assert (standing.totals.cost_usd, standing.totals.billed_cost_usd) == (Decimal("1.40"), Decimal("1.40"))
    assert standing.totals.total_tokens == 1000


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"period": "day", "date": "2026-09-03", "provider": "anthropic"},  # one provider's day: from the rollups
        {"start": "2026-08-30", "end": "2026-09-16", "provider": "anthropic"},  # weeks kept, edge days not
        {"start": "2026-08-30", "end": "2026-09-16"},
        {"period": "30d", "date": "2026-09-20", "provider": "openai"},  # a rolling window in the past
    ],
)
def test_windows_that_are_not_kept_are_summed_exactly_from_the_kept_ones(org, params):
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    records = [
        usage_for(person, day=day, tokens=tokens, provider=provider, model="m")
        for person, day, tokens, provider in (
            (ivy, date(2026, 8, 30), 7, "anthropic"),
            (ivy, date(2026, 9, 3), 11, "anthropic"),
            (ivy, date(2026, 9, 3), 13, "openai"),
            (paul, date(2026, 9, 3), 17, "anthropic"),
            (paul, date(2026, 9, 10), 19, "anthropic"),
            (paul, date(2026, 9, 16), 23, "openai"),
            (paul, date(2026, 9, 17), 29, "anthropic"),  # outside every window asked for but the 30 days
        )
    ]
    standings_refresh()
    query_ = ranking_query_from(params)
    expected: dict[int, int] = {}
    for record in records:
        in_window = query_.window.start <= record.day <= query_.window.end
        if in_window and (not query_.provider or record.provider == query_.provider):
            person_id = record.identity.person_id
            expected[person_id] = expected.get(person_id, 0) + record.total_tokens
    ranking = people_ranking(query_, viewer_for(org["admin"]))
    assert {s.person_id: s.totals.total_tokens for s in ranking} == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-08-30", "end": "2026-09-16"},
        {"start": "2026-08-30", "end": "2026-09-16", "team": "platform"},
        {"period": "30d", "date": "2026-09-20", "model": "gpt-5"},
        {"start": "2026-08-30", "end": "2026-09-16", "metric": "output_share"},
    ],
)
def test_a_computed_ranking_reads_the_figures_of_the_people_it_shows(org, params, monkeypatch):
    # A ranking that is not kept sums only its metric to rank; the figures are read for the people shown, by id
    # for a page and for everyone at once past FIGURES_BY_PERSON_MOST: both give every figure of the window.
    people = [org["infra_engineer"], org["product_engineer"], org["platform_manager"]]
    # Ivy moves to Product mid-window: with the Platform filter, only her days in Platform count.
    Membership.objects.filter(person=people[0]).update(end=date(2026, 9, 9))
    Membership.objects.create(person=people[0], team=org["product"], start=date(2026, 9, 10))
    for n, person in enumerate(people, start=1):
        for day in (date(2026, 8, 30), date(2026, 9, 3), date(2026, 9, 16)):
            usage_for(
                person,
                day=day,
                tokens=100 * n + day.day,
                output_tokens=10 * n,
                requests=n,
                cost_usd=Decimal(n) / 7,
                model="gpt-5" if n != 2 or day.day == 3 else "o3",
            )
    standings_refresh()
    if params.get("team"):
        params = {**params, "team": str(org["platform"].pk)}
    query_ = ranking_query_from(params)
    admin = viewer_for(org["admin"])
    expected = person_totals(query_.window, model=query_.model, team_id=query_.team_id)
    by_id = people_ranking(query_, admin)
    shown = [by_id[i] for i in range(len(by_id))] + (by_id.below_minimum() or [])
    monkeypatch.setattr(selectors, "FIGURES_BY_PERSON_MOST", 0)
    at_once = people_ranking(query_, admin)
    assert [(s.person_id, s.rank, s.totals) for s in at_once[0 : len(at_once)]] == [
        (s.person_id, s.rank, s.totals) for s in shown if s.rank
    ]
    assert len(expected) >= 2
    assert {s.person_id: s.totals for s in shown} == expected
    assert by_id.leader_value() == at_once.leader_value() == shown[0].totals.metric(query_.metric)


@pytest.mark.django_db
def test_a_day_ranked_on_another_metric_is_ordered_when_asked(org):
    # Day windows keep the default metric's order only; any other metric is ranked from the day's totals.
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    usage_for(ivy, day=date(2026, 9, 2), tokens=10, requests=9)
    usage_for(paul, day=date(2026, 9, 2), tokens=50, requests=3)
    usage_for(paul, day=date(2026, 9, 1), tokens=1, requests=30)  # the previous day: Paul led on requests
    standings_refresh()
    admin = viewer_for(org["admin"])
    by_requests = people_ranking(query(period="day", date="2026-09-02", metric="requests"), admin)
    assert [(s.person_id, s.rank, s.previous_rank) for s in by_requests] == [(ivy.pk, 1, None), (paul.pk, 2, 1)]
    by_tokens = people_ranking(query(period="day", date="2026-09-02"), admin)
    assert [s.person_id for s in by_tokens] == [paul.pk, ivy.pk]


def ivy_and_paul_in_september(org):
    """Ivy 50 tokens on 3 September, Paul 40 on the 4th, refreshed."""
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    usage_for(ivy, day=date(2026, 9, 3), tokens=50)
    usage_for(paul, day=date(2026, 9, 4), tokens=40)
    standings_refresh()
    return ivy, paul


def calls_of(monkeypatch, name: str) -> list[tuple]:
    """The positional arguments of every call of selectors.<name> from now on; the calls still run."""
    calls = []
    original = getattr(selectors, name)
    monkeypatch.setattr(selectors, name, lambda *a, **k: calls.append(a) or original(*a, **k))
    return calls


@pytest.mark.django_db
def test_a_computed_ranking_is_summed_once_per_refresh(org, monkeypatch):
    ivy, paul = ivy_and_paul_in_september(org)
    summed = calls_of(monkeypatch, "_ranked_arrays")
    admin = viewer_for(org["admin"])
    custom = {"start": "2026-09-02", "end": "2026-09-05"}

    def board():
        return [(s.person_id, s.rank, s.totals.total_tokens) for s in people_ranking(query(**custom), admin)]

    assert board() == [(ivy.pk, 1, 50), (paul.pk, 2, 40)]
    assert board() == [(ivy.pk, 1, 50), (paul.pk, 2, 40)]
    assert len(summed) == 2  # the window and its comparison window, once each
    usage_for(paul, day=date(2026, 9, 5), tokens=30)
    standings_refresh()  # new standings: the cached order is not theirs
    assert board() == [(paul.pk, 1, 70), (ivy.pk, 2, 50)]
    assert len(summed) == 4


@pytest.mark.django_db
def test_a_per_refresh_answer_is_read_from_the_shared_cache_once_per_process(org, monkeypatch):
    usage_for(org["infra_engineer"], day=date(2026, 9, 3), tokens=50)
    standings_refresh()
    computed = []

    def answer():
        return selectors.per_refresh("example", ("asked",), lambda: computed.append(1) or ["order"])

    assert answer() == ["order"] and computed == [1]
    shared_cache = selectors.cache
    monkeypatch.setattr(selectors, "cache", None)  # this process's copy: the shared cache is not read
    assert answer() == ["order"]
    monkeypatch.setattr(selectors, "cache", shared_cache)
    monkeypatch.setattr(selectors, "_in_process", type(selectors._in_process)())  # another process
    assert answer() == ["order"] and computed == [1]  # from the shared cache
    usage_for(org["product_engineer"], day=date(2026, 9, 4), tokens=40)
    standings_refresh()  # new standings: neither copy is theirs
    assert answer() == ["order"] and computed == [1, 1]


@pytest.mark.django_db
def test_movers_are_read_once_per_refresh(org, monkeypatch):
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    usage_for(ivy, day=date(2026, 8, 3), tokens=10)
    usage_for(paul, day=date(2026, 8, 4), tokens=20)
    usage_for(ivy, day=date(2026, 9, 3), tokens=50)
    usage_for(paul, day=date(2026, 9, 4), tokens=40)
    standings_refresh()
    read = []
    movers_pick = selectors.PeopleRanking._movers_pick
    monkeypatch.setattr(
        selectors.PeopleRanking, "_movers_pick", lambda self, limit: read.append(limit) or movers_pick(self, limit)
    )
    admin = viewer_for(org["admin"])

    def movers():
        return [[s.person_id for s in kind] for kind in people_ranking(query(period="month"), admin).movers(5)]

    assert movers() == movers() == [[ivy.pk], [paul.pk], []]
    assert read == [15]  # kept at the movers page's length; shorter lists are its start
    usage_for(paul, day=date(2026, 9, 5), tokens=30)
    standings_refresh()
    assert movers() == [[], [], []]
    assert read == [15, 15]


@pytest.mark.django_db
def test_a_search_in_a_computed_ranking_keeps_each_persons_real_rank(org):
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    usage_for(ivy, day=date(2026, 9, 3), tokens=50)
    usage_for(paul, day=date(2026, 9, 4), tokens=40)
    standings_refresh()
    admin = viewer_for(org["admin"])
    custom = {"start": "2026-09-02", "end": "2026-09-05"}
    found = people_ranking(query(**custom, q=paul.display_name.split()[0]), admin)
    assert len(found) == 1
    assert [(s.person_id, s.rank, s.totals.total_tokens) for s in found[0:1]] == [(paul.pk, 2, 40)]


@pytest.mark.parametrize("ids", [[7, 3, 9, 4], [7_000_003, 3, 9_000_000, 4]], ids=["dense ids", "sparse ids"])
def test_a_ranked_order_finds_each_persons_rank_and_place(ids):
    order = RankedOrder(array("q", ids), array("q", [1, 2, 2, 0]))
    assert [order.find(pid).rank for pid in ids] == [1, 2, 2, 0]
    assert order.find(5) is None and order.find(-1) is None and order.find(10**12) is None
    assert order.ranks_of([ids[2], 5, ids[0]]) == {ids[2]: 2, ids[0]: 1}
    ranked, apart = order.split()
    assert (list(ranked.ids), list(apart.ids)) == (ids[:3], ids[3:])
    assert ranked.find(ids[3]) is None and apart.find(ids[3]).rank == 0


def generation_reads(queries) -> int:
    return sum('"usage_standingsstate"."generation"' in q["sql"] and "WHERE" in q["sql"] for q in queries)


@pytest.mark.django_db
def test_a_request_reads_the_standings_generation_once_however_many_kept_answers_it_uses(client, org):
    ivy = org["infra_engineer"]
    for month in (6, 7, 8, 9):
        usage_for(ivy, day=date(2026, month, 3), tokens=50 * month)
    standings_refresh()
    client.force_login(org["admin"])
    client.get(f"/people/{ivy.pk}/", {"period": "month", "date": "2026-09-15"})  # the board's pieces kept
    with CaptureQueriesContext(connection) as queries:
        # Rank history: a board for each of the last months, each kept per refresh.
        assert client.get(f"/people/{ivy.pk}/", {"period": "month", "date": "2026-09-15"}).status_code == 200
    assert generation_reads(queries) == 1


@pytest.mark.django_db
def test_a_refresh_within_one_generation_is_seen_by_what_follows_it(org):
    usage_for(org["infra_engineer"], day=date(2026, 9, 3), tokens=50)
    standings_refresh()
    with one_generation():
        before = standings_generation()
        assert standings_generation() == before
        usage_for(org["product_engineer"], day=date(2026, 9, 4), tokens=40)
        standings_refresh()  # as an eager task in a request
        assert standings_generation() not in (before, None)


@pytest.mark.django_db
def test_the_teams_board_is_computed_once_per_refresh_for_every_viewer(org, monkeypatch):
    ivy, paul = ivy_and_paul_in_september(org)
    computed = calls_of(monkeypatch, "_team_figures")

    def board(user) -> dict[int, tuple]:
        standings = teams_ranking(query(period="month"), viewer_for(user))
        return {s.team_id: (s.rank, s.totals.total_tokens if s.visible else None) for s in standings}

    admin_board = board(org["admin"])
    # Platform (Ivy's 50 in Infra below it) and Product (Paul's 40) are ranked against each other.
    assert admin_board[org["platform"].pk] == (1, 50) and admin_board[org["product"].pk] == (2, 40)
    assert len(computed) == 2  # the month and the month before
    assert {team: rank for team, (rank, _total) in board(ivy.user).items()} == {
        team: rank for team, (rank, _total) in admin_board.items()
    }
    assert len(computed) == 2  # the engineer's board is the admin's, figures hidden where the rules say
    usage_for(paul, day=date(2026, 9, 5), tokens=30)
    standings_refresh()  # new standings: the kept board is not theirs
    assert board(org["admin"])[org["product"].pk] == (1, 70)
    assert len(computed) == 4
