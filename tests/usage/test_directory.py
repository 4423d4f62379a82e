"""The directory's version (usage.directory) changes with everything a ranking shows live, and not with a login."""

from datetime import date

import pytest
from django.contrib.auth.models import update_last_login
from django.core.cache import cache

from tests.factories import MembershipFactory
from usage import directory
from usage.access import viewer_for
from usage.directory import VERSION_KEY, directory_version
from usage.services.budgets import allowance_save


def rename(org):
    org["product_engineer"].display_name = "Paula Product"
    org["product_engineer"].save()


def opt_out(org):
    org["product_engineer"].show_name = False
    org["product_engineer"].save(update_fields=["show_name"])


def move(org):
    org["product_engineer"].memberships.update(end=date(2026, 9, 9))  # no signal: the new membership bumps
    MembershipFactory(person=org["product_engineer"], team=org["infra"], start=date(2026, 9, 10))


def leave(org):
    org["product_engineer"].memberships.get().delete()


def team_rename(org):
    org["infra"].name = "Infrastructure"
    org["infra"].save()


def manager_added(org):
    org["infra"].managers.add(org["infra_engineer"])


def managers_cleared(org):
    org["platform"].managers.clear()


def role(org):
    user = org["infra_engineer"].user
    user.is_staff = True
    user.save()


def allowance(org):
    allowance_save(person=org["infra_engineer"], tokens=1000, start=date(2026, 9, 1))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change", [rename, opt_out, move, leave, team_rename, manager_added, managers_cleared, role, allowance]
)
def test_a_change_a_ranking_shows_bumps_the_version(org, change):
    before = directory_version()
    change(org)
    assert directory_version() != before


@pytest.mark.django_db
def test_a_login_does_not(org):
    before = directory_version()
    update_last_login(None, org["infra_engineer"].user)
    assert directory_version() == before


@pytest.mark.django_db
def test_the_viewers_key_names_every_fact_of_their_role(org, settings):
    manager, engineer = viewer_for(org["platform_manager"].user), viewer_for(org["infra_engineer"].user)
    assert manager.cache_key() != engineer.cache_key()
    key = engineer.cache_key()
    settings.TOKENBOARD_SHARE_SAFE = not settings.TOKENBOARD_SHARE_SAFE
    assert engineer.cache_key() != key


@pytest.mark.django_db
def test_other_processes_see_the_change_once_it_commits(org, django_capture_on_commit_callbacks):
    directory_version()
    shared = cache.get(VERSION_KEY)
    with django_capture_on_commit_callbacks() as pending:
        rename(org)
    assert cache.get(VERSION_KEY) == shared  # no row of the database cache locked until the commit
    for callback in pending:
        callback()
    assert cache.get(VERSION_KEY) != shared


@pytest.mark.django_db
def test_a_transaction_that_changes_many_rows_bumps_the_version_once(
    org, django_capture_on_commit_callbacks, monkeypatch
):
    bumps = []
    monkeypatch.setattr(directory, "_bump", lambda: bumps.append(1))
    with django_capture_on_commit_callbacks(execute=True) as ran:
        for name in ("Paula", "Paola", "Pauline"):  # an org import saves every person it touches
            org["product_engineer"].display_name = name
            org["product_engineer"].save()
    assert len(ran) == 3 and bumps == [1]
