"""Failed logins are throttled (django-axes): after AXES_FAILURE_LIMIT wrong passwords for a username from one
address, even the right password is refused for the cool-off time. Every page carries a Content-Security-Policy."""

from datetime import timedelta

import time_machine
from django.test import Client
from django.utils import timezone

from tests.factories import UserFactory
from usage.models import AuditEntry


def attempt(password: str, address: str = "10.0.0.1", username: str = "victim"):
    client = Client(REMOTE_ADDR=address)
    return client, client.post("/accounts/login/", {"username": username, "password": password})


def test_the_right_password_is_refused_after_too_many_wrong_ones(db, settings):
    UserFactory(username="victim")
    statuses = [attempt("guess")[1].status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the last failure locks
    client, response = attempt("pw")
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert (
        AuditEntry.objects.filter(event="login.failed", object_repr="victim").count() == settings.AXES_FAILURE_LIMIT + 1
    )

    # Another address is not locked out, and the lockout ends after the cool-off time.
    assert attempt("pw", address="10.0.0.2")[1].status_code == 302
    with time_machine.travel(timezone.now() + timedelta(hours=settings.AXES_COOLOFF_TIME, seconds=1)):
        assert attempt("pw")[1].status_code == 302


def test_a_forged_forwarded_for_header_does_not_reset_the_count(db, settings):
    UserFactory(username="victim")
    for number in range(settings.AXES_FAILURE_LIMIT):
        Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{number}").post(
            "/accounts/login/", {"username": "victim", "password": "guess"}
        )
    response = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.99").post(
        "/accounts/login/", {"username": "victim", "password": "pw"}
    )
    assert response.status_code == 429


def test_the_test_clients_login_still_works_without_a_request(db):
    UserFactory(username="someone")
    assert Client().login(username="someone", password="pw")
    assert not Client().login(username="someone", password="wrong")


def test_pages_carry_a_strict_content_security_policy(db):
    user = UserFactory(username="someone")
    client = Client()
    client.force_login(user)
    for url in ("/", "/accounts/login/", "/profile/"):
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
        assert directives["script-src"] == "'self'", url
        assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in directives["script-src"]
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
