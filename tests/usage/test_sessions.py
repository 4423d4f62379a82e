"""Sessions read from the shared cache and written through to the database (usage.sessions, the engine when the
shared cache is Redis): a logout or a new key ends the old session everywhere, and a cache that fails is skipped
without ever half-forgetting a session."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from redis.exceptions import RedisError

from usage.sessions import SessionStore

DOWN = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}


@pytest.fixture(autouse=True)
def _cached_sessions(settings):
    settings.SESSION_ENGINE = "usage.sessions"


@pytest.fixture
def cache_down(settings):
    settings.CACHES = {**settings.CACHES, "down": DOWN}
    settings.SESSION_CACHE_ALIAS = "down"


def signed_in(org) -> Client:
    client = Client()
    assert client.login(username="infra_engineer", password="pw")
    return client


def test_a_signed_in_request_reads_its_session_from_the_cache(org):
    client = signed_in(org)
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/profile/").status_code == 200
    assert "django_session" not in " ".join(query["sql"] for query in captured.captured_queries)


def test_logging_out_ends_the_session_in_the_cache_and_the_database(org):
    client = signed_in(org)
    key = client.cookies["sessionid"].value
    assert client.get("/profile/").status_code == 200
    client.post("/accounts/logout/")
    assert not SessionStore().exists(key)
    thief = Client()
    thief.cookies["sessionid"] = key  # the cookie as it was before the logout
    assert thief.get("/profile/")["Location"].startswith("/accounts/login/")


def test_a_new_key_retires_the_old_one(db):
    session = SessionStore()
    session["seen"] = True
    session.save()
    old = session.session_key
    session.cycle_key()  # what a login does to the visitor's session
    assert not SessionStore().exists(old) and SessionStore(old).load() == {}
    assert SessionStore(session.session_key).load() == {"seen": True}


def test_a_cache_that_is_down_still_signs_in(org, cache_down):
    client = signed_in(org)  # the session is written to the database, the cache's failure logged
    assert client.get("/profile/").status_code == 200


def test_a_logout_the_cache_cannot_record_fails_and_leaves_the_session_whole(org, settings):
    client = signed_in(org)
    key = client.cookies["sessionid"].value
    settings.CACHES = {**settings.CACHES, "down": DOWN}
    settings.SESSION_CACHE_ALIAS = "down"
    with pytest.raises(RedisError):
        client.post("/accounts/logout/")
    # Had the database forgotten it, the copy the cache still holds would sign the user back in once it answers.
    assert SessionStore().exists(key)
    assert client.get("/profile/").status_code == 200
