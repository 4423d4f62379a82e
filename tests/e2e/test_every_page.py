"""Checks every page must pass (tests/e2e/pages.py lists them): at 390 px phone width nothing scrolls sideways,
and axe-core finds no serious or critical violation, at phone and desktop width, light and dark."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.factories import ImportBatchFactory, person_in_team, usage_for
from usage.models import ProviderConnection
from usage.services.standings import standings_refresh

from .conftest import PASSWORD
from .pages import PAGES, axe_violations, sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]
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
    ImportBatchFactory(status="succeeded", original_name="openai-usage-2026-09.json", rows_read=120, rows_imported=120)
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
        "connection": connection.pk,
        "date": ANCHOR.isoformat(),
    }


def _open(browser, live_server, username, viewport, color_scheme="light"):
    context = browser.new_context(viewport=viewport, color_scheme=color_scheme)
    page = context.new_page()
    if username:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return context, page


def _check_every_page(browser, live_server, data, viewport, color_scheme, *, scroll: bool) -> list[str]:
    problems = []
    by_user: dict = {}
    try:
        for name, path, username in PAGES:
            if username not in by_user:
                by_user[username] = _open(browser, live_server, username, viewport, color_scheme)
            page = by_user[username][1]
            response = page.goto(live_server.url + path.format(**data))
            if response.status != 200:
                problems.append(f"{name}: HTTP {response.status}")
                continue
            page.wait_for_load_state("networkidle")
            overflow = sideways_scroll(page) if scroll else None
            if overflow:
                problems.append(f"{name}: scrolls sideways {overflow}")
            problems.extend(f"{name}: {violation}" for violation in axe_violations(page))
    finally:
        for context, _page in by_user.values():
            context.close()
    return problems


def test_no_page_scrolls_sideways_at_phone_width_or_fails_axe(browser, live_server, every_page_data):
    problems = _check_every_page(
        browser, live_server, every_page_data, {"width": 390, "height": 844}, "light", scroll=True
    )
    assert not problems, "\n".join(problems)


def test_no_page_fails_axe_at_desktop_width_in_the_dark_theme(browser, live_server, every_page_data):
    problems = _check_every_page(
        browser, live_server, every_page_data, {"width": 1280, "height": 900}, "dark", scroll=False
    )
    assert not problems, "\n".join(problems)
