"""Issue 13 in a real browser: a manager opens their team's budget page and sees the burn-down chart."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import usage_for
from usage.periods import org_today, window_for
from usage.services.budgets import allowance_save, budget_save
from usage.services.standings import standings_refresh

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_a_manager_sees_the_team_budget_page_with_the_burn_down_chart(page, live_server, login, org, screenshot):
    today = org_today()
    quarter = window_for("quarter", today)
    day = quarter.start
    while day <= today:  # the current quarter's days so far, whatever today is
        usage_for(org["infra_engineer"], day=day, tokens=40_000)
        day += timedelta(days=1)
    budget_save(team=org["platform"], period="quarter", tokens=3_000_000, start=quarter.start)
    allowance_save(team=org["platform"], period="quarter", tokens=2_000_000, start=quarter.start)
    standings_refresh()

    login(page, "platform_manager")
    page.goto(f"{live_server.url}/teams/{org['platform'].pk}/")
    page.get_by_role("link", name="Budget and allowances").click()
    expect(page.locator("h1")).to_have_text("Platform: budget")
    expect(page.locator("#chart-burn-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("#chart-burn-plot")).to_have_attribute("aria-label", re.compile(r"Burn-down.*Used: "))
    expect(page.locator("figure.chart figcaption")).to_contain_text("Burn-down")
    expect(page.locator("table.ranking")).to_contain_text("Ivy Infra")
    screenshot(page, "team-budget")
    page.emulate_media(color_scheme="dark")  # the chart follows the dark theme
    page.reload()
    expect(page.locator("#chart-burn-plot svg.main-svg").first).to_be_visible()
    screenshot(page, "team-budget-dark")
    page.emulate_media(color_scheme="light")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#chart-burn-plot svg.main-svg").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "team-budget-phone")
