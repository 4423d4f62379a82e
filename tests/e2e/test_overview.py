"""The overview in Chromium, as an engineer and as a manager, at desktop and phone width: the charts are drawn,
nothing scrolls sideways and axe-core finds no serious or critical violation."""

import re

import pytest
from playwright.sync_api import expect

from .pages import axe_violations, sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


@pytest.mark.parametrize("viewport", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
@pytest.mark.parametrize("persona", ["infra_engineer", "platform_manager"])
def test_the_overview_tells_the_story_of_the_window(
    page, live_server, login, every_page_data, persona, viewport, screenshot
):
    width, height = viewport
    page.set_viewport_size({"width": width, "height": height})
    login(page, persona)  # logging in lands on the overview
    page.goto(f"{live_server.url}/overview/?date={every_page_data['date']}")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("nav[aria-label=Main] a").first).to_have_text("Overview")
    expect(page.locator("#chart-org-tokens-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("#chart-org-tokens-plot")).to_have_attribute(
        "aria-label", re.compile(r"tokens from 17 Aug 2026 to 15 Sep 2026, [+−-]\d+% on the same days")
    )
    expect(page.locator("#chart-org-cost-plot")).to_have_count(0)  # cost is for admins
    expect(page.locator("table.sources")).to_contain_text("Anthropic")
    # My month: the viewer's trend, rank history, model mix and a year of active days.
    expect(page.locator("#chart-my-trend-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("#chart-my-rank-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("svg.calendar rect.cal-0").first).to_be_attached()
    assert sideways_scroll(page) is None
    assert axe_violations(page) == []
    screenshot(page, f"overview-{persona}-{width}")
    page.emulate_media(color_scheme="dark")
    assert axe_violations(page) == []
    screenshot(page, f"overview-{persona}-{width}-dark")
