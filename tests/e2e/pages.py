"""Every page of the app, for the checks that must hold on all of them (tests/e2e/test_every_page.py): no
sideways scrolling at phone width and no serious or critical axe-core violations.

A new page is one more line in PAGES. Paths may name the `every_page_data` fixture's objects (tests/e2e/
conftest.py): {person}, {team}, {import_batch} (a failed import), {imports} (a succeeded and a failed one, as
ids), {connection}; {date} is the day the fixture's usage is anchored on.
"""

from __future__ import annotations

from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "axe" / "axe.min.js").read_text(encoding="utf-8")

# (name, path, who opens it: a username of the `org` fixture, or None for a logged-out visitor)
PAGES: list[tuple[str, str, str | None]] = [
    ("login", "/accounts/login/", None),
    ("overview", "/overview/?date={date}", "admin"),
    ("overview-engineer", "/overview/?date={date}", "infra_engineer"),
    ("people", "/?date={date}", "admin"),
    ("people-day", "/?period=day&date={date}", "admin"),
    ("people-empty", "/?period=30d&provider=anthropic&model=gpt-4.1&date={date}", "admin"),
    ("teams", "/teams/?date={date}", "admin"),
    ("team", "/teams/{team}/?date={date}", "admin"),
    ("team-engineer", "/teams/{team}/?date={date}", "infra_engineer"),
    ("person", "/people/{person}/?date={date}", "admin"),
    ("person-all-time", "/people/{person}/?period=all&date={date}", "infra_engineer"),
    ("movers", "/movers/?date={date}", "admin"),
    ("profile", "/profile/", "infra_engineer"),
    ("imports", "/imports/", "admin"),
    ("import-upload", "/imports/upload/", "admin"),
    ("import-progress", "/imports/progress/?ids={imports}", "admin"),
    ("import-detail", "/imports/{import_batch}/", "admin"),
    ("column-mappings", "/imports/mappings/", "admin"),
    ("identities", "/identities/", "admin"),
    ("connections", "/connections/", "admin"),
    ("connection-new", "/connections/new/", "admin"),
    ("connection-edit", "/connections/{connection}/edit/", "admin"),
    ("sources", "/sources/", "admin"),
    ("reconciliation", "/reconciliation/?date={date}", "admin"),
    ("models", "/models/", "admin"),
    ("audit", "/audit/", "admin"),
    ("budgets", "/budgets/", "admin"),
    ("notifications", "/notifications/", "admin"),
    ("team-budget", "/teams/{team}/budget/", "admin"),
    ("review", "/review/", "admin"),
]

# Run in the page: the widest element's overflow, so a failure names what sticks out.
SIDEWAYS_SCROLL_JS = """() => {
  const doc = document.documentElement;
  if (doc.scrollWidth <= doc.clientWidth + 1) return null;
  let widest = null;
  document.querySelectorAll("body *").forEach((el) => {
    const right = el.getBoundingClientRect().right;
    if (right > doc.clientWidth + 1 && (!widest || right > widest.right)) {
      widest = {right, what: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && el.className.baseVal === undefined ? "." + String(el.className).trim().replace(/\\s+/g, ".") : "")};
    }
  });
  return {scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, widest};
}"""

AXE_RUN_JS = """async () => {
  const result = await window.axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}));
}"""


def sideways_scroll(page) -> dict | None:
    """None, or how far the page scrolls sideways and the element sticking out furthest."""
    return page.evaluate(SIDEWAYS_SCROLL_JS)


def axe_violations(page) -> list[dict]:
    """Serious and critical axe-core violations on the page as it is now. axe is evaluated through the
    DevTools protocol rather than added as a <script>, so a Content-Security-Policy does not block it."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(AXE_SOURCE)
    return page.evaluate(AXE_RUN_JS)
