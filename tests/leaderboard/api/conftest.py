"""Fixtures for the API tests: an authenticated client per persona of the `org` fixture, and usage on a known day."""

from datetime import date

import pytest
from rest_framework.test import APIClient

from tests.factories import usage_for

DAY = date(2026, 9, 1)
# A custom window around DAY: explicit, so no test depends on today's date.
WINDOW = {"start": "2026-09-01", "end": "2026-09-30"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def clients(org):
    """engineer (Infra), manager_x (Platform, above Infra), manager_y (Product), admin."""
    return {
        "engineer": client_for(org["infra_engineer"].user),
        "manager_x": client_for(org["platform_manager"].user),
        "manager_y": client_for(org["product_manager"].user),
        "admin": client_for(org["admin"]),
    }


@pytest.fixture
def usage(org):
    """Infra engineer 1000 tokens, product engineer 3000, platform manager 2000, all on DAY."""
    return {
        "infra": usage_for(org["infra_engineer"], day=DAY, tokens=1000, cost_usd="1.250000"),
        "product": usage_for(org["product_engineer"], day=DAY, tokens=3000, cost_usd="3.500000"),
        "platform_manager": usage_for(org["platform_manager"], day=DAY, tokens=2000, cost_usd="2.000000"),
    }


@pytest.fixture(autouse=True)
def _fresh_throttle_counts(settings):
    """Write throttling counts live in the cache. Redis keeps them across tests, so each test starts afresh
    there (the embedded database cache is rolled back with each test anyway)."""
    from django.core.cache import cache

    redis = "redis" in settings.CACHES["default"]["BACKEND"].lower()
    if redis:
        cache.clear()
    yield
    if redis:
        cache.clear()
