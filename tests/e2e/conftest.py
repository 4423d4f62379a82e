"""Browser tests: pytest-playwright driving Debian's Chromium against pytest-django's live_server.

Playwright's sync API runs an event loop in the test thread, so Django would refuse ORM calls made from
it (SynchronousOnlyOperation); the tests only touch the database between browser steps, never concurrently.
"""

import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM
from tests.factories import ImportBatchFactory, person_in_team, usage_for
from usage.models import ProviderConnection
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
def page(live_server, page):
    """pytest-playwright's page, set up after the live server so it is torn down before the database is emptied,
    and left only once the htmx request a test's last step started has been answered: a request still running
    when pytest-django truncates the tables deadlocked the truncation in CI."""
    yield page
    if not page.is_closed():
        page.wait_for_function("() => !document.querySelector('.htmx-request')")


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
        page.wait_for_url(f"{live_server.url}/overview/")

    return log_in


ANCHOR = date(2026, 9, 15)


@pytest.fixture
def every_page_data(org):
    """A few weeks of usage over two providers, an import that failed on a row, a failing connection."""
    models = (("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-5"), ("cursor", "composer-1"))
    people = ("infra_engineer", "product_engineer", "platform_manager", "product_manager")
    for offset in range(0, 75, 2):
        for index, person in enumerate(people):
            provider, model = models[(offset + index) % len(models)]
            usage_for(
                org[person],
                day=ANCHOR - timedelta(days=offset),
                tokens=200_000 * (index + 1) + offset * 1000,
                provider=provider,
                model=model,
                cost_usd=Decimal("1.25"),
            )
    # A long name in the movers and rankings: long names must wrap, not push the page sideways.
    long_name = person_in_team(org["infra"], display_name="Maximiliana Featherstonehaugh-Worthington-Smythe")
    usage_for(long_name, day=ANCHOR, tokens=9_000_000, provider="anthropic", model="claude-sonnet-4-5")
    usage_for(long_name, day=ANCHOR - timedelta(days=8), tokens=10_000, provider="openai", model="gpt-4.1")
    succeeded = ImportBatchFactory(
        status="succeeded", original_name="openai-usage-2026-09.json", rows_read=120_000, rows_imported=119_870
    )
    batch = ImportBatchFactory(
        status="failed",
        original_name="anthropic-usage-with-a-long-file-name-2026-09.csv",
        error_summary="anthropic-usage.csv: 1 bad row(s), file rejected whole (first: line 7: input_tokens is "
        "not a whole number ('lots')). Fix the file, or re-import choosing 'import the good rows'.",
        errors=[{"line": 7, "reason": "input_tokens is not a whole number ('lots')"}],
        rows_rejected=1,
    )
    connection = ProviderConnection.objects.create(
        provider="openai",
        name="OpenAI organisation with a long connection name",
        encrypted_api_key=b"x",
        failing=True,
        last_error="401 Unauthorized: the admin key was revoked; create a new admin key and paste it here",
    )
    standings_refresh()
    return {
        "person": org["infra_engineer"].pk,
        "team": org["platform"].pk,
        "import_batch": batch.pk,
        "imports": f"{succeeded.pk}&ids={batch.pk}",
        "connection": connection.pk,
        "date": ANCHOR.isoformat(),
    }
