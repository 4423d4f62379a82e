"""Single sign-on end to end against a real OpenID provider on 127.0.0.1 (oidc-provider-mock, in a thread):
the authorization redirect, the code exchange over HTTP, the RS256 ID token checked against the provider's
JWKS, and the userinfo claims — nothing about the protocol is faked."""

from datetime import date
from decimal import Decimal
from urllib.parse import quote, urlsplit

import httpx
import oidc_provider_mock
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import UserFactory, person_in_team, usage_for
from usage.models import AuditEntry, Person

ADMINS = "tokenboard-admins"


@pytest.fixture(scope="module")
def provider():
    with oidc_provider_mock.run_server_in_thread() as server:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        base = f"http://127.0.0.1:{port}"
        yield base, httpx.get(f"{base}/.well-known/openid-configuration").json()


@pytest.fixture
def sso(settings, provider):
    base, discovery = provider
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = "tokenboard"
    settings.OIDC_RP_CLIENT_SECRET = "client-secret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = discovery["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = discovery["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = discovery["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = discovery["jwks_uri"]
    settings.OIDC_ADMIN_GROUPS = [ADMINS]
    settings.OIDC_VERIFY_KID = False  # the mock signs with its only key and names none ("kid"); real IdPs do

    def sign_in(client: Client, sub: str, *, next_url: str = "/", **claims):
        """Log `client` in as `sub` with these claims; returns the response of the final redirect."""
        claims = {"email": sub, "email_verified": True, **claims}
        assert httpx.put(f"{base}/users/{quote(sub)}", json=claims).status_code == 204
        start = client.get(f"/oidc/authenticate/?next={quote(next_url)}")
        assert start.status_code == 302 and start["Location"].startswith(discovery["authorization_endpoint"])
        consent = httpx.post(start["Location"], data={"sub": sub})  # the user approves at the provider
        assert consent.status_code == 302, consent.text
        callback = urlsplit(consent.headers["location"])
        assert callback.path == "/oidc/callback/"
        return client.get(f"{callback.path}?{callback.query}", follow=True)

    return sign_in


def _events(name: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(event=name).order_by("pk"))


def _admin_changes() -> list:
    """[old, new] of each recorded change of a user's admin flag (the org fixture's managers are role changes too)."""
    return [e.changes["is_staff"] for e in _events("role.change") if "is_staff" in e.changes]


def test_first_sso_login_links_the_person_by_verified_email_and_groups_make_an_admin(org, sso):
    sam = person_in_team(org["product"], email="sam@acme.example", display_name="Sam Sso")
    client = Client()
    response = sso(client, "Sam@Acme.example", next_url="/profile/", groups=[ADMINS, "everyone"])
    assert response.redirect_chain[-1][0] == "/profile/"
    user = get_user_model().objects.get(email="sam@acme.example")
    assert user.username == "sam@acme.example" and not user.has_usable_password()
    sam.refresh_from_db()
    assert sam.user == user
    assert user.is_staff
    assert client.get("/imports/").status_code == 200  # an admin now
    assert "sam@acme.example · admin" in response.content.decode()  # the header shows the role
    login = _events("login")[-1]
    assert login.actor == user and login.additional_data == {"method": "sso"}
    assert _admin_changes() == [[False, True]]


def test_leaving_the_admin_group_takes_admin_away_at_the_next_login(org, sso):
    person_in_team(org["product"], email="ada@acme.example", display_name="Ada Admin")
    sso(Client(), "ada@acme.example", groups=[ADMINS])
    assert get_user_model().objects.get(email="ada@acme.example").is_staff

    client = Client()
    sso(client, "ada@acme.example", groups=["everyone"])
    user = get_user_model().objects.get(email="ada@acme.example")
    assert not user.is_staff
    assert client.get("/imports/").status_code == 403
    assert client.get("/api/v1/imports/").status_code == 403
    assert _admin_changes() == [[False, True], [True, False]]


def test_managers_still_come_from_the_org_import_not_from_groups(org, sso):
    manager = org["product_manager"]
    manager.user.email = manager.email
    manager.user.save()
    client = Client()
    sso(client, manager.email, groups=[])
    assert client.get(f"/teams/{org['product'].pk}/members.csv").status_code == 200  # manages Product
    assert client.get(f"/teams/{org['platform'].pk}/members.csv").status_code == 403


def test_an_email_that_matches_no_person_signs_in_but_sees_no_ones_detail(org, sso):
    usage_for(org["product_engineer"], day=date(2026, 9, 14), tokens=1_200_000, cost_usd=Decimal("1234.56"))
    client = Client()
    response = sso(client, "stranger@elsewhere.example")
    page = response.content.decode()
    assert "no one in the org has this email address" in page
    assert not Person.objects.filter(user__email="stranger@elsewhere.example").exists()
    other = org["product_engineer"]
    person_page = client.get(f"/people/{other.pk}/?period=month&date=2026-09-15").content.decode()
    assert "1,234.56" not in person_page and "1234.56" not in person_page and other.email not in person_page
    assert client.get(f"/api/v1/people/{other.pk}/usage/").status_code == 403
    detail = client.get(f"/api/v1/people/{other.pk}/?period=month&date=2026-09-15").json()
    assert "cost_usd" not in str(detail) and other.email not in str(detail)
    assert "not linked to a person" in client.get("/profile/").content.decode()


def test_an_unverified_email_is_refused_with_a_reason_and_recorded(org, sso):
    person_in_team(org["product"], email="eve@acme.example", display_name="Eve")
    client = Client()
    response = sso(client, "eve@acme.example", email_verified=False)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "has not verified eve@acme.example" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(email="eve@acme.example").exists()
    failed = _events("login.failed")[-1]
    assert failed.object_repr == "eve@acme.example" and failed.additional_data["method"] == "sso"


def test_the_login_page_offers_sso_only_when_configured(db, settings, sso):
    assert "Sign in with SSO" in Client().get("/accounts/login/").content.decode()
    settings.OIDC_ENABLED = False
    assert "Sign in with SSO" not in Client().get("/accounts/login/").content.decode()
    assert Client().get("/oidc/authenticate/").status_code == 404
    assert Client().get("/oidc/callback/?code=x&state=y").status_code == 404


def test_password_login_switched_off_leaves_only_the_break_glass_superuser(db, settings):
    settings.TOKENBOARD_PASSWORD_LOGIN = False
    UserFactory(username="engineer")
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    page = Client().get("/accounts/login/").content.decode()
    assert "Emergency login (superusers only)" in page and "<details>" in page  # the form is folded away
    refused = Client().post("/accounts/login/", {"username": "engineer", "password": "pw"})
    assert refused.status_code == 200 and "Password login is switched off" in refused.content.decode()
    assert "_auth_user_id" not in refused.wsgi_request.session
    allowed = Client()
    assert allowed.post("/accounts/login/", {"username": "root", "password": "pw"}).status_code == 302
    assert allowed.session["_auth_user_id"] == str(root.pk)
    settings.TOKENBOARD_PASSWORD_LOGIN = True
    assert Client().post("/accounts/login/", {"username": "engineer", "password": "pw"}).status_code == 302


def test_an_existing_local_user_with_the_email_is_the_one_signed_in(org, sso):
    user = org["infra_engineer"].user
    user.email = org["infra_engineer"].email
    user.save()
    client = Client()
    sso(client, org["infra_engineer"].email)
    assert client.session["_auth_user_id"] == str(user.pk)
    assert get_user_model().objects.filter(email=user.email).count() == 1


def test_groups_only_in_the_id_token_still_count(monkeypatch, settings):
    """Entra ID puts groups (and no email_verified) in the ID token only; its userinfo lacks them."""
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend

    from usage.sso import SsoBackend

    settings.OIDC_OP_JWKS_ENDPOINT = "https://idp.example/keys"
    monkeypatch.setattr(OIDCAuthenticationBackend, "get_userinfo", lambda self, *args: {"email": "a@acme.example"})
    payload = {"email": "a@acme.example", "groups": [ADMINS], "email_verified": True}
    claims = SsoBackend().get_userinfo("access", "id-token", payload)
    assert claims == {"email": "a@acme.example", "groups": [ADMINS], "email_verified": True}


def test_a_deactivated_account_is_refused_and_recorded(org, sso):
    user = org["infra_engineer"].user
    user.email, user.is_active = org["infra_engineer"].email, False
    user.save()
    client = Client()
    response = sso(client, user.email)
    assert "your Tokenboard account is deactivated" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert _events("login.failed")[-1].additional_data["reason"].startswith("your Tokenboard account is deactivated")


def test_deactivating_a_user_ends_their_sso_session_on_the_next_request(org, sso):
    user = org["infra_engineer"].user
    user.email = org["infra_engineer"].email
    user.save()
    client = Client()
    sso(client, user.email)
    assert client.get("/profile/").status_code == 200
    user.is_active = False
    user.save()
    # mozilla-django-oidc's own get_user does not check is_active: the pages would still answer this session.
    assert client.get("/profile/")["Location"].startswith("/accounts/login/")


def test_one_persons_failed_sso_logins_do_not_lock_out_others_at_the_same_address(org, sso, settings):
    person_in_team(org["product"], email="eve@acme.example", display_name="Eve")
    person_in_team(org["product"], email="sam@acme.example", display_name="Sam")
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        sso(Client(), "eve@acme.example", email_verified=False)
    client = Client()
    sso(client, "sam@acme.example")
    assert client.session["_auth_user_id"] == str(get_user_model().objects.get(email="sam@acme.example").pk)
