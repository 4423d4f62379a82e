from datetime import date, timedelta

import pytest
from django.utils import timezone

from tests.factories import usage_for
from usage.models import StandingsDirtyDay, StandingsDirtyIdentity, StandingsDirtyPerson
from usage.services import standings
from usage.services.standings import (
    standings_mark_days,
    standings_mark_people,
    standings_mark_usage,
    standings_refresh,
)


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


@pytest.mark.django_db
def test_clearing_the_marks_read_keeps_those_marked_again_since():
    day = date(2026, 9, 3)
    standings_mark_usage([(day, identity) for identity in range(1, 2501)])  # more than a statement's thousand
    standings_mark_people([7, 8])
    marks = standings._Marks.read()
    later = timezone.now() + timedelta(seconds=1)
    StandingsDirtyIdentity.objects.filter(identity_id__in=[1, 1500, 2500]).update(marked_at=later)
    StandingsDirtyPerson.objects.filter(person_id=8).update(marked_at=later)
    StandingsDirtyDay.objects.update(marked_at=later)

    marks.clear()

    assert sorted(StandingsDirtyIdentity.objects.values_list("identity_id", flat=True)) == [1, 1500, 2500]
    assert list(StandingsDirtyPerson.objects.values_list("person_id", flat=True)) == [8]
    assert list(StandingsDirtyDay.objects.values_list("day", flat=True)) == [day]
