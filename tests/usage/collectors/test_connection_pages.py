"""The Connections page, the Django admin and /api/v1/connections/: admins only, the key write-only."""

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from tests.usage.collectors.fake_providers import GOOD_KEY
from usage.crypto import api_key_decrypt
from usage.models import ProviderConnection
from usage.services.connections import connection_create

pytestmark = pytest.mark.django_db

SECRET = "sk-admin-VERY-SECRET-value-42"


@pytest.fixture
def admin_client(client, org):
    client.force_login(org["admin"])
    return client


@pytest.fixture
def queued(sent_tasks):
    """The pulls queued, as the keyword arguments the task gets."""
    return sent_tasks.pull_provider_usage.call_args_list


def test_only_admins_reach_the_connections_page_and_api(client, org):
    connection = connection_create(provider="openai", name="org", api_key=SECRET)
    for username in ("infra_engineer", "platform_manager"):
        client.force_login(org[username].user)
        assert client.get(reverse("connections-list")).status_code == 403
        assert client.post(reverse("connection-sync", args=[connection.pk])).status_code == 403
        assert client.get("/api/v1/connections/").status_code == 403
        assert (
            client.post("/api/v1/connections/", {"provider": "openai", "name": "x", "api_key": "k"}).status_code == 403
        )
    assert ProviderConnection.objects.count() == 1


def test_the_page_shows_health_and_never_the_key(admin_client):
    connection = connection_create(provider="anthropic", name="Anthropic org", api_key=SECRET)
    connection.failing = True
    connection.last_error = (
        "Anthropic GET /v1/organizations/users: HTTP 401 (bad or revoked API key): invalid x-api-key"
    )
    connection.last_rows_pulled = 1234
    connection.save()

    page = admin_client.get(reverse("connections-list")).content.decode()
    edit = admin_client.get(reverse("connection-edit", args=[connection.pk])).content.decode()

    assert "Anthropic org" in page and "Failing" in page and "invalid x-api-key" in page and "1,234" in page
    assert "Sync now" in page and "Test connection" in page
    assert "Next run" in page and "not scheduled" not in page  # enabled → a beat task → a next run time
    for html in (page, edit):
        assert SECRET not in html
        assert bytes(connection.encrypted_api_key).decode() not in html


def test_creating_a_connection_on_the_page_encrypts_the_key_and_schedules_it(admin_client):
    response = admin_client.post(
        reverse("connection-create"),
        {
            "provider": "openai",
            "name": "OpenAI org",
            "api_key": SECRET,
            "base_url": "",
            "schedule": "30 * * * *",
            "restatement_days": "3",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = ProviderConnection.objects.get(name="OpenAI org")
    assert api_key_decrypt(connection.encrypted_api_key) == SECRET
    assert PeriodicTask.objects.get(name="connection:OpenAI org").crontab.minute == "30"

    # Editing without typing a key keeps the stored one; a bad cron is refused on the form.
    response = admin_client.post(
        reverse("connection-edit", args=[connection.pk]),
        {"provider": "openai", "name": "OpenAI org", "api_key": "", "schedule": "nonsense", "restatement_days": "3"},
    )
    assert response.status_code == 200 and "not a cron expression" in response.content.decode()
    admin_client.post(
        reverse("connection-edit", args=[connection.pk]),
        {"provider": "openai", "name": "OpenAI org", "api_key": "", "schedule": "0 * * * *", "restatement_days": "2"},
    )
    connection.refresh_from_db()
    assert connection.restatement_days == 2 and not connection.enabled
    assert api_key_decrypt(connection.encrypted_api_key) == SECRET
    assert not PeriodicTask.objects.filter(name="connection:OpenAI org").exists()  # disabled → unscheduled


def test_sync_now_queues_a_pull_and_test_connection_reports_the_answer(admin_client, queued, anthropic_api, sleeps):
    connection = connection_create(provider="anthropic", name="org", api_key=GOOD_KEY, base_url=anthropic_api.url)

    response = admin_client.post(reverse("connection-sync", args=[connection.pk]), follow=True)
    assert [call.kwargs for call in queued] == [{"connection_id": connection.pk, "manual": True}]
    assert "Queued a pull" in response.content.decode()

    response = admin_client.post(reverse("connection-test", args=[connection.pk]), follow=True)
    assert "the key is an organization Admin key" in response.content.decode()
    assert anthropic_api.requests[-1].headers["x-api-key"] == GOOD_KEY


def test_sync_now_with_the_broker_down_says_so_instead_of_failing_the_page(admin_client, monkeypatch):
    def broker_down(name, *args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr("usage.queue.send", broker_down)
    connection = connection_create(provider="openai", name="org", api_key="k")

    response = admin_client.post(reverse("connection-sync", args=[connection.pk]), follow=True)

    assert response.status_code == 200
    assert "task broker is unavailable" in response.content.decode()
    assert admin_client.post(f"/api/v1/connections/{connection.pk}/sync/").status_code == 503


def test_the_api_takes_the_key_but_never_returns_it(admin_client, queued):
    response = admin_client.post(
        "/api/v1/connections/",
        {"provider": "cursor", "name": "Cursor team", "api_key": SECRET, "schedule": "0 */6 * * *"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "api_key" not in body and body["restatement_days"] == 3 and body["enabled"] is True
    assert body["next_run"] is not None
    connection = ProviderConnection.objects.get(pk=body["id"])
    assert api_key_decrypt(connection.encrypted_api_key) == SECRET

    listing = admin_client.get("/api/v1/connections/")
    detail = admin_client.get(f"/api/v1/connections/{connection.pk}/")
    for response in (listing, detail):
        assert response.status_code == 200 and SECRET not in response.content.decode()
    assert listing.json()["results"][0]["name"] == "Cursor team"

    response = admin_client.patch(
        f"/api/v1/connections/{connection.pk}/", {"enabled": False}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["next_run"] is None
    response = admin_client.patch(
        f"/api/v1/connections/{connection.pk}/", {"schedule": "bad"}, content_type="application/json"
    )
    assert response.status_code == 400 and "schedule" in response.json()

    assert admin_client.post(f"/api/v1/connections/{connection.pk}/sync/").status_code == 202
    assert [call.kwargs for call in queued] == [{"connection_id": connection.pk, "manual": True}]
    assert admin_client.delete(f"/api/v1/connections/{connection.pk}/").status_code == 204
    assert not ProviderConnection.objects.exists()


def test_the_django_admin_saves_through_the_service_and_never_shows_the_key(admin_client):
    response = admin_client.post(
        "/admin/usage/providerconnection/add/",
        {
            "provider": "anthropic",
            "name": "Anthropic org",
            "api_key": SECRET,
            "base_url": "",
            "schedule": "0 * * * *",
            "restatement_days": "3",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    connection = ProviderConnection.objects.get(name="Anthropic org")
    assert api_key_decrypt(connection.encrypted_api_key) == SECRET
    assert PeriodicTask.objects.filter(name="connection:Anthropic org").exists()

    change = admin_client.get(f"/admin/usage/providerconnection/{connection.pk}/change/").content.decode()
    assert SECRET not in change and 'type="password"' in change
    # The schedule is an ordinary periodic task in the admin, where it can be edited.
    tasks = admin_client.get("/admin/django_celery_beat/periodictask/").content.decode()
    assert "connection:Anthropic org" in tasks


def test_moving_a_connection_to_another_host_requires_the_key_again_on_the_api(admin_client, sent_tasks):
    connection = connection_create(provider="openai", name="org", api_key=SECRET)
    url = f"/api/v1/connections/{connection.pk}/"
    moved = admin_client.patch(url, {"base_url": "http://127.0.0.1:8193"}, content_type="application/json")
    assert moved.status_code == 400
    assert "enter the API key again" in moved.json()["api_key"][0]
    connection.refresh_from_db()
    assert connection.base_url == ""  # unchanged, so a test or pull still goes to the provider's own API
    switched = admin_client.patch(url, {"provider": "anthropic"}, content_type="application/json")
    assert switched.status_code == 400 and "api_key" in switched.json()
    # With the key entered again, the move is the admin's informed choice.
    again = admin_client.patch(
        url, {"base_url": "http://127.0.0.1:8193", "api_key": "sk-for-the-proxy"}, content_type="application/json"
    )
    assert again.status_code == 200
    connection.refresh_from_db()
    assert api_key_decrypt(connection.encrypted_api_key) == "sk-for-the-proxy"


def test_moving_a_connection_to_another_host_requires_the_key_again_on_the_page(admin_client, sent_tasks):
    connection = connection_create(provider="openai", name="org", api_key=SECRET)
    fields = {"provider": "openai", "name": "org", "schedule": "0 * * * *", "restatement_days": "3", "enabled": "on"}
    response = admin_client.post(
        reverse("connection-edit", args=[connection.pk]), {**fields, "api_key": "", "base_url": "http://evil.example"}
    )
    assert response.status_code == 200 and "enter the API key again" in response.content.decode()
    connection.refresh_from_db()
    assert connection.base_url == "" and api_key_decrypt(connection.encrypted_api_key) == SECRET
