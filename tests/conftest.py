"""Shared fixtures: personas for role tests, an org with two teams, and service requirements.

Tests marked `needs_services` need real PostgreSQL + Redis: on the embedded default they are skipped,
but when CI is set a missing server is a failure, never a silent skip.
"""

import os
from datetime import date
from unittest import mock

import pytest
from django.conf import settings

from tests.factories import TeamFactory, UserFactory, person_in_team

IN_CI = bool(os.environ.get("CI"))
CHROMIUM = "/usr/bin/chromium"


def _services_missing() -> str:
    if not os.environ.get("REDIS_URL"):
        return "REDIS_URL is not set"
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        return "DATABASE_URL is not PostgreSQL"
    return ""


def pytest_runtest_setup(item):
    requirements = (
        ("needs_services", _services_missing),
        ("browser", lambda: "" if os.path.exists(CHROMIUM) else f"{CHROMIUM} is not installed"),
    )
    for marker, missing in requirements:
        reason = missing() if item.get_closest_marker(marker) else ""
        if reason and IN_CI:
            pytest.fail(f"CI requires this test to run, but {reason}", pytrace=False)
        if reason:
            pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    # Fast hashing: the default PBKDF2 makes every test user cost ~0.3 s.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TOKENBOARD_INBOX = tmp_path / "inbox"


@pytest.fixture(autouse=True)
def sent_tasks(request, monkeypatch):
    """Tasks the code queues through usage.queue, recorded on a Mock by task (`sent_tasks.process_import`)
    instead of sent: a broker in tests would pile messages up for the next `make run`. Tests marked
    `real_broker` send for real, to a worker they start."""
    sent = mock.Mock()
    if not request.node.get_closest_marker("real_broker"):
        monkeypatch.setattr(
            "usage.queue.send",
            lambda name, *args, **kwargs: getattr(sent, name.removeprefix("usage."))(*args, **kwargs),
        )
    return sent


@pytest.fixture(autouse=True)
def _standings_refreshed_before_requests(monkeypatch):
    """What the refresh worker does in production, done before each test request: the standings show every
    committed change. Tests that call the selectors directly run `standings_refresh()` themselves."""
    from django.test import Client

    from usage.models import StandingsDirtyDay
    from usage.services.standings import standings_refresh

    original = Client.request

    def request(self, **kwargs):
        if StandingsDirtyDay.objects.exists():
            standings_refresh()
        return original(self, **kwargs)

    monkeypatch.setattr(Client, "request", request)


@pytest.fixture
def org(db):
    """Engineering → {Platform → Infra, Product}: two managed subtrees and an engineer in each."""
    engineering = TeamFactory(name="Engineering", slug="engineering")
    platform = TeamFactory(name="Platform", slug="platform", parent=engineering)
    infra = TeamFactory(name="Infra", slug="infra", parent=platform)
    product = TeamFactory(name="Product", slug="product", parent=engineering)
    platform_manager = person_in_team(
        platform, user=UserFactory(username="platform_manager"), display_name="Pat Manager"
    )
    platform.managers.add(platform_manager)
    product_manager = person_in_team(product, user=UserFactory(username="product_manager"), display_name="Prue Manager")
    product.managers.add(product_manager)
    infra_engineer = person_in_team(infra, user=UserFactory(username="infra_engineer"), display_name="Ivy Infra")
    product_engineer = person_in_team(
        product, user=UserFactory(username="product_engineer"), display_name="Paul Product"
    )
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    return {
        "engineering": engineering,
        "platform": platform,
        "infra": infra,
        "product": product,
        "platform_manager": platform_manager,
        "product_manager": product_manager,
        "infra_engineer": infra_engineer,
        "product_engineer": product_engineer,
        "admin": admin,
    }


@pytest.fixture
def today():
    return date(2026, 9, 15)
