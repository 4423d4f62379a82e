"""Anomaly review: a loop is held out of the rankings until an admin decides; a genuine heavy day is not."""

import math
import statistics
import threading
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from hypothesis import given
from hypothesis import strategies as st

from leaderboard.selectors import people_ranking
from leaderboard.windows import ranking_query_from
from tests.factories import IdentityFactory, UsageRecordFactory, person_in_team
from usage.access import viewer_for
from usage.checks import anomaly_rules_check
from usage.models import (
    DailyRollup,
    HoldStatus,
    StandingsDirtyDay,
    StandingWindow,
    UsageHold,
    UsageHour,
    UsageRecord,
)
from usage.services import standings
from usage.services.anomalies import HourlyShape
from usage.services.review import hold_decide
from usage.services.standings import ROLLUP_COLUMN_NAMES, standings_refresh

LOOP_DAY = date(2026, 9, 12)
TODAY = date(2026, 9, 15)


def history(identity, *, tokens: int, days: int = 10, before: date = LOOP_DAY):
    """Ordinary working days: mostly input and cache, some output."""
    for n in range(1, days + 1):
        UsageRecordFactory(
            identity=identity,
            day=before - timedelta(days=n),
            input_tokens=tokens * 6 // 10 + n * 1000,
            output_tokens=tokens * 4 // 10,
            requests=50,
        )


def hours(identity, day, counts: dict[int, int], tokens_per_request: int = 1000):
    for hour, requests in counts.items():
        UsageHour.objects.create(
            identity=identity,
            day=day,
            hour=hour,
            requests=requests,
            input_tokens=requests * tokens_per_request,
            total_tokens=requests * tokens_per_request,
        )


@pytest.fixture
def board(org):
    product = org["product"]
    looper = person_in_team(product, display_name="Lena Loop")
    steady = person_in_team(product, display_name="Sam Steady")
    key = IdentityFactory(person=looper, kind="api_key", value="sk-loop", label="night-agent")
    laptop = IdentityFactory(person=looper, kind="user_id", value="lena")
    history(laptop, tokens=100_000)
    history(IdentityFactory(person=steady), tokens=1_000_000)
    # The loop: a flat 24-hour cadence, huge input, no output.
    UsageRecordFactory(identity=key, day=LOOP_DAY, input_tokens=48_000_000, output_tokens=0, requests=2400)
    hours(key, LOOP_DAY, dict.fromkeys(range(24), 100), tokens_per_request=20_000)
    return {"looper": looper, "steady": steady, "key": key}


def month_rank(person, admin, metric="total_tokens"):
    query = ranking_query_from({"date": "2026-09-15", "period": "month", "metric": metric})
    standing = people_ranking(query, viewer_for(admin)).row_for(person.pk)
    return standing.rank, standing.totals.total_tokens


def test_a_synthetic_loop_is_held_and_does_not_move_its_owners_rank_until_cleared(board, org):
    standings_refresh(today=TODAY)
    hold = UsageHold.objects.get()
    assert (hold.person, hold.day, hold.status) == (board["looper"], LOOP_DAY, HoldStatus.HELD)
    assert set(hold.rules) >= {"cadence", "input_without_output", "baseline"}
    assert hold.evidence["hourly"] == [100] * 24
    assert hold.decisions.get().decided_by is None  # the hold is the rules' decision, recorded too
    # Held: Lena's loop does not count, so Sam (10M) stays ahead of her (~1M of real work).
    assert month_rank(board["looper"], org["admin"])[0] == 2
    assert month_rank(board["steady"], org["admin"])[0] == 1

    hold_decide(hold_id=hold.pk, status=HoldStatus.CLEARED, user=org["admin"], note="a real migration job")
    standings_refresh(today=TODAY)
    rank, tokens = month_rank(board["looper"], org["admin"])
    assert rank == 1 and tokens > 48_000_000
    decision = hold.decisions.order_by("decided_at").last()
    assert (decision.status, decision.decided_by, decision.note) == ("cleared", org["admin"], "a real migration job")
    assert UsageHold.objects.get().status == HoldStatus.CLEARED  # a refresh does not hold it again


@pytest.mark.needs_services
def test_a_day_the_check_beside_the_workers_refresh_holds_late_is_taken_out_of_the_rollups_already_written(
    transactional_db, board, org, monkeypatch
):
    """The worker's refresh is its own transaction, so its anomaly check runs on a connection of its own. Made to
    hold the loop only once the rollups include it, the refresh writes the held person's rollups of that day
    again, and leaves everyone else's as they were written."""
    UsageRecordFactory(
        identity=board["steady"].identities.get(), day=LOOP_DAY, input_tokens=600_000, output_tokens=400_000, requests=9
    )
    rollups_written = threading.Event()
    rollups_rewrite, anomalies_flag = standings._rollups_rewrite, standings.anomalies_flag

    rewritten = []  # (days, the people of the scope; None: whole days)

    def rollups_rewrite_then_signal(days, scope=None):
        rollups_rewrite(days, scope)
        rewritten.append((days, scope and scope.people))
        rollups_written.set()

    def anomalies_flag_late(days, people=None):
        assert rollups_written.wait(timeout=60)
        return anomalies_flag(days, people=people)

    monkeypatch.setattr(standings, "_rollups_rewrite", rollups_rewrite_then_signal)
    monkeypatch.setattr(standings, "anomalies_flag", anomalies_flag_late)
    result = standings_refresh(today=TODAY)

    assert "anomaly check, beside" in result.phases
    hold = UsageHold.objects.get()
    assert (hold.person, hold.day, hold.status) == (board["looper"], LOOP_DAY, HoldStatus.HELD)
    rank, tokens = month_rank(board["looper"], org["admin"])
    assert rank == 2 and tokens < 48_000_000  # the rollups written before the hold no longer count the loop
    assert month_rank(board["steady"], org["admin"]) == (1, 10_000_000 + 55_000 + 1_000_000)
    assert rewritten[-1] == ({LOOP_DAY}, {board["looper"].pk})  # the held person's day alone
    written = sorted(DailyRollup.objects.values_list(*ROLLUP_COLUMN_NAMES))
    monkeypatch.undo()
    standings_refresh(today=TODAY, all_days=True)
    assert sorted(DailyRollup.objects.values_list(*ROLLUP_COLUMN_NAMES)) == written  # as a rebuild writes them


@pytest.mark.needs_services
def test_a_rebuild_on_two_connections_checks_a_run_of_days_on_each_and_holds_the_loop(
    transactional_db, board, org, monkeypatch
):
    checked = []  # the days of each call, from both connections
    anomalies_flag = standings.anomalies_flag

    def anomalies_flag_noted(days, people=None):
        checked.append(sorted(days))
        return anomalies_flag(days, people=people)

    monkeypatch.setattr(standings, "anomalies_flag", anomalies_flag_noted)
    result = standings_refresh(today=TODAY, all_days=True, workers=2)

    usage_days = sorted(set(UsageRecord.objects.values_list("day", flat=True)))
    assert result.workers == 2 and len(checked) == 2
    first, second = sorted(checked)
    assert first + second == usage_days and len(first) - len(second) in (0, 1)  # consecutive runs, even
    hold = UsageHold.objects.get()
    assert (hold.person, hold.day, hold.status) == (board["looper"], LOOP_DAY, HoldStatus.HELD)
    assert month_rank(board["looper"], org["admin"])[0] == 2


@pytest.mark.needs_services
def test_a_check_beside_the_refresh_that_fails_fails_the_refresh_and_the_last_standings_stay(
    transactional_db, board, org, monkeypatch
):
    standings_refresh(today=TODAY)
    UsageRecordFactory(identity=board["key"], day=LOOP_DAY - timedelta(days=1), input_tokens=5, requests=1)

    def anomalies_flag_fails(days, people=None):
        raise DatabaseError("the anomaly check's connection was lost")

    monkeypatch.setattr(standings, "anomalies_flag", anomalies_flag_fails)
    with pytest.raises(DatabaseError, match="connection was lost"):
        standings_refresh(today=TODAY)
    assert StandingsDirtyDay.objects.filter(day=LOOP_DAY - timedelta(days=1)).exists()  # left for the next one
    assert "connection was lost" in standings.standings_status().last_error
    monkeypatch.undo()
    standings_refresh(today=TODAY)
    assert not StandingsDirtyDay.objects.exists()


def test_confirming_keeps_the_day_out_and_a_decision_cannot_repeat(board, org):
    standings_refresh(today=TODAY)
    hold = UsageHold.objects.get()
    hold_decide(hold_id=hold.pk, status=HoldStatus.CONFIRMED, user=org["admin"])
    standings_refresh(today=TODAY)
    assert month_rank(board["looper"], org["admin"])[0] == 2
    with pytest.raises(ValidationError, match="already"):
        hold_decide(hold_id=hold.pk, status=HoldStatus.CONFIRMED, user=org["admin"])
    with pytest.raises(ValidationError, match="unknown decision"):
        hold_decide(hold_id=hold.pk, status="maybe", user=org["admin"])


def test_a_genuine_heavy_day_with_a_normal_shape_is_not_held(org):
    worker = person_in_team(org["product"], display_name="Hattie Heavy")
    laptop = IdentityFactory(person=worker)
    history(laptop, tokens=100_000)
    # Twenty times her usual day, in working hours with an uneven shape and real output.
    UsageRecordFactory(identity=laptop, day=LOOP_DAY, input_tokens=1_400_000, output_tokens=600_000, requests=400)
    hours(laptop, LOOP_DAY, {9: 30, 10: 80, 11: 60, 13: 40, 14: 90, 15: 70, 16: 20, 17: 10})
    standings_refresh(today=TODAY)
    assert not UsageHold.objects.exists()
    assert month_rank(worker, org["admin"])[1] == 10 * 100_000 + 55_000 + 2_000_000  # the heavy day counts


def test_a_day_of_input_without_output_is_held_without_hours_and_a_heavy_day_with_output_is_not(org):
    quiet, busy = (person_in_team(org["product"], display_name=name) for name in ("Quinn Quiet", "Bo Busy"))
    for person, output in ((quiet, 0), (busy, 1_000_000)):
        laptop = IdentityFactory(person=person)
        history(laptop, tokens=100_000)
        # Far above their usual day (the baseline fires for both); no hourly data, so only the output rule can
        # make a second rule fire.
        UsageRecordFactory(identity=laptop, day=LOOP_DAY, input_tokens=5_000_000 - output, output_tokens=output)
    standings_refresh(today=TODAY)
    assert {(hold.person_id, hold.day): hold.rules for hold in UsageHold.objects.all()} == {
        (quiet.pk, LOOP_DAY): ["baseline", "input_without_output"]
    }


def test_a_decision_recomputes_exactly_the_held_day_and_the_windows_containing_it(board, org):
    # Usage in August too: its windows must not be recomputed by a September decision.
    UsageRecordFactory(identity=IdentityFactory(person=board["steady"]), day=date(2026, 8, 3), input_tokens=5)
    standings_refresh(today=TODAY)
    before = dict(StandingWindow.objects.values_list("pk", "computed_at"))
    hold = UsageHold.objects.get()
    hold_decide(hold_id=hold.pk, status=HoldStatus.CLEARED, user=org["admin"])
    assert list(StandingsDirtyDay.objects.values_list("day", flat=True)) == [LOOP_DAY]
    result = standings_refresh(today=TODAY)
    assert result.days == 1
    after = StandingWindow.objects.in_bulk(before)
    changed = {(w.period, w.start, w.end) for pk, w in after.items() if w.computed_at != before[pk]}
    untouched = {(w.period, w.start, w.end) for pk, w in after.items() if w.computed_at == before[pk]}
    assert ("month", date(2026, 9, 1), date(2026, 9, 30)) in changed  # the held day's windows were recomputed
    assert all(start <= LOOP_DAY <= end for _period, start, end in changed)
    assert ("month", date(2026, 8, 1), date(2026, 8, 31)) in untouched
    assert ("day", LOOP_DAY - timedelta(days=1), LOOP_DAY - timedelta(days=1)) in untouched


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min_rules": 0}, "min_rules=0"),  # every day with usage
        ({"min_rules": 5}, "min_rules=5"),  # no day
        ({"enabled": []}, "no rule is enabled"),
        ({"cadence": {"min_active_hours": 25, "max_variation": 0.25}}, "cadence.min_active_hours=25"),
        ({"input_without_output": {"min_prompt_tokens": 0, "max_output_share": 0.002}}, "min_prompt_tokens=0"),
        ({"input_without_output": {"min_prompt_tokens": 10**6, "max_output_share": 1}}, "max_output_share=1"),
        ({"baseline": {"history_days": 5, "min_history_days": 7, "z_threshold": 6}}, "more than history_days"),
        ({"baseline": {"history_days": 28, "min_history_days": 7, "z_threshold": 0}}, "z_threshold=0"),
    ],
)
def test_settings_that_fire_on_everyone_or_no_one_are_refused(settings, change, message):
    settings.TOKENBOARD_ANOMALY_RULES = {**settings.TOKENBOARD_ANOMALY_RULES, **change}
    errors = anomaly_rules_check(None)
    assert errors and any(message in error.msg for error in errors)
    assert all(error.id == "usage.E014" for error in errors)


def test_the_default_settings_pass_the_check():
    assert anomaly_rules_check(None) == []


def test_review_page_shows_the_evidence_and_decides(board, org, client):
    client.force_login(org["admin"])
    page = client.get("/review/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Lena Loop" in body and "Near-constant request cadence around the clock" in body
    assert "Requests per hour" in body and "night-agent" in body
    hold = UsageHold.objects.get()
    response = client.post(f"/review/{hold.pk}/decide/", {"status": "cleared", "note": "ok"})
    assert response.status_code == 302
    hold.refresh_from_db()
    assert (hold.status, hold.decided_by) == (HoldStatus.CLEARED, org["admin"])


def test_only_admins_review(board, org, client):
    standings_refresh(today=TODAY)
    hold = UsageHold.objects.get()
    client.force_login(org["platform_manager"].user)
    assert client.get("/review/").status_code == 403
    assert client.post(f"/review/{hold.pk}/decide/", {"status": "cleared"}).status_code == 403
    hold.refresh_from_db()
    assert hold.status == HoldStatus.HELD


def test_the_person_sees_their_day_under_review_and_adds_a_note(board, org, client):
    board["looper"].user = org["admin"].__class__.objects.create_user("lena", password="pw")
    board["looper"].save()
    client.force_login(board["looper"].user)
    page = client.get(f"/people/{board['looper'].pk}/", {"period": "month", "date": "2026-09-15"})
    body = page.content.decode()
    assert "Your usage under review" in body and "Save note" in body
    hold = UsageHold.objects.get()
    client.post(f"/review/{hold.pk}/note/", {"note": "my batch job"})
    hold.refresh_from_db()
    assert hold.person_note == "my batch job"
    # Someone else may not add a note to it.
    client.force_login(org["product_engineer"].user)
    assert client.post(f"/review/{hold.pk}/note/", {"note": "not mine"}).status_code == 403
    other = client.get(f"/people/{board['looper'].pk}/", {"period": "month", "date": "2026-09-15"})
    assert "under review" not in other.content.decode()


def test_the_demo_has_one_looping_key_held_on_the_review_page(org, client):
    from django.core.management import call_command

    call_command("seed_demo")
    hold = UsageHold.objects.get()  # one, and only the loop: no genuine demo day is held
    assert hold.status == HoldStatus.HELD and len(hold.evidence["hourly"]) == 24
    assert {"cadence", "input_without_output"} <= set(hold.rules)
    client.force_login(org["admin"])
    body = client.get("/review/").content.decode()
    assert hold.person.display_name in body and "apikey_01demo" in body
    # The loop's report is the org's report of that day: it replaces the day whole, so it carries everyone's
    # Anthropic usage of the day, and nobody else's usage is lost.
    loop_day = UsageRecord.objects.filter(provider="anthropic", day=hold.day).exclude(usage_kind="claude_code")
    assert loop_day.values("identity__person").distinct().count() > 1
    assert (
        not loop_day.exclude(import_batch__original_name="anthropic_usage_report_looping_key.json")
        .filter(import_batch__detected_format="anthropic_usage")
        .exists()
    )


def test_a_held_day_earns_no_title(board, org):
    from leaderboard.insights import title_winners

    standings_refresh(today=TODAY)
    query = ranking_query_from({"date": "2026-09-15", "period": "month"})
    assert dict((key, pid) for key, pid, _value in title_winners(query))["volume"] == board["steady"].pk
    hold_decide(hold_id=UsageHold.objects.get().pk, status=HoldStatus.CLEARED, user=org["admin"])
    standings_refresh(today=TODAY)
    assert dict((key, pid) for key, pid, _value in title_winners(query))["volume"] == board["looper"].pk


def test_the_raw_usage_list_leaves_held_days_out_like_the_rankings(board, org, client):
    client.force_login(org["admin"])
    params = {"period": "month", "date": "2026-09-15", "assigned": "true", "page_size": 500}
    records = client.get("/api/v1/usage/", params).json()["results"]
    ranked = client.get("/api/v1/leaderboard/people/", params).json()["results"]
    assert sum(r["total_tokens"] for r in records) == sum(r["total_tokens"] for r in ranked)
    assert all(r["day"] != LOOP_DAY.isoformat() or r["total_tokens"] < 48_000_000 for r in records)
    hold_decide(hold_id=UsageHold.objects.get().pk, status=HoldStatus.CLEARED, user=org["admin"])
    records = client.get("/api/v1/usage/", params).json()["results"]
    ranked = client.get("/api/v1/leaderboard/people/", params).json()["results"]
    assert sum(r["total_tokens"] for r in records) == sum(r["total_tokens"] for r in ranked) > 48_000_000


def test_an_hour_with_tokens_but_no_request_count_counts_as_one_request(org):
    looper = person_in_team(org["product"], display_name="Tess Tokens")
    key = IdentityFactory(person=looper, kind="api_key", value="sk-tokens-only")
    history(IdentityFactory(person=looper), tokens=100_000)
    UsageRecordFactory(identity=key, day=LOOP_DAY, input_tokens=48_000_000, output_tokens=0, requests=None)
    for hour in range(24):  # the source reports tokens by the hour, never how many requests
        UsageHour.objects.create(
            identity=key, day=LOOP_DAY, hour=hour, requests=0, input_tokens=2_000_000, total_tokens=2_000_000
        )
    standings_refresh(today=TODAY)
    hold = UsageHold.objects.get()
    assert "cadence" in hold.rules and hold.evidence["hourly"] == [1] * 24
    assert hold.evidence["fired"]["cadence"] == "one identity had requests in 24 of 24 hours, variation 0.00"


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=24, max_size=24))
def test_an_hourly_shapes_variation_is_its_counts_standard_deviation_over_their_mean(counts):
    shape = HourlyShape(sum(1 for n in counts if n), sum(counts), sum(n * n for n in counts))
    expected = statistics.pstdev(counts) / statistics.mean(counts) if any(counts) else math.inf
    assert shape.variation() == pytest.approx(expected, rel=1e-12)
