"""The filter form in Chromium: choosing a provider narrows the model list, and a model the provider never
served is cleared rather than sent."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_choosing_a_provider_narrows_the_model_list(page, live_server, login, every_page_data):
    login(page, "infra_engineer")
    page.goto(f"{live_server.url}/?date={every_page_data['date']}&model=gpt-4.1")
    expect(page.locator("#id_model")).to_have_value("gpt-4.1")
    page.select_option("#id_provider", "anthropic")
    page.wait_for_url(re.compile(r"provider=anthropic"))
    assert "model=" not in page.url  # gpt-4.1 is not an Anthropic model: dropped, not sent
    hidden = page.locator("#id_model option[hidden]").evaluate_all("options => options.map(o => o.value)")
    visible = page.locator("#id_model option:not([hidden])").evaluate_all("options => options.map(o => o.value)")
    assert set(hidden) == {"gpt-4.1", "composer-1"} and set(visible) == {"", "claude-sonnet-4-5"}
    page.select_option("#id_provider", "")
    expect(page.locator("#id_model option[hidden]")).to_have_count(0)
