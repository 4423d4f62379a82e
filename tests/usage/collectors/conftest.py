from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command

from tests.usage.collectors.fake_providers import FakeProvider, FakeServer
from usage.models import ProviderConnection
from usage.services.connections import connection_lock_key

NOW = datetime(2026, 9, 15, 10, 30, tzinfo=UTC)


@pytest.fixture
def frozen_now():
    """The clock at NOW (ticking, so timeouts still work): windows and expected days are fixed."""
    with time_machine.travel(NOW, tick=True):
        yield NOW


@pytest.fixture
def lock_cache(db):
    """The cache the per-connection lock lives in: the DB cache table in the embedded run, Redis in CI."""
    if settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"):
        call_command("createcachetable", verbosity=0)
    yield cache
    # Redis outlives the test database: remove this test's lock keys (only those, it is shared).
    cache.delete_many([connection_lock_key(pk) for pk in ProviderConnection.objects.values_list("pk", flat=True)])


@pytest.fixture
def sleeps(monkeypatch):
    """Record what the HTTP client would have slept instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr("usage.collectors.http.sleep", recorded.append)
    return recorded


@pytest.fixture
def openai_api():
    with FakeServer(FakeProvider("openai")) as fake:
        yield fake


@pytest.fixture
def anthropic_api():
    with FakeServer(FakeProvider("anthropic")) as fake:
        yield fake


@pytest.fixture
def cursor_api():
    with FakeServer(FakeProvider("cursor")) as fake:
        yield fake
