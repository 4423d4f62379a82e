"""Data migrations: what an upgrade does to the data already stored."""

from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from usage.services.standings import board_pairs

BEFORE_ORDERS = [("usage", "0020_derived_indexes_covered")]
ORDERS = [("usage", "0021_standing_orders")]


def migrated(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.fixture
def back_to_the_latest(transactional_db):
    """The schema as the latest migrations leave it once the test is done: the tests after it (and a worker
    process reading the same database) need every table and column."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_kept_ranks_move_from_the_person_rows_into_each_windows_order(back_to_the_latest):
    apps = migrated(BEFORE_ORDERS)
    Person, Window, Standing = (
        apps.get_model("usage", name) for name in ("Person", "StandingWindow", "PersonStanding")
    )
    ada, bob, cy, dee = (
        Person.objects.create(display_name=name, email=f"{name}@x.test") for name in "Ada Bob Cy Dee".split()
    )
    month = Window.objects.create(
        period="month", start=date(2026, 9, 1), end=date(2026, 9, 30), computed_at="2026-09-30T00:00Z"
    )
    quiet = Window.objects.create(
        period="day", start=date(2026, 9, 2), end=date(2026, 9, 2), computed_at="2026-09-30T00:00Z"
    )
    for person, tokens, rank, place in ((bob, 500, 1, 1), (ada, 300, 2, 2), (cy, 300, 2, 3), (dee, 0, None, None)):
        Standing.objects.create(
            window=month, person=person, total_tokens=tokens, rank_total_tokens=rank, place_total_tokens=place
        )
    Standing.objects.create(window=quiet, person=dee, total_tokens=0)

    apps = migrated(ORDERS)
    orders = {
        row.window_id: tuple(list(numbers) for numbers in board_pairs(row.board))
        for row in apps.get_model("usage", "StandingOrder").objects.filter(metric="total_tokens")
    }
    # Board order as stored (the tie by name) with each one's total, nobody unranked; a window nobody ranks in
    # gets an empty order.
    assert orders == {month.pk: ([bob.pk, ada.pk, cy.pk], [500, 300, 300]), quiet.pk: ([], [])}


BEFORE_REPORTED_DAYS = [("usage", "0024_standings_dirty_identities")]
REPORTED_DAYS = [("usage", "0025_standings_requests_reported_days")]


@pytest.mark.parametrize("kept", [True, False])
def test_kept_standings_are_rebuilt_by_the_next_refresh_when_their_rows_gain_the_days_reporting_requests(
    back_to_the_latest, kept
):
    apps = migrated(BEFORE_REPORTED_DAYS)
    if kept:
        apps.get_model("usage", "StandingWindow").objects.create(
            period="day", start=date(2026, 9, 2), end=date(2026, 9, 2), computed_at="2026-09-30T00:00Z"
        )

    apps = migrated(REPORTED_DAYS)
    # Standings kept before cannot say which of their days reported requests: the next refresh rebuilds them.
    # A new installation has none to rebuild.
    state = apps.get_model("usage", "StandingsState").objects.filter(pk=1).first()
    assert (state is not None and state.rebuild_requested) is kept


def test_going_back_before_the_person_rows_went_asks_the_next_refresh_for_a_rebuild(back_to_the_latest):
    apps = migrated([("usage", "0029_person_rows_from_team_members")])
    apps.get_model("usage", "StandingWindow").objects.create(
        period="day", start=date(2026, 9, 2), end=date(2026, 9, 2), computed_at="2026-09-30T00:00Z"
    )

    apps = migrated([("usage", "0028_usage_hour_key_as_primary_key")])

    # The person rows' table is back, empty: the standings of then need them written again.
    assert not apps.get_model("usage", "PersonStanding").objects.exists()
    assert apps.get_model("usage", "StandingsState").objects.get(pk=1).rebuild_requested is True
