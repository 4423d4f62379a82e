"""The user a session names is read with their viewer from the shared cache (usage.login.SignedInUserBackend),
kept under the directory's version: a deactivation, a password change and a role change show on the very next
request, whichever backend signed the user in."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import UserFactory
from usage.access import viewer_for

BACKENDS = ["usage.login.PasswordBackend", "usage.sso.SsoBackend"]
PEOPLE = "/api/v1/leaderboard/people/"
ADMIN_PAGE = "/identities/"


def signed_in(user, backend: str = BACKENDS[0]) -> Client:
    client = Client()
    client.force_login(user, backend=backend)
    return client


def tables_read(captured) -> str:
    return " ".join(query["sql"] for query in captured.captured_queries)


def test_a_signed_in_request_reads_its_user_and_viewer_from_the_cache(org):
    client = signed_in(org["product_manager"].user)
    assert client.get("/profile/").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/profile/")
    assert response.status_code == 200
    # The manager's person and managed teams come with the user, kept under the directory's version.
    viewer = viewer_for(response.wsgi_request.user)
    assert viewer.person == org["product_manager"] and viewer.managed_team_ids == {org["product"].pk}
    assert '"auth_user"' not in tables_read(captured) and "usage_team_managers" not in tables_read(captured)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deactivating_a_user_signs_them_out_on_the_next_request(org, backend):
    user = org["infra_engineer"].user
    client = signed_in(user, backend)
    assert client.get("/profile/").status_code == 200
    user.is_active = False
    user.save()
    assert client.get("/profile/")["Location"].startswith("/accounts/login/")
    assert client.get(PEOPLE).status_code in (401, 403)


def test_a_password_change_signs_out_the_users_other_sessions(org):
    user = org["infra_engineer"].user
    client = signed_in(user)
    assert client.get("/profile/").status_code == 200
    user.set_password("a new password")
    user.save()
    # The session's auth hash was made from the old password: the kept user must carry the new one.
    assert client.get("/profile/")["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_role_change_shows_on_the_next_request(org, backend):
    user = org["infra_engineer"].user
    client = signed_in(user, backend)
    assert client.get(ADMIN_PAGE).status_code == 403
    user.is_staff = True
    user.save()
    assert client.get(ADMIN_PAGE).status_code == 200
    user.is_staff = False
    user.save()
    assert client.get(ADMIN_PAGE).status_code == 403


def test_becoming_a_manager_and_linking_a_person_show_on_the_next_request(org):
    user = UserFactory(username="newcomer")
    client = signed_in(user)
    assert viewer_for(client.get("/profile/").wsgi_request.user).person is None
    person = org["product_engineer"]
    person.user = user
    person.save()
    assert viewer_for(client.get("/profile/").wsgi_request.user).person == person
    org["platform"].managers.add(person)
    viewer = viewer_for(client.get("/profile/").wsgi_request.user)
    assert viewer.managed_team_ids == {org["platform"].pk, org["infra"].pk}


def test_a_cache_that_is_down_still_signs_in_and_out(org, monkeypatch):
    from django.core.cache.backends.redis import RedisCache

    user = org["infra_engineer"].user
    client = signed_in(user)
    monkeypatch.setattr("usage.directory.cache", RedisCache("redis://127.0.0.1:1/0", {}))
    assert client.get("/profile/").status_code == 200
    user.is_active = False
    user.save()  # the directory's bump fails, logged: the user is read from the database
    assert client.get("/profile/")["Location"].startswith("/accounts/login/")
