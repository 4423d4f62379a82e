from datetime import date

import pytest

from tests.factories import usage_for
from usage.models import StandingsDirtyDay
from usage.services import standings
from usage.services.standings import standings_mark_days, standings_refresh


@pytest.mark.django_db
def test_a_day_marked_again_while_a_refresh_runs_stays_marked_for_the_next_one(org, monkeypatch):
    day = date(2026, 9, 3)
    usage_for(org["infra_engineer"], day=day, tokens=10)
    compute = standings._standings_compute

    def compute_while_an_import_commits(*args):
        compute(*args)
        standings_mark_days([day])  # an import of the same day commits after the refresh read its usage

    monkeypatch.setattr(standings, "_standings_compute", compute_while_an_import_commits)
    standings_refresh()
    # The refresh cleared the mark it read, not the newer one: the next refresh picks the day up again.
    assert list(StandingsDirtyDay.objects.values_list("day", flat=True)) == [day]
    monkeypatch.setattr(standings, "_standings_compute", compute)
    standings_refresh()
    assert not StandingsDirtyDay.objects.exists()


@pytest.mark.django_db
def test_a_rebuild_on_the_day_of_a_refresh_keeps_todays_windows(org):
    from usage.models import StandingWindow
    from usage.periods import current_windows, org_today

    usage_for(org["infra_engineer"], day=org_today(), tokens=10)
    standings_refresh()
    standings_refresh(all_days=True)  # rebuild_rollups later the same day
    kept = set(StandingWindow.objects.filter(provider="").values_list("period", "start", "end"))
    # Today's rolling windows were dropped with everything else: the rebuild must compute them again.
    assert {(w.period, w.start, w.end) for w in current_windows(org_today())} <= kept
