"""Browser tests: pytest-playwright driving Debian's Chromium against pytest-django's live_server.

Playwright's sync API runs an event loop in the test thread, so Django would refuse ORM calls made from
it (SynchronousOnlyOperation); the tests only touch the database between browser steps, never concurrently.
"""

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM
from tests.factories import usage_for
from usage.services.standings import standings_refresh

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "pw"  # tests.factories.UserFactory's password


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Browser downloads are impossible here: use the distribution's Chromium.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}, "accept_downloads": True}


@pytest.fixture
def screenshot():
    """Save a full-page screenshot under test-artifacts/screenshots/ (git-ignored) for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def september(org):
    """Usage in September 2026: Ivy leads the month, Paul leads its last 7 days (9–15 Sep)."""
    usage_for(org["infra_engineer"], day=date(2026, 9, 2), tokens=3_400_000, cost_usd=Decimal("12.50"))
    usage_for(org["infra_engineer"], day=date(2026, 9, 10), tokens=200_000, model="gpt-4.1", cost_usd=Decimal("1"))
    usage_for(
        org["infra_engineer"], day=date(2026, 9, 11), tokens=300_000, provider="anthropic", model="claude-sonnet-4-5"
    )
    usage_for(org["product_engineer"], day=date(2026, 9, 14), tokens=1_200_000, cost_usd=Decimal("1234.56"))
    usage_for(org["platform_manager"], day=date(2026, 9, 4), tokens=500_000, cost_usd=Decimal("2.00"))
    usage_for(org["product_manager"], day=date(2026, 8, 20), tokens=900_000)
    standings_refresh()  # the refresh worker's part: the live server serves the standings it left
    return org


@pytest.fixture
def login(live_server):
    def log_in(page, username: str):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

    return log_in
