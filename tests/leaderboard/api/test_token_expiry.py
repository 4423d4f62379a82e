"""API tokens expire, record when they were last used, and can be revoked from the profile page; an expired or
revoked token gets a 401 that says which."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from usage.auth import api_token_create
from usage.models import ApiToken

URL = "/api/v1/leaderboard/people/"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_token_works_until_it_expires_then_401_says_it_expired(org):
    record, token = api_token_create(user=org["infra_engineer"].user, days=30)
    assert record.expires_at - record.created_at == pytest.approx(timedelta(days=30), abs=timedelta(seconds=5))
    assert bearer(token).get(URL).status_code == 200
    with time_machine.travel(record.expires_at + timedelta(seconds=1)):
        response = bearer(token).get(URL)
    assert response.status_code == 401
    assert "expired on" in response.json()["detail"] and "profile" in response.json()["detail"]


def test_the_lifetime_is_capped_by_the_setting(org, settings):
    settings.TOKENBOARD_API_TOKEN_MAX_DAYS = 7
    record, _ = api_token_create(user=org["infra_engineer"].user, days=365)
    assert record.expires_at <= timezone.now() + timedelta(days=7)
    default, _ = api_token_create(user=org["infra_engineer"].user)
    assert default.expires_at > timezone.now() + timedelta(days=6)


def test_a_revoked_token_gets_401_saying_it_was_revoked(org):
    user = org["infra_engineer"].user
    record, token = api_token_create(user=user)
    client = Client()
    client.force_login(user)
    client.post("/profile/", {"action": "revoke_token", "token": record.pk})
    response = bearer(token).get(URL)
    assert response.status_code == 401 and "was revoked on" in response.json()["detail"]


def test_the_profile_lists_lifetime_last_use_and_revocation(org):
    user = org["infra_engineer"].user
    client = Client()
    client.force_login(user)
    created = client.post("/profile/", {"action": "create_token", "name": "ci", "days": "30"})
    token = re.search(r'<code id="new-token" class="token">([^<]+)</code>', created.content.decode())[1]
    record = ApiToken.objects.get(name="ci")
    assert timedelta(days=29) < record.expires_at - timezone.now() <= timedelta(days=30)
    assert record.last_used_at is None
    bearer(token).get(URL)
    record.refresh_from_db()
    assert record.last_used_at is not None
    page = client.get("/profile/").content.decode()
    assert f"{record.expires_at:%-d %b %Y}" in page and "Revoke token ci" in page
    client.post("/profile/", {"action": "revoke_token", "token": record.pk})
    page = client.get("/profile/").content.decode()
    assert "revoked" in page and "Revoke token ci" not in page


def test_the_command_creates_a_token_with_a_lifetime(org, capsys):
    call_command("api_token", "infra_engineer", "--days", "10")
    token = capsys.readouterr().out.strip()
    record = ApiToken.objects.get()
    assert token.startswith("tb_") and record.expires_at < timezone.now() + timedelta(days=10, minutes=1)
    assert bearer(token).get(URL).status_code == 200
