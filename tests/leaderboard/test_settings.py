import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k3y-" + "".join(chr(ord("a") + i % 26) + str(i % 10) for i in range(30))
FERNET_KEY = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; a deployment never has it.
    unset = ("SECRET_KEY", "PROVIDER_KEY_ENCRYPTION_KEYS", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = manage("check", DJANGO_SETTINGS_MODULE="leaderboard.settings_production")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    "key, reason",
    [
        ("abc", "SECRET_KEY is too weak (3 characters"),
        ("x" * 60, "SECRET_KEY is too weak (60 characters, 1 different)"),
        ("django-insecure-" + "q1w2e3r4t5" * 5, "SECRET_KEY must be set"),
        ("insecure-embedded-dev-key-do-not-use-in-production", "SECRET_KEY must be set"),
    ],
)
def test_production_settings_refuse_a_short_or_default_secret_key(key, reason):
    result = manage(
        "check",
        DJANGO_SETTINGS_MODULE="leaderboard.settings_production",
        SECRET_KEY=key,
        PROVIDER_KEY_ENCRYPTION_KEYS=FERNET_KEY,
    )
    assert result.returncode != 0
    assert reason in result.stderr


def test_production_settings_pass_the_deploy_check_with_a_strong_key():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="leaderboard.settings_production",
        SECRET_KEY=STRONG_KEY,
        PROVIDER_KEY_ENCRYPTION_KEYS=FERNET_KEY,
        ALLOWED_HOSTS="tokenboard.example",
    )
    assert result.returncode == 0, result.stderr


def test_seed_demo_refuses_to_run_with_production_settings():
    result = manage(
        "seed_demo",
        DJANGO_SETTINGS_MODULE="leaderboard.settings_production",
        SECRET_KEY=STRONG_KEY,
        PROVIDER_KEY_ENCRYPTION_KEYS=FERNET_KEY,
    )
    assert result.returncode != 0
    assert "seed_demo refuses to run with the production settings" in result.stderr


@pytest.mark.django_db
def test_a_refused_page_explains_itself(client, django_user_model):
    user = django_user_model.objects.create_user(username="eng", password="pw")
    client.force_login(user)
    response = client.get("/imports/")
    assert response.status_code == 403
    assert "Admins only." in response.content.decode() and "Back to the leaderboard" in response.content.decode()
