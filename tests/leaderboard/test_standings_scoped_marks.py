"""An import marks the (day, identity) pairs it changed, not whole days: the refresh then rewrites the rollups of
those identities' people alone, and leaves everyone else's rows of the day as they were
(usage.services.standings.standings_mark_usage)."""

from datetime import date
from unittest.mock import patch

import pytest

from tests.factories import IdentityFactory, UsageRecordFactory, cursor_csv, imported, usage_for
from tests.leaderboard.standings_truth import standings_differences
from usage.models import DailyRollup, Identity, StandingsDirtyDay, StandingsDirtyIdentity, TeamMemberStanding
from usage.services import standings
from usage.services.standings import standings_mark_days, standings_mark_usage, standings_refresh

pytestmark = pytest.mark.django_db

TODAY = date(2026, 9, 15)
DAY = date(2026, 9, 1)


def cursor_import(*rows: tuple[date, str, int]) -> None:
    """A Cursor team usage export of (day, user email, output tokens) rows, imported."""
    imported(cursor_csv(*((day, email, "gpt-5", out) for day, email, out in rows)))


def marks() -> tuple[dict[date, bool], set[tuple[date, int]]]:
    return (
        dict(StandingsDirtyDay.objects.values_list("day", "whole")),
        set(StandingsDirtyIdentity.objects.values_list("day", "identity_id")),
    )


def rollup_ids(person) -> set[int]:
    return set(DailyRollup.objects.filter(day=DAY, person=person).values_list("pk", flat=True))


def test_an_import_marks_its_identities_days_and_the_refresh_rewrites_only_their_peoples_rollups(org):
    ivy, pat = org["infra_engineer"], org["platform_manager"]
    usage_for(ivy, day=DAY, tokens=500)
    usage_for(pat, day=DAY, tokens=700)
    standings_refresh(today=TODAY)
    ivys_rows, pats_rows = rollup_ids(ivy), rollup_ids(pat)

    cursor_import((DAY, ivy.email, 40), (date(2026, 9, 2), ivy.email, 2))

    cursor = Identity.objects.get(provider="cursor", person=ivy)
    assert marks() == ({DAY: False, date(2026, 9, 2): False}, {(DAY, cursor.pk), (date(2026, 9, 2), cursor.pk)})
    standings_refresh(today=TODAY)
    assert marks() == ({}, set())
    # Pat's rows of the day were not even compared; Ivy's day gained a row for her Cursor usage.
    assert rollup_ids(pat) == pats_rows
    assert ivys_rows < rollup_ids(ivy)
    september = TeamMemberStanding.objects.get(
        window__period="month", window__start=DAY, window__provider="", person=ivy
    ).total_tokens
    assert september == 500 + 40 + 2
    # Cursor's first usage came in on scoped days: its own boards are kept from this refresh on.
    cursors_september = TeamMemberStanding.objects.get(
        window__period="month", window__start=DAY, window__provider="cursor", person=ivy
    ).total_tokens
    assert cursors_september == 40 + 2
    assert standings_differences(today=TODAY) == []


def test_a_newer_export_marks_the_identities_whose_records_it_replaced(org):
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    cursor_import((DAY, ivy.email, 40), (DAY, paul.email, 30))
    standings_refresh(today=TODAY)

    cursor_import((DAY, ivy.email, 45))  # the same day again, without Paul: his record goes

    pauls = Identity.objects.get(provider="cursor", person=paul)
    assert (DAY, pauls.pk) in marks()[1]
    standings_refresh(today=TODAY)
    assert not TeamMemberStanding.objects.filter(window__period="day", window__start=DAY, person=paul).exists()
    assert standings_differences(today=TODAY) == []


def test_unassigned_and_shared_identities_are_rewritten_for_themselves(org):
    nobody = IdentityFactory(person=None)
    shared = IdentityFactory(person=None, attribution="shared", shared_team=org["infra"])
    for identity in (nobody, shared):
        UsageRecordFactory(identity=identity, day=DAY, provider=identity.provider, input_tokens=7)
    standings_refresh(today=TODAY)
    DailyRollup.objects.filter(identity__in=[nobody, shared]).update(total_tokens=1)  # stale: the refresh redoes them

    standings_mark_usage([(DAY, nobody.pk), (DAY, shared.pk)])
    standings_refresh(today=TODAY)

    assert set(DailyRollup.objects.filter(identity__in=[nobody, shared]).values_list("total_tokens", flat=True)) == {7}
    assert standings_differences(today=TODAY) == []


def test_a_day_marked_whole_stays_whole_whichever_mark_comes_first():
    identity = IdentityFactory()
    standings_mark_days([DAY])
    standings_mark_usage([(DAY, identity.pk), (date(2026, 9, 2), identity.pk)])
    assert marks()[0] == {DAY: True, date(2026, 9, 2): False}
    standings_mark_days([date(2026, 9, 2)])
    assert marks()[0] == {DAY: True, date(2026, 9, 2): True}


def test_a_change_to_more_identities_than_scoped_most_identities_marks_whole_days():
    identities = [IdentityFactory().pk for _ in range(3)]
    with patch.object(standings, "SCOPED_MOST_IDENTITIES", 2):
        standings_mark_usage([(DAY, pk) for pk in identities])
    assert marks() == ({DAY: True}, set())


def test_a_day_whose_identities_were_taken_in_by_another_refresh_is_rewritten_whole(org):
    ivy, pat = org["infra_engineer"], org["platform_manager"]
    usage_for(ivy, day=DAY, tokens=500)
    record = usage_for(pat, day=DAY, tokens=700)
    standings_refresh(today=TODAY)
    # A refresh read the identity's mark after the day's was renewed: the day is left marked, its identities not.
    record.input_tokens = record.total_tokens = 900
    record.save()
    standings_mark_usage([(DAY, record.identity_id)])
    StandingsDirtyIdentity.objects.all().delete()

    standings_refresh(today=TODAY)

    assert TeamMemberStanding.objects.get(window__period="day", window__start=DAY, person=pat).total_tokens == 900
    assert standings_differences(today=TODAY) == []


def test_rows_outside_the_scope_are_not_read_again_and_a_whole_day_mark_repairs_them(org):
    ivy, pat = org["infra_engineer"], org["platform_manager"]
    ivys = usage_for(ivy, day=DAY, tokens=500)
    usage_for(pat, day=DAY, tokens=700)
    standings_refresh(today=TODAY)
    DailyRollup.objects.filter(day=DAY, person=pat).update(total_tokens=1)  # as if damaged

    standings_mark_usage([(DAY, ivys.identity_id)])
    standings_refresh(today=TODAY)

    assert set(DailyRollup.objects.filter(day=DAY, person=pat).values_list("total_tokens", flat=True)) == {1}
    standings_mark_days([DAY])
    standings_refresh(today=TODAY)
    assert set(DailyRollup.objects.filter(day=DAY, person=pat).values_list("total_tokens", flat=True)) == {700}
    assert standings_differences(today=TODAY) == []
