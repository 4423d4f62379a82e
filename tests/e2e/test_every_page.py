"""Checks every page must pass (tests/e2e/pages.py lists them): at 390 px phone width nothing scrolls sideways,
and axe-core finds no serious or critical violation, at phone and desktop width, light and dark."""

import pytest

from .conftest import PASSWORD
from .pages import PAGES, axe_violations, sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


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
