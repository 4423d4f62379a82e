"""Insights behind the pages: streaks, titles, rank history, number formatting and chart colours."""

from array import array
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import QueryDict

from leaderboard import selectors
from leaderboard.charts import FAMILY_COLOURS, colour_for, model_palette
from leaderboard.insights import history_windows, rank_history, window_titles
from leaderboard.selectors import PeopleRanking, people_ranking
from leaderboard.templatetags.tokenboard import compact, percent, usd
from leaderboard.windows import org_today, ranking_query_from, window_for
from tests.factories import TeamFactory, person_in_team, usage_for
from usage.access import viewer_for
from usage.services.standings import standings_refresh


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1_000, "1K"),
        (1_234, "1.2K"),
        (999_999, "1M"),
        (1_250_000, "1.3M"),
        (123_456_789, "123M"),
        (3_400_000_000, "3.4B"),
        (None, "—"),
    ],
)
def test_token_counts_read_as_short_numbers(value, text):
    assert compact(value) == text


def test_money_reads_as_dollars_and_cents():
    assert usd(Decimal("1234.555")) == "$1,234.56"
    assert usd(Decimal("0.001")) == "<$0.01"
    assert usd(Decimal(0)) == "$0.00"
    assert percent(0.004) == "<1%" and percent(0.62) == "62%"


@pytest.mark.django_db
def test_longest_streaks_count_consecutive_days_only(org):
    from leaderboard.insights import _longest_streaks
    from leaderboard.selectors import rollups_in_window

    d = date(2026, 9, 1)
    for offset in (0, 1, 3, 4, 5, 8):  # runs of 2, 3 and 1 (two models on one day count once)
        usage_for(org["infra_engineer"], day=d + timedelta(offset), tokens=10)
    usage_for(org["infra_engineer"], day=d + timedelta(4), tokens=10, model="o3")
    usage_for(org["product_engineer"], day=d, tokens=10)
    standings_refresh()
    records = rollups_in_window(window_for("month", d)).filter(person__isnull=False)
    assert _longest_streaks(records) == {org["infra_engineer"].pk: 3, org["product_engineer"].pk: 1}


@pytest.mark.django_db
def test_a_long_streak_outside_the_most_active_people_still_wins_the_title():
    team = TeamFactory()
    start = date(2026, 9, 1)
    # Ten people active on four scattered days each (streak 1), one person on three days in a row.
    for index in range(10):
        person = person_in_team(team, display_name=f"Scattered {index}")
        for offset in (0, 2, 4, 6):
            usage_for(person, day=start + timedelta(offset), tokens=1000)
    steady = person_in_team(team, display_name="Steady")
    for offset in (10, 11, 12):
        usage_for(steady, day=start + timedelta(offset), tokens=10)
    query = ranking_query_from(QueryDict("period=month&date=2026-09-15"))
    standings_refresh()  # what the refresh worker does after each commit
    titles = {t.rule.key: t for t in window_titles(query, viewer_for(AnonymousUser()))}
    assert titles["streak"].person_id == steady.pk and titles["streak"].value == "3 days"


@pytest.mark.django_db
def test_titles_are_warmed_after_a_refresh_so_no_page_computes_them(
    org, sent_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    from leaderboard import insights
    from usage.tasks import refresh_standings

    today = org_today()
    usage_for(org["infra_engineer"], day=today, tokens=10)
    usage_for(org["product_engineer"], day=today, tokens=20)
    with django_capture_on_commit_callbacks(execute=True):
        refresh_standings.apply()
    getattr(sent_tasks, "leaderboard.warm_titles").assert_called_once_with()

    assert insights.titles_warm() == 9  # every standard period but custom
    computed = []
    monkeypatch.setattr(insights, "_title_winners", lambda query: computed.append(query) or [])
    for period in ("day", "week", "month", "quarter", "year", "all", "7d", "30d", "90d"):
        winners = insights.title_winners(ranking_query_from(QueryDict(f"period={period}")))
        assert ("volume", org["product_engineer"].pk, "20 tokens") in winners, period
    assert computed == []  # all from the cache
    insights.title_winners(ranking_query_from(QueryDict("period=month&provider=anthropic")))
    assert len(computed) == 1  # a filtered board is not warmed

    read = []
    monkeypatch.setattr(PeopleRanking, "_movers_pick", lambda self, limit: read.append(limit) or [[], [], []])
    for period in ("day", "week", "month", "quarter", "year", "all", "7d", "30d", "90d"):
        ranking = people_ranking(ranking_query_from(QueryDict(f"period={period}")), viewer_for(org["admin"]))
        movers = insights.movers_from(ranking, limit=5)  # the overview's; the movers page shows 15
        if movers.has_previous_window:  # all time has none
            newcomers = [s.person_id for s in movers.newcomers]
            assert newcomers == [org["product_engineer"].pk, org["infra_engineer"].pk], period
    assert read == []  # all from the cache

    summed = []
    monkeypatch.setattr(selectors, "_ranked_arrays", lambda *a, **k: summed.append(a) or (array("q"), array("q")))
    for period in ("7d", "30d", "90d"):  # one step back: kept, compared with a window that is not
        query = ranking_query_from(QueryDict(f"period={period}"))
        back = ranking_query_from(QueryDict(f"period={period}&date={query.window.start - timedelta(days=1)}"))
        people_ranking(back, viewer_for(org["admin"])).movers(5)
    assert summed == []  # ranked by the warm-up


@pytest.mark.django_db
def test_the_boards_on_metrics_whose_order_is_not_kept_are_ranked_by_the_warm_up(org, monkeypatch):
    from leaderboard.tasks import warm_titles
    from usage.figures import KEPT_METRICS, METRICS

    today = org_today()
    # Most tokens and least cost against fewer tokens and more cost: the cost board is not the tokens board.
    usage_for(org["infra_engineer"], day=today, tokens=500, cost_usd=Decimal("1.00"))
    usage_for(org["product_engineer"], day=today, tokens=200, cost_usd=Decimal("9.00"))
    standings_refresh()
    warm_titles()

    summed, tops = [], []
    monkeypatch.setattr(selectors, "_ranked_arrays", lambda *a, **k: summed.append(a) or (array("q"), array("q")))
    monkeypatch.setattr(selectors, "team_top_people", lambda *a: tops.append(a) or {})
    admin = viewer_for(org["admin"])
    for metric in METRICS:
        for period in ("day", "week", "month", "quarter", "year", "all", "7d", "30d", "90d"):
            query = ranking_query_from(QueryDict(f"period={period}&metric={metric}"))
            people = people_ranking(query, admin)
            if metric == "cost_usd":
                assert [s.person_id for s in people[:2]] == [org["product_engineer"].pk, org["infra_engineer"].pk]
            teams = {t.team_id: t for t in selectors.teams_ranking(query, admin)}
            if metric == "cost_usd":
                assert teams[org["engineering"].pk].top_person_id == org["product_engineer"].pk
            elif metric in KEPT_METRICS:
                assert teams[org["engineering"].pk].top_person_id == org["infra_engineer"].pk
    assert summed == []  # every order from the cache
    assert tops == []


@pytest.mark.django_db
def test_the_palette_and_filter_lists_are_warmed_after_a_refresh_for_every_web_process(org, monkeypatch):
    from leaderboard import charts, views
    from leaderboard.tasks import warm_titles
    from usage.models import DailyRollup

    usage_for(org["infra_engineer"], day=org_today(), tokens=10, model="gpt-5")
    standings_refresh()
    warm_titles()
    monkeypatch.setattr(DailyRollup, "objects", None)  # from now on, nothing may scan the rollups
    assert list(charts.model_palette()) == ["GPT-5"]  # the catalog's name
    assert [model for model, _providers in views.filter_options()["model_options"]] == ["GPT-5"]


@pytest.mark.django_db
def test_rank_history_ranks_the_person_in_each_earlier_window(org):
    usage_for(org["infra_engineer"], day=date(2026, 7, 3), tokens=10)
    usage_for(org["product_engineer"], day=date(2026, 7, 3), tokens=20)
    usage_for(org["infra_engineer"], day=date(2026, 9, 3), tokens=30)
    query = ranking_query_from(QueryDict("period=month&date=2026-09-15"))
    standings_refresh()  # what the refresh worker does after each commit
    history = rank_history(query, org["infra_engineer"].pk, count=3)
    assert [(label, rank) for _start, label, rank in history] == [("Jul 2026", 2), ("Aug 2026", None), ("Sep 2026", 1)]


def test_history_of_all_time_is_monthly():
    windows = history_windows(window_for("all", date(2026, 9, 15)), count=3)
    assert [w.start for w in windows] == [date(2026, 7, 1), date(2026, 8, 1), date(2026, 9, 1)]


@pytest.mark.django_db
def test_models_get_distinct_stable_colours_and_providers_fixed_ones(org):
    for model in ("gpt-5", "gpt-4.1", "claude-sonnet-4-5"):
        usage_for(org["infra_engineer"], day=date(2026, 9, 3), tokens=10, model=model)
    standings_refresh()  # the palette names the rollups' (canonical) models
    palette = model_palette()
    assert len(set(palette.values())) == 3  # no two models share a colour
    assert palette["Claude Sonnet 4.5"] == FAMILY_COLOURS["claude-sonnet"]  # by family: the same on every page
    assert colour_for("openai", palette) == colour_for("openai") != colour_for("anthropic")
