"""Every kind of page passes the Content-Security-Policy in a real browser: no script, style or eval is blocked
(a blocked one would show as a `securitypolicyviolation` event and a console error), and the charts still draw."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]
SEPT = "period=month&date=2026-09-15"


def watch_for_violations(page) -> list[str]:
    """Collects CSP violations (from the page's own event and from the console) on every page loaded later."""
    found: list[str] = []
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));"
    )
    page.on(
        "console",
        lambda message: (
            found.append(message.text)
            if message.type == "error"
            and ("Content Security Policy" in message.text or "CSP violation" in message.text)
            else None
        ),
    )
    return found


def test_pages_with_charts_raise_no_csp_violation(page, live_server, login, september):
    violations = watch_for_violations(page)
    login(page, "admin")
    person, team = september["infra_engineer"], september["platform"]
    for path, chart in [
        (f"/people/{person.pk}/?{SEPT}", "#chart-daily-plot"),
        (f"/people/{person.pk}/?{SEPT}", "#chart-models-plot"),
        (f"/teams/{team.pk}/?{SEPT}", "#chart-trend-plot"),
        (f"/teams/{team.pk}/?{SEPT}", "#chart-providers-plot"),
    ]:
        page.goto(f"{live_server.url}{path}")
        expect(page.locator(f"{chart} svg.main-svg").first).to_be_visible()
        # Plotly's hover labels and legends are drawn by script after load: exercise them too.
        page.locator(chart).hover()
    for path in (
        "/",
        f"/?{SEPT}",
        "/teams/",
        "/movers/",
        "/profile/",
        "/imports/",
        "/imports/upload/",
        "/identities/",
        "/connections/",
        "/audit/",
        "/imports/mappings/",
        "/api/docs/",
        "/admin/",
        "/admin/usage/person/",
        f"/admin/usage/person/{person.pk}/change/",
        "/admin/usage/auditentry/",
    ):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    assert violations == []


def test_the_login_page_and_htmx_swaps_raise_no_csp_violation(page, live_server, login, september):
    violations = watch_for_violations(page)
    page.goto(f"{live_server.url}/accounts/login/")
    login(page, "infra_engineer")
    page.goto(f"{live_server.url}/?{SEPT}")
    page.select_option("#id_period", "7d")  # an htmx swap of the table
    page.wait_for_url(lambda url: "period=7d" in url)
    page.wait_for_load_state("networkidle")
    assert violations == []


def test_the_audit_page_fits_a_phone_and_lists_the_logins(page, live_server, login, september):
    login(page, "admin")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/audit/?event=login")
    expect(page.locator("table.audit")).to_contain_text("admin")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scrolling
