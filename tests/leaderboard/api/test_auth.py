from rest_framework.test import APIClient

from usage.auth import api_token_create
from usage.models import ApiToken

URL = "/api/v1/leaderboard/people/"


def test_a_personal_token_authenticates_as_its_user_with_that_users_role(org):
    _, token = api_token_create(user=org["infra_engineer"].user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(URL).status_code == 200
    assert client.get("/api/v1/usage/").status_code == 403  # an engineer's token is an engineer
    assert ApiToken.objects.get().last_used_at is not None


def test_a_bad_token_is_401_with_a_bearer_challenge(org):
    api_token_create(user=org["infra_engineer"].user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer tb_not-a-real-token")
    response = client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert "Invalid or revoked" in response.json()["detail"]


def test_a_token_of_a_deactivated_user_is_401(org):
    user = org["infra_engineer"].user
    _, token = api_token_create(user=user)
    user.is_active = False
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(URL).status_code == 401


def test_no_credentials_is_401_for_every_api_endpoint_and_the_schema(org):
    client = APIClient()
    for url in (URL, "/api/v1/usage/", "/api/v1/imports/", "/api/v1/identities/", "/api/schema/", "/api/docs/"):
        assert client.get(url).status_code == 401, url


def test_the_browser_session_works_too(client, org):
    client.force_login(org["infra_engineer"].user)
    assert client.get(URL).status_code == 200


def test_session_writes_need_the_csrf_token(org):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(org["admin"])
    response = client.patch("/api/v1/identities/1/", {"person": None}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
