"""Anomaly review in a real browser: a looping key is held, an admin clears it, the board counts it again."""

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import IdentityFactory, UsageRecordFactory
from usage.models import HoldStatus, UsageHold, UsageHour
from usage.services.standings import standings_refresh

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]
LOOP_DAY = date(2026, 9, 12)


def test_an_admin_clears_a_held_loop_and_the_board_counts_it(page, live_server, login, september, screenshot):
    paul = september["product_engineer"]
    laptop = IdentityFactory(person=paul)
    for n in range(1, 11):  # his ordinary days
        UsageRecordFactory(identity=laptop, day=LOOP_DAY - timedelta(days=n), input_tokens=60_000, output_tokens=40_000)
    key = IdentityFactory(person=paul, kind="api_key", value="sk-night", label="night-agent")
    UsageRecordFactory(identity=key, day=LOOP_DAY, input_tokens=48_000_000, requests=2400)
    for hour in range(24):
        UsageHour.objects.create(identity=key, day=LOOP_DAY, hour=hour, requests=100, total_tokens=2_000_000)
    standings_refresh()
    assert UsageHold.objects.get().person == paul

    login(page, "admin")
    page.goto(f"{live_server.url}/?period=month&date=2026-09-15")
    first = page.locator("#ranking table.ranking tbody th[scope=row] a").first
    expect(first).to_have_text("Ivy Infra")  # the loop does not count while held

    page.goto(f"{live_server.url}/review/")
    card = page.locator("article.hold")
    expect(card).to_contain_text("Paul Product")
    expect(card).to_contain_text("Near-constant request cadence around the clock")
    expect(card.locator(".hourly rect")).to_have_count(24)
    screenshot(page, "review-held-loop")
    card.locator("input[name=note]").fill("a real overnight migration")
    card.get_by_role("button", name="Clear: it counts").click()
    expect(page.locator("ul.messages")).to_contain_text("cleared")

    hold = UsageHold.objects.get()
    assert hold.status == HoldStatus.CLEARED and hold.decisions.last().note == "a real overnight migration"
    standings_refresh()  # the refresh worker's part
    page.goto(f"{live_server.url}/?period=month&date=2026-09-15")
    expect(first).to_have_text("Paul Product")
