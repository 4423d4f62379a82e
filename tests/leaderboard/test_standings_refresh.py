"""A refresh of the standings is all or nothing: one that fails, runs into another or is killed leaves the last
good standings serving and the changed days marked, and the next refresh makes them exact
(usage.services.standings)."""

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from unittest.mock import patch

import psycopg
import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.test import Client

from leaderboard import selectors
from tests.factories import IdentityFactory, MembershipFactory, UsageRecordFactory, UserFactory, usage_for
from tests.leaderboard.standings_truth import standings_differences
from usage.models import (
    DailyRollup,
    HoldStatus,
    ImportBatch,
    Membership,
    SourcePrecedence,
    StandingOrder,
    StandingsDirtyDay,
    StandingsDirtyPerson,
    StandingsState,
    StandingWindow,
    TeamMemberStanding,
    TeamStanding,
    UsageHold,
    UsageRecord,
)
from usage.services import standings
from usage.services.standings import standings_mark_days, standings_mark_people, standings_refresh, standings_status

TODAY = date(2026, 9, 15)
ROOT = Path(__file__).resolve().parents[2]
READ_MODELS = (DailyRollup, StandingWindow, TeamMemberStanding, TeamStanding)


@pytest.fixture(autouse=True)
def _standings_refreshed_before_requests(monkeypatch):
    """As tests/conftest.py (the worker's refresh done before each test request), but like the real worker a
    refresh that fails does not stop the page from being served: the failure is recorded and logged, and the
    page shows the last good standings."""
    original = Client.request

    def request(self, **kwargs):
        if StandingsDirtyDay.objects.exists():
            try:
                standings_refresh()
            except DatabaseError:
                pass  # the task fails and is retried; the request is served meanwhile
        return original(self, **kwargs)

    monkeypatch.setattr(Client, "request", request)


def read_models() -> dict[str, list[dict]]:
    """Every row of every read model, as stored (ids and computed_at included)."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in READ_MODELS}


@pytest.fixture
def history(org):
    """Two months of usage in both providers, a cost report, unassigned usage and a mid-month team move, with
    standings refreshed on TODAY: the last good standings."""
    ivy, paul, pat, prue = (
        org[k] for k in ("infra_engineer", "product_engineer", "platform_manager", "product_manager")
    )
    for person, day, tokens, provider, cost in (
        (ivy, date(2026, 8, 3), 500, "openai", "1.25"),
        (ivy, date(2026, 9, 1), 700, "anthropic", "0"),
        (paul, date(2026, 8, 31), 500, "openai", "0.5"),
        (paul, date(2026, 9, 14), 900, "openai", "2"),
        (pat, date(2026, 9, 1), 700, "openai", "0.75"),
        (prue, date(2026, 7, 31), 300, "anthropic", "0.3"),
        (prue, date(2026, 9, 15), 100, "anthropic", "0"),
    ):
        usage_for(person, day=day, tokens=tokens, provider=provider, cost_usd=Decimal(cost), cost_source="billed")
    # An account-level bill and usage nobody is assigned to yet: neither is anyone's.
    UsageRecordFactory(
        identity=IdentityFactory(person=pat),
        day=date(2026, 9, 1),
        model="",
        usage_kind="cost",
        cost_usd=Decimal("99"),
        cost_source="billed",
    )
    UsageRecordFactory(identity=IdentityFactory(), day=date(2026, 9, 2), input_tokens=5000)
    # Paul moves from Product to Infra on 1 September: August counts for Product, September for Infra.
    Membership.objects.filter(person=paul, end__isnull=True).update(end=date(2026, 8, 31))
    Membership.objects.create(person=paul, team=org["infra"], start=date(2026, 9, 1))
    standings_mark_people([paul.pk])
    assert standings_refresh(today=TODAY) is not None
    assert standings_differences(today=TODAY) == []
    return org


def change_usage(org) -> set[date]:
    """New usage on a stored day and a new day, and a restated record: what the next refresh must take in."""
    usage_for(org["infra_engineer"], day=date(2026, 9, 14), tokens=2000)
    usage_for(org["product_manager"], day=date(2026, 8, 20), tokens=50, provider="anthropic")
    restated = UsageRecord.objects.get(identity__person=org["infra_engineer"], day=date(2026, 8, 3))
    restated.input_tokens = restated.total_tokens = 800
    restated.save()
    standings_mark_days([restated.day])
    return {date(2026, 9, 14), date(2026, 8, 20), date(2026, 8, 3)}


def failing_from(call: int, fail):
    """_teams_total (run once for the kept windows the changes are added to, then once per level of windows
    recomputed: days, weeks, …) that works until its `call`-th call, then fails every time: the refresh fails
    after some windows were rewritten inside its transaction."""
    original = standings._teams_total
    calls = itertools.count(1)

    def teams_total(*args, **kwargs):
        if next(calls) >= call:
            fail()
        return original(*args, **kwargs)

    return teams_total


def raise_database_error():
    raise DatabaseError("could not extend file: No space left on device")


def run_bad_sql():
    # A real error from the database: on PostgreSQL it aborts the transaction the refresh is in.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_in_the_refresh")


@pytest.mark.django_db
@pytest.mark.parametrize("fail", [raise_database_error, run_bad_sql], ids=["raised", "from-the-database"])
@pytest.mark.parametrize("call", [1, 2])
def test_a_refresh_that_fails_leaves_the_last_good_standings_and_the_next_one_completes(
    history, client, monkeypatch, fail, call
):
    before = read_models()
    refreshed_at = standings_status().refreshed_at
    changed = change_usage(history)

    with monkeypatch.context() as patch:
        patch.setattr(standings, "_teams_total", failing_from(call, fail))
        with pytest.raises(DatabaseError):
            standings_refresh(today=TODAY)

        # All or nothing: the windows rewritten before the failure are rolled back with the rest, so the pages
        # keep serving one consistent set of standings rather than a mix of old and new windows.
        assert read_models() == before
        # The changed days stay marked, so the next refresh still takes them in.
        assert set(StandingsDirtyDay.objects.values_list("day", flat=True)) == changed
        state = standings_status()
        # Recorded for the pages and admins; the last good refresh keeps its time.
        assert state.last_error.startswith(("DatabaseError", "ProgrammingError", "OperationalError"))
        assert state.last_error_at is not None and state.refreshed_at == refreshed_at

        # The page still serves (the refresh before the request fails again) and says the standings are old.
        client.force_login(history["admin"])
        response = client.get("/", {"period": "month", "date": "2026-09-15"})
        assert response.status_code == 200
        assert "The latest refresh of the standings failed" in response.content.decode()
        assert read_models() == before

    result = standings_refresh(today=TODAY)

    # The next refresh completes the work and clears the failure.
    assert result is not None and result.days == len(changed)
    assert not StandingsDirtyDay.objects.exists()
    state = standings_status()
    assert state.last_error == "" and state.last_error_at is None and state.refreshed_at > refreshed_at
    assert standings_differences(today=TODAY) == []


def duplicated_rows() -> list[str]:
    """Rows a window holds twice."""
    problems = []
    for model, key in (
        (TeamMemberStanding, ("window_id", "team_id", "person_id")),
        (TeamStanding, ("window_id", "team_id")),
        (StandingWindow, ("period", "start", "end", "provider")),
    ):
        keys = list(model.objects.values_list(*key))
        if len(keys) != len(set(keys)):
            problems.append(f"{model.__name__}: {len(keys) - len(set(keys))} duplicated {key}")
    return problems


class RefreshHeld:
    """A refresh in another thread that stops inside its transaction (holding the StandingsState lock), after
    rewriting the rollups and before computing the windows, until released."""

    def __init__(self, monkeypatch):
        self.inside, self.release = threading.Event(), threading.Event()
        self.result, self.error = None, None
        original = standings._standings_compute

        def compute(*args, **kwargs):
            if threading.current_thread() is self.thread and not self.inside.is_set():
                self.inside.set()
                assert self.release.wait(30), "never released"
            return original(*args, **kwargs)

        monkeypatch.setattr(standings, "_standings_compute", compute)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.inside.wait(30), "the refresh never started computing"

    def _run(self):
        try:
            self.result = standings_refresh(today=TODAY)
        except Exception as error:  # reported by finish()
            self.error = error
        finally:
            connection.close()

    def finish(self):
        self.release.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the held refresh did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def refresh_in_thread() -> tuple[object, float]:
    outcome = {}

    def run():
        started = time.monotonic()
        try:
            outcome["result"] = standings_refresh(today=TODAY)
        finally:
            outcome["seconds"] = time.monotonic() - started
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the second refresh blocked on the first one's lock"
    return outcome["result"], outcome["seconds"]


@pytest.mark.needs_services
def test_a_refresh_while_another_runs_returns_at_once_and_the_first_takes_in_everything(
    transactional_db, history, monkeypatch
):
    changed = change_usage(history)
    held = RefreshHeld(monkeypatch)

    result, seconds = refresh_in_thread()
    # The lock is taken: the second refresh skips (its task retries) instead of waiting minutes for the first
    # or computing the same windows twice in parallel.
    assert result is None and seconds < 2
    # A change committed while the first refresh runs, on a day it has not read: marked, so not lost.
    usage_for(history["platform_manager"], day=date(2026, 9, 10), tokens=40)

    first = held.finish()

    assert first is not None and first.days == len(changed)
    assert set(StandingsDirtyDay.objects.values_list("day", flat=True)) == {date(2026, 9, 10)}
    assert standings_refresh(today=TODAY) is not None  # the retried task
    assert duplicated_rows() == []
    assert standings_differences(today=TODAY) == []


def test_a_window_recomputed_with_nobody_left_in_it_counts_no_people(history):
    """The day has turned, so the refresh computes the windows of the changed day again rather than adding the
    change: 31 July's only usage (Prue's) taken away leaves its day window kept, with nobody in it."""
    UsageRecord.objects.filter(day=date(2026, 7, 31)).delete()
    standings_mark_days([date(2026, 7, 31)])
    tomorrow = TODAY + timedelta(days=1)

    assert standings_refresh(today=tomorrow) is not None

    day = StandingWindow.objects.get(period="day", start=date(2026, 7, 31), provider="")
    assert (day.people, TeamMemberStanding.objects.filter(window=day).count()) == (0, 0)
    assert StandingWindow.objects.get(period="month", start=date(2026, 7, 1), provider="").people == 0
    assert standings_differences(today=tomorrow) == []


@pytest.mark.needs_services
def test_a_change_to_a_day_the_running_refresh_already_read_is_not_lost(transactional_db, history, monkeypatch):
    change_usage(history)  # 14 September is dirty
    held = RefreshHeld(monkeypatch)  # its rollups of 14 September are written; it now computes the windows
    usage_for(history["product_manager"], day=date(2026, 9, 14), tokens=3000)  # committed while it runs
    held.finish()

    # The running refresh read 14 September before the change: it must leave the day marked (it was marked
    # again meanwhile), or the change would wait for the next change to that day to show.
    assert StandingsDirtyDay.objects.filter(day=date(2026, 9, 14)).exists()
    assert standings_refresh(today=TODAY) is not None  # what the queued refresh does next
    assert standings_differences(today=TODAY) == []


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


STUCK_REFRESH = """
import sys, time
from datetime import date

import django

django.setup()
from usage.services import standings

original = standings._standings_compute


def compute(*args, **kwargs):
    original(*args, **kwargs)  # the windows are rewritten, not committed
    print("inside the refresh transaction", flush=True)
    time.sleep(600)


standings._standings_compute = compute
standings.standings_refresh(today=date(2026, 9, 15), all_days=sys.argv[1] == "rebuild", workers=int(sys.argv[2]))
print("the refresh finished", flush=True)
"""


@contextmanager
def refresh_stuck_in_another_process(kind: str, workers: int = 1):
    """A refresh ("refresh") or rebuild ("rebuild", by `workers` connections) in a process of its own, stopped
    inside its transaction after computing the windows; killed (SIGKILL, as the OOM killer would) when the block
    ends."""
    env = {**os.environ, "DATABASE_URL": database_url_of_test_db(), "DJANGO_SETTINGS_MODULE": "leaderboard.settings"}
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_REFRESH, kind, str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == "inside the refresh transaction", line + process.stderr.read()
        yield
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process.stdout.close()
        process.stderr.close()


def refresh_when_free(**kwargs):
    """The queued task's retries: the killed refresh's lock goes with its connection, within moments."""
    deadline = time.monotonic() + 10
    while (result := standings_refresh(today=TODAY, **kwargs)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


@pytest.mark.needs_services
def test_a_refresh_killed_mid_way_rolls_back_and_the_next_one_completes(transactional_db, history):
    before = read_models()
    changed = change_usage(history)
    with refresh_stuck_in_another_process("refresh"):
        # It holds the lock: a refresh here skips rather than computing alongside it.
        assert standings_refresh(today=TODAY) is None

    # The dead connection's transaction is rolled back and its lock released: nothing of the half-done refresh
    # shows, the days stay marked, and the next refresh runs (within moments, not after a timeout).
    assert read_models() == before
    assert set(StandingsDirtyDay.objects.values_list("day", flat=True)) == changed
    result = refresh_when_free()
    assert result is not None and result.days == len(changed)
    assert not StandingsDirtyDay.objects.exists()
    assert standings_differences(today=TODAY) == []


# --- Rebuild (rebuild_rollups) ---------------------------------------------------------------------------------


def rebuild_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tokenboard%%' ORDER BY 1")
        return [name for (name,) in cursor.fetchall()]


GRANTED = "usage_teammemberstanding, usage_teamstanding"


def grants(cursor, table: str) -> list[tuple]:
    cursor.execute(
        "SELECT acl.grantee, acl.privilege_type, acl.is_grantable FROM pg_class, aclexplode(pg_class.relacl) acl "
        "WHERE pg_class.oid = %s::regclass ORDER BY 1, 2",
        [table],
    )
    return cursor.fetchall()


def read_model_tables() -> dict[str, tuple]:
    """Each read model table as migrations see it (Django's introspection: columns, constraints and indexes by
    name), the schema it is in, its storage parameters and who may read it."""
    tables = {}
    with connection.cursor() as cursor:
        for model in standings.READ_MODELS:
            table = model._meta.db_table
            cursor.execute(
                "SELECT relnamespace::regnamespace::text, reloptions FROM pg_class WHERE oid = %s::regclass", [table]
            )
            tables[table] = (
                *cursor.fetchone(),
                [
                    (c.name, c.type_code, c.null_ok, c.default)
                    for c in connection.introspection.get_table_description(cursor, table)
                ],
                connection.introspection.get_constraints(cursor, table),
                grants(cursor, table),
            )
    return tables


@pytest.mark.needs_services
@pytest.mark.parametrize("workers", [1, 2])
def test_a_rebuild_keeps_readers_on_the_last_standings_and_a_killed_one_changes_nothing(
    transactional_db, history, workers
):
    before = read_models()
    with refresh_stuck_in_another_process("rebuild", workers):
        with connection.cursor() as cursor:
            # Emptying the live tables (TRUNCATE) would keep this read waiting until the rebuild commits.
            cursor.execute("SET lock_timeout = '2s'")
            try:
                assert read_models() == before
            finally:
                cursor.execute("RESET lock_timeout")
            # By several connections the tables built aside are committed, and autovacuum leaves them alone.
            cursor.execute(
                "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r'",
                [standings.REBUILD_SCHEMA],
            )
            aside = dict(cursor.fetchall())
            if workers > 1:
                assert set(aside) == {model._meta.db_table for model in standings.READ_MODELS}
                assert all("autovacuum_enabled=off" in options for options in aside.values()), aside
            else:
                assert aside == {}  # one connection's build is its own transaction's
        assert standings_refresh(today=TODAY) is None  # the rebuild holds the refresh lock

    assert read_models() == before
    # By one connection its tables went with its transaction; by several they were committed as they were built,
    # and the next rebuild drops them.
    assert rebuild_schemas() == ([] if workers == 1 else [standings.REBUILD_SCHEMA])
    assert refresh_when_free(all_days=True, workers=workers) is not None
    assert rebuild_schemas() == []
    assert standings_differences(today=TODAY) == []


@pytest.mark.needs_services
@pytest.mark.parametrize("workers", [1, 2])
def test_a_rebuild_leaves_the_tables_as_migrations_made_them_and_ids_go_on(transactional_db, history, workers):
    with connection.cursor() as cursor:  # a reporting role's grants
        cursor.execute(f"GRANT SELECT ON {GRANTED} TO PUBLIC")
        assert grants(cursor, "usage_teammemberstanding")
    tables = read_model_tables()
    updated_in_place = ("usage_teammemberstanding", "usage_teamstanding")
    assert [tables[table][1] for table in updated_in_place] == [["fillfactor=90"]] * 2  # migration 0026
    last_window = StandingWindow.objects.order_by("-pk").values_list("pk", flat=True).first()
    change_usage(history)

    try:
        result = standings_refresh(today=TODAY, all_days=True, workers=workers)

        assert result is not None and "swap" in result.phases and result.workers == workers
        assert read_model_tables() == tables
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE SELECT ON {GRANTED} FROM PUBLIC")
    assert rebuild_schemas() == []
    assert StandingWindow.objects.order_by("pk").values_list("pk", flat=True).first() > last_window
    assert standings_differences(today=TODAY) == []


def swap_waits_for(watcher, table: str) -> bool:
    """Another session waits for a lock on `table`: the rebuild's swap, in this test."""
    return watcher.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND relation = %s::regclass)", [table]
    ).fetchone()[0]


@pytest.mark.needs_services
@pytest.mark.parametrize("workers", [1, 2])
def test_a_rebuild_waits_for_a_reader_holding_the_tables_and_then_swaps(transactional_db, history, workers):
    change_usage(history)
    with psycopg.connect(database_url_of_test_db()) as reader:  # a request inside a transaction
        assert reader.execute("SELECT count(*) FROM usage_teamstanding").fetchone()[0] > 0
        outcome = {}

        def rebuild():
            try:
                outcome["result"] = standings_refresh(today=TODAY, all_days=True, workers=workers)
            except Exception as error:  # asserted below
                outcome["error"] = error
            finally:
                connection.close()

        thread = threading.Thread(target=rebuild, daemon=True)
        thread.start()
        with psycopg.connect(database_url_of_test_db(), autocommit=True) as watcher:
            deadline = time.monotonic() + 30
            while not swap_waits_for(watcher, "usage_teamstanding") and time.monotonic() < deadline:
                time.sleep(0.05)
        assert thread.is_alive() and not outcome
        # The swap takes the rollups before the standings, so this read now waits for the swap while the swap
        # waits for this reader: a deadlock, unless the swap lets go and tries again, as it must.
        assert reader.execute("SELECT count(*) FROM usage_dailyrollup").fetchone()[0] > 0
        reader.commit()
        thread.join(30)

    assert not thread.is_alive() and "error" not in outcome, outcome
    assert outcome["result"] is not None and "swap" in outcome["result"].phases
    assert rebuild_schemas() == []
    assert standings_differences(today=TODAY) == []


@pytest.mark.django_db
@pytest.mark.parametrize("fail", [raise_database_error, run_bad_sql], ids=["raised", "from-the-database"])
def test_a_rebuild_that_fails_leaves_the_last_good_standings(history, monkeypatch, fail):
    before = read_models()
    monkeypatch.setattr(standings, "_teams_total", failing_from(2, fail))

    with pytest.raises(DatabaseError):
        standings_refresh(today=TODAY, all_days=True)

    assert read_models() == before
    if connection.vendor == "postgresql":
        assert rebuild_schemas() == []


@pytest.mark.needs_services
@pytest.mark.parametrize("fail", [raise_database_error, run_bad_sql], ids=["raised", "from-the-database"])
def test_a_rebuild_by_several_connections_that_fails_leaves_the_last_good_standings_and_no_tables(
    transactional_db, history, monkeypatch, fail
):
    before = read_models()
    monkeypatch.setattr(standings, "_teams_total", failing_from(2, fail))  # in a job, on a connection of its own

    with pytest.raises(DatabaseError):
        standings_refresh(today=TODAY, all_days=True, workers=2)

    assert read_models() == before
    assert rebuild_schemas() == []  # the tables it had committed are dropped
    assert standings_status().last_error.startswith(("DatabaseError", "ProgrammingError"))
    monkeypatch.undo()
    assert standings_refresh(today=TODAY, all_days=True, workers=2) is not None
    assert standings_differences(today=TODAY) == []


@pytest.mark.django_db(transaction=True)
def test_rebuild_rollups_builds_on_the_connections_asked_for_and_says_how_long_it_took(history):
    change_usage(history)
    out = StringIO()

    with time_machine.travel(datetime(2026, 9, 15, 12, tzinfo=UTC), tick=False):  # TODAY
        call_command("rebuild_rollups", "--workers", "2", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("rebuilt rollups and standings: ") and lines[0].endswith(" s")
    several = connection.vendor == "postgresql"  # SQLite builds on one
    assert ("built by 2 connections at once; each step's time is theirs summed:" in lines) is several
    assert any(line.startswith("  team members: ") for line in lines)
    assert not StandingsDirtyDay.objects.exists()
    assert standings_differences(today=TODAY) == []
    with pytest.raises(CommandError, match="--workers must be at least 1, not 0"):
        call_command("rebuild_rollups", "--workers", "0")


@pytest.mark.django_db
def test_a_refresh_with_nothing_dirty_on_the_same_day_changes_nothing(history):
    before = read_models()

    result = standings_refresh(today=TODAY)

    # The worker's periodic runs are cheap when nothing changed, and leave the standings as they are.
    assert result is not None and (result.days, result.windows) == (0, 0)
    assert read_models() == before


@pytest.mark.django_db
def test_a_refresh_on_the_next_day_moves_the_rolling_windows(history):
    tomorrow = TODAY + timedelta(days=1)

    standings_refresh(today=tomorrow)

    # The rolling windows end on the new day (yesterday's are dropped) and still equal the usage in them.
    assert standings_differences(today=tomorrow) == []
    assert StandingWindow.objects.filter(period="7d", end=tomorrow).exists()
    assert not StandingWindow.objects.filter(period="7d", end=TODAY).exists()


def test_the_same_days_of_the_previous_period_are_kept_and_move_with_the_day(history, django_assert_max_num_queries):
    """A period in progress ranks against the same days of the previous one (usage.periods.comparison_window):
    those windows are kept too, so the board's rank changes are lookups, and they move at midnight."""
    from django.http import QueryDict

    from leaderboard.selectors import people_ranking
    from leaderboard.windows import ranking_query_from
    from usage.access import viewer_for

    month_so_far = StandingWindow.objects.filter(period="custom", start=date(2026, 8, 1), provider="")
    assert list(month_so_far.values_list("end", flat=True)) == [date(2026, 8, 15)]  # 1–15 Sep against 1–15 Aug
    admin = viewer_for(UserFactory(is_staff=True, is_superuser=True))
    not_ranked = AssertionError("ranked in SQL: the previous window is kept")
    with (
        time_machine.travel(datetime(2026, 9, 15, 12, tzinfo=UTC), tick=False),
        patch.object(selectors, "_ranked_arrays", side_effect=not_ranked),
    ):
        ranking = people_ranking(ranking_query_from(QueryDict("period=month")), admin)
        # Ivy had 500 on 3 Aug, Paul 500 on 31 Aug (not in 1–15 Aug): only Ivy has a previous rank.
        previous = {row.display_name: row.previous_rank for row in ranking[0:10]}
    assert previous["Ivy Infra"] == 1 and previous["Paul Product"] is None

    standings_refresh(today=TODAY + timedelta(days=1))
    assert list(month_so_far.values_list("end", flat=True)) == [date(2026, 8, 16)]
    assert standings_differences(today=TODAY + timedelta(days=1)) == []


@pytest.mark.needs_services
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        # JIT compiling cost more than the ranking queries themselves at 85,000 people (docs/PERFORMANCE.md).
        ("jit", "off"),
        # With the default 4, a custom range read the whole standings table rather than its windows' rows by index.
        ("random_page_cost", "1.1"),
    ],
)
def test_postgresql_connections_carry_the_apps_planner_settings(setting, value):
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {setting}")
        assert cursor.fetchone() == (value,)


def september(person) -> TeamMemberStanding:
    """The person's row of September (one: nobody in `history` moves team then)."""
    return TeamMemberStanding.objects.get(
        window__period="month", window__start=date(2026, 9, 1), window__provider="", person=person
    )


def test_a_change_to_a_few_people_is_added_to_the_kept_windows_and_the_other_rows_stay_as_they_were(history):
    ivy, pat, prue = (history[k] for k in ("infra_engineer", "platform_manager", "product_manager"))
    untouched = {person.pk: september(person).pk for person in (pat, prue)}
    ivy_before = september(ivy)

    usage_for(ivy, day=date(2026, 9, 14), tokens=2000)
    with patch.object(standings, "CHANGES_MOST_SHARE", 0):  # four people: any change is most of their rows
        standings_refresh(today=TODAY)

    # Added to the kept month, not recomputed from its pieces: the rows of the people without changes are the
    # same rows, and the changed person's row has their new total.
    assert {person.pk: september(person).pk for person in (pat, prue)} == untouched
    ivy_after = september(ivy)
    assert ivy_after.pk == ivy_before.pk and ivy_after.total_tokens == ivy_before.total_tokens + 2000
    assert ivy_after.active_days == ivy_before.active_days + 1
    assert selectors.stored_order(ivy_after.window_id, "total_tokens").find(ivy.pk).rank == 1
    assert standings_differences(today=TODAY) == []


def test_a_day_that_stops_reporting_requests_leaves_the_windows_request_count_unknown_not_zero(history):
    paul, day = history["product_engineer"], date(2026, 9, 14)
    his_day = UsageRecord.objects.filter(identity__person=paul, day=day)
    with patch.object(standings, "CHANGES_MOST_SHARE", 0):
        his_day.update(requests=3)
        standings_mark_days([day])
        standings_refresh(today=TODAY)
        assert september(paul).requests == 3  # his one September day reports requests

        his_day.update(requests=None)
        standings_mark_days([day])
        standings_refresh(today=TODAY)

    # No other day of his September reports requests: taking the day's count away leaves no count, not 0.
    assert september(paul).requests is None
    assert standings_differences(today=TODAY) == []


def test_a_day_that_stops_reporting_requests_is_taken_out_of_the_kept_windows_that_other_days_report_in(history):
    ivy, infra = history["infra_engineer"], history["infra"]
    august, september = date(2026, 8, 3), date(2026, 9, 1)  # her two days, both in the third quarter
    UsageRecord.objects.filter(identity__person=ivy).update(requests=None)
    UsageRecord.objects.filter(identity__person=ivy, day=august).update(requests=2)
    UsageRecord.objects.filter(identity__person=ivy, day=september).update(requests=5)
    standings_mark_days([august, september])
    standings_refresh(today=TODAY)

    def quarter(model, **row):
        return model.objects.get(window__period="quarter", window__start=date(2026, 7, 1), window__provider="", **row)

    hers, her_team = quarter(TeamMemberStanding, person=ivy), quarter(TeamStanding, team=infra)
    assert (hers.requests, hers.requests_reported_days) == (7, 2)

    UsageRecord.objects.filter(identity__person=ivy, day=september).update(requests=None)
    standings_mark_days([september])
    with patch.object(standings, "CHANGES_MOST_SHARE", 0):
        standings_refresh(today=TODAY)

    # Added to the kept rows (the same rows), not recomputed: her August day still reports its 2 requests.
    hers_after, her_team_after = quarter(TeamMemberStanding, person=ivy), quarter(TeamStanding, team=infra)
    assert hers_after.pk == hers.pk and (hers_after.requests, hers_after.requests_reported_days) == (2, 1)
    assert her_team_after.pk == her_team.pk and her_team_after.requests == her_team.requests - 5
    assert standings_differences(today=TODAY) == []


def test_a_rebuild_a_migration_requested_runs_at_the_next_refresh_and_only_once(history):
    ivy = history["infra_engineer"]
    TeamMemberStanding.objects.filter(person=ivy).update(total_tokens=1)  # what the rebuild must put right
    StandingsState.objects.filter(pk=1).update(rebuild_requested=True)

    result = standings_refresh(today=TODAY)

    assert result.days > 0
    assert standings_differences(today=TODAY) == []
    assert StandingsState.objects.get(pk=1).rebuild_requested is False
    assert standings_refresh(today=TODAY).windows == 0  # nothing marked: nothing to do


def test_teams_follow_a_small_change_added_to_them_a_top_person_who_loses_usage_and_a_team_left_without_any(history):
    ivy, paul, prue = (history[k] for k in ("infra_engineer", "product_engineer", "product_manager"))
    infra, product = history["infra"], history["product"]

    def september_team(team):
        return TeamStanding.objects.filter(
            window__period="month", window__start=date(2026, 9, 1), window__provider="", team=team
        ).first()

    infra_before = september_team(infra)
    assert infra_before.top_total_tokens == paul.pk  # 900 tokens against Ivy's 700
    assert september_team(product) is not None  # Prue's 100 tokens on 15 September

    UsageRecord.objects.filter(identity__person=paul, day=date(2026, 9, 14)).update(total_tokens=100)
    UsageRecord.objects.filter(identity__person=prue, day=date(2026, 9, 15)).delete()
    standings_mark_days([date(2026, 9, 14), date(2026, 9, 15)])
    with patch.object(standings, "CHANGES_MOST_SHARE", 0):
        standings_refresh(today=TODAY)

    # Added to the kept row, not recomputed: the same row, less Paul's 800 tokens, and its top found again
    # among everyone in the team (Ivy was not part of the change).
    infra_after = september_team(infra)
    assert infra_after.pk == infra_before.pk
    assert infra_after.total_tokens == infra_before.total_tokens - 800
    assert infra_after.top_total_tokens == ivy.pk
    assert september_team(product) is None  # nobody in Product used anything in September any more
    assert standings_differences(today=TODAY) == []


def test_a_new_providers_first_usage_makes_its_windows_from_the_changes_without_summing_any_window(history):
    """Windows are kept for every period with usage of their provider, so a provider's first usage needs no window
    summed from its pieces: its new windows start empty and take the changes, as the kept ones do."""
    ivy, infra = history["infra_engineer"], history["infra"]
    assert not StandingWindow.objects.filter(provider="cursor").exists()

    usage_for(ivy, day=date(2026, 9, 14), tokens=2000, provider="cursor")
    usage_for(ivy, day=date(2026, 8, 31), tokens=300, provider="cursor")
    with (
        patch.object(standings, "CHANGES_MOST_SHARE", 0),
        patch.object(standings, "_batch_compute", side_effect=AssertionError("a window summed from its pieces")),
    ):
        standings_refresh(today=TODAY)

    september = StandingWindow.objects.get(period="month", start=date(2026, 9, 1), provider="cursor")
    assert september.people == 1
    assert TeamMemberStanding.objects.get(window=september).total_tokens == 2000
    assert TeamStanding.objects.get(window=september, team=infra).top_total_tokens == ivy.pk
    assert selectors.stored_order(september.pk, "total_tokens").find(ivy.pk).rank == 1
    quarter = StandingWindow.objects.get(period="quarter", start=date(2026, 7, 1), provider="cursor")
    assert TeamMemberStanding.objects.get(window=quarter).total_tokens == 2300
    assert not StandingWindow.objects.filter(period="day", provider="cursor").exists()  # read from the rollups
    assert standings_differences(today=TODAY) == []


def test_one_providers_windows_count_a_day_of_several_models_once(history):
    """One provider's weeks and longer windows are summed from its days' rollups, a row per model: a day counts
    once, and reports requests when any of its rows does."""
    ivy, tuesday = history["infra_engineer"], date(2026, 9, 8)
    usage_for(ivy, day=tuesday, tokens=100, provider="anthropic", model="claude-a", requests=None)
    usage_for(ivy, day=tuesday, tokens=200, provider="anthropic", model="claude-b", requests=4)
    usage_for(ivy, day=tuesday + timedelta(days=1), tokens=50, provider="anthropic", model="claude-a", requests=None)

    standings_refresh(today=TODAY, all_days=True)  # every window summed from its pieces

    week = TeamMemberStanding.objects.get(
        window__period="week", window__start=date(2026, 9, 7), window__provider="anthropic", person=ivy
    )
    assert (week.total_tokens, week.active_days, week.requests, week.requests_reported_days) == (350, 2, 4, 1)
    assert standings_differences(today=TODAY) == []


def test_one_person_changed_on_many_days_is_added_to_the_kept_rows_among_many(history):
    """The rows the changes touch are counted per window, team and person, not per day: a person changed on every
    day of a window is one row of it, so a few people's many days are added, not recomputed."""
    ivy, infra = history["infra_engineer"], history["infra"]
    days = [date(2026, 9, day) for day in range(1, 16)]
    for _ in range(12):  # enough people that Ivy's rows are few of the windows' rows
        person = MembershipFactory(team=infra).person
        for day in days:
            usage_for(person, day=day, tokens=100)
    ivys = [usage_for(ivy, day=day, tokens=50) for day in days]
    standings_mark_days(days)
    standings_refresh(today=TODAY)

    def september(person):
        return TeamMemberStanding.objects.get(
            window__period="month", window__start=date(2026, 9, 1), window__provider="", person=person
        )

    before = september(ivy)
    UsageRecord.objects.filter(pk__in=[record.pk for record in ivys]).update(input_tokens=51, total_tokens=51)
    standings_mark_days(days)
    standings_refresh(today=TODAY)

    after = september(ivy)
    assert after.pk == before.pk  # added to the kept row: a recomputed window writes its rows anew
    assert after.total_tokens == before.total_tokens + len(days)
    assert standings_differences(today=TODAY) == []


def test_a_refresh_rewrites_only_the_rollup_rows_that_changed(history):
    ivy, pat = history["infra_engineer"], history["platform_manager"]
    day = date(2026, 9, 1)
    pats_rows = set(DailyRollup.objects.filter(day=day, person=pat).values_list("pk", flat=True))
    ivys_rows = set(DailyRollup.objects.filter(day=day, person=ivy).values_list("pk", flat=True))
    assert pats_rows and ivys_rows

    UsageRecord.objects.filter(identity__person=ivy, day=day).update(output_tokens=5, total_tokens=705)
    standings_mark_days([day])
    standings_refresh(today=TODAY)

    # Pat's rows of the day are the rows they were; Ivy's changed row was replaced by one with her new total.
    assert set(DailyRollup.objects.filter(day=day, person=pat).values_list("pk", flat=True)) == pats_rows
    ivys_now = DailyRollup.objects.filter(day=day, person=ivy)
    assert not set(ivys_now.values_list("pk", flat=True)) & ivys_rows
    assert sum(ivys_now.values_list("total_tokens", flat=True)) == 705
    assert standings_differences(today=TODAY) == []


def september_board() -> tuple[int, list[tuple[int, int]]]:
    """The kept September board on total tokens: its row's id, and (person id, total) in board order."""
    order = StandingOrder.objects.get(
        window__period="month", window__start=date(2026, 9, 1), window__provider="", metric="total_tokens"
    )
    people, totals = standings.board_pairs(order.board)
    return order.pk, list(zip(people, totals, strict=True))


def placed_one_by_one():
    """Every change added to the kept windows, and every person who moved placed again on the kept boards: four
    people's changes would otherwise be most of their rows."""
    with patch.object(standings, "CHANGES_MOST_SHARE", 0), patch.object(standings, "MERGE_MOST_SHARE", 0):
        standings_refresh(today=TODAY)


def test_people_who_move_are_placed_again_on_the_kept_board_among_a_tie_by_name(history):
    ivy, paul, pat, prue = (
        history[k] for k in ("infra_engineer", "product_engineer", "platform_manager", "product_manager")
    )
    board_id, board = september_board()
    assert board == [(paul.pk, 900), (ivy.pk, 700), (pat.pk, 700), (prue.pk, 100)]  # Ivy Infra, then Pat Manager

    usage_for(prue, day=date(2026, 9, 14), tokens=600, provider="anthropic")
    UsageRecord.objects.filter(identity__person=paul, day=date(2026, 9, 14)).update(input_tokens=50, total_tokens=50)
    standings_mark_days([date(2026, 9, 14)])
    placed_one_by_one()

    # The same board row, rewritten with Prue in the tie by her name (after Pat, though her id is lower than
    # Ivy's) and Paul below it.
    assert september_board() == (board_id, [(ivy.pk, 700), (pat.pk, 700), (prue.pk, 700), (paul.pk, 50)])
    assert standings_differences(today=TODAY) == []


def test_a_new_name_reorders_a_tie_on_the_kept_boards_though_no_figure_changes(history):
    ivy, paul, pat, prue = (
        history[k] for k in ("infra_engineer", "product_engineer", "platform_manager", "product_manager")
    )
    board_id, _board = september_board()

    ivy.display_name = "Quinn Infra"  # now after Pat Manager
    ivy.save()
    standings_mark_people([ivy.pk])
    placed_one_by_one()

    assert september_board() == (board_id, [(paul.pk, 900), (pat.pk, 700), (ivy.pk, 700), (prue.pk, 100)])
    assert not StandingsDirtyPerson.objects.exists()
    assert standings_differences(today=TODAY) == []


@pytest.mark.needs_services
@pytest.mark.parametrize("workers", [1, 2])
def test_a_rebuild_vacuums_the_tables_it_swapped_in(transactional_db, history, workers):
    result = standings_refresh(today=TODAY, all_days=True, workers=workers)

    assert result is not None and "vacuum" in result.phases
    # The swapped-in tables are new relations, counted from nothing: one manual VACUUM of each (autovacuum is off
    # on them until the swap, and counted apart). Their pages' all-visible marks would say so too, but not always:
    # a snapshot older than the rebuild's commit keeps VACUUM from setting them (seen with a test run beside).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relid = ANY(%s::regclass[])",
            [[model._meta.db_table for model in standings.READ_MODELS]],
        )
        assert dict(cursor.fetchall()) == dict.fromkeys((model._meta.db_table for model in standings.READ_MODELS), 1)


def test_the_rollups_leave_out_only_the_rules_that_cannot_take_usage_out_on_their_days(org):
    ivy = org["infra_engineer"]
    UsageHold.objects.create(person=ivy, day=date(2026, 9, 14))
    UsageHold.objects.create(person=ivy, day=date(2026, 9, 20), status=HoldStatus.CLEARED)
    rule, _created = SourcePrecedence.objects.get_or_create(
        provider="anthropic", preferred="anthropic_usage", over="claude_code"
    )
    in_force = standings._RulesInForce.on

    assert in_force(date(2026, 9, 1), date(2026, 9, 30)) == standings._RulesInForce(
        holds=True, sources_put_second=False
    )
    assert not in_force(date(2026, 9, 15), date(2026, 9, 30)).holds  # the 20th's hold is cleared: its usage counts

    ImportBatch.objects.create(source="upload", original_name="cc.csv", sha256="c" * 64, detected_format=rule.over)
    assert in_force(date(2026, 9, 15), date(2026, 9, 30)) == standings._RulesInForce(
        holds=False, sources_put_second=True
    )


@pytest.mark.parametrize(
    ("first", "last"), [(date(2025, 12, 6), date(2026, 12, 5)), (date(2026, 1, 1), date(2026, 2, 1)), (TODAY, TODAY)]
)
def test_a_rebuilds_days_are_cut_into_chunks_of_about_one_size_that_cover_them_once(first, last):
    chunks = list(standings._chunks([(first, last)], 31))

    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert [start + timedelta(days=n) for start, end in chunks for n in range((end - start).days + 1)] == days
    sizes = [(end - start).days + 1 for start, end in chunks]
    assert len(chunks) == -(-len(days) // 31) and max(sizes) <= 31 and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(("windows", "connections"), [(365, 2), (159, 2), (21, 2), (1, 2), (41, 1), (40, 1), (81, 3)])
def test_a_levels_windows_are_batched_in_full_turns_of_the_connections(windows, connections):
    size = standings._batch_size(windows, connections)

    batches = [min(size, windows - start) for start in range(0, windows, size)]
    assert sum(batches) == windows and size <= standings.LEVEL_BATCH
    turns = -(-len(batches) // connections)
    assert len(batches) == turns * connections or windows < connections  # no connection idles in the last turn
    assert max(batches) - min(batches) <= max(batches) // 5 + 1  # the last batch about as large as the others


@pytest.mark.needs_services
def test_a_rebuild_whose_vacuum_fails_stands_and_logs_why(transactional_db, history, caplog):
    def vacuum_fails(execute, sql, params, many, context):
        if sql.startswith("VACUUM"):
            raise DatabaseError("canceling statement due to statement timeout")
        return execute(sql, params, many, context)

    change_usage(history)
    with connection.execute_wrapper(vacuum_fails):
        result = standings_refresh(today=TODAY, all_days=True)

    assert result is not None and standings_differences(today=TODAY) == []
    assert 'VACUUM of "usage_dailyrollup"' in caplog.text and "statement timeout" in caplog.text
