from datetime import date
from decimal import Decimal

from .helpers import FIXTURES, parse, per_identity, skipped, usage


def test_premium_requests_round_half_up_and_cost_is_net_amount():
    items = parse(FIXTURES / "copilot_premium_requests.csv", "copilot_csv")
    totals = per_identity(items)
    # octo-alice: 12.5 → 13, 0.33 → 0, 2 → 2 = 15 requests; net 0 + 0.0132 + 0.08 = 0.0932
    assert totals["octo-alice"]["requests"] == 15
    assert totals["octo-alice"]["cost"] == Decimal("0.0932")
    # bobcat: 10 requests, gross 0.4 - discount 0.1 = net 0.3
    assert (totals["bobcat"]["requests"], totals["bobcat"]["cost"]) == (10, Decimal("0.3"))


def test_copilot_bills_requests_not_tokens_per_github_login():
    rows = usage(parse(FIXTURES / "copilot_premium_requests.csv", "copilot_csv"))
    assert all(r.input_tokens == r.output_tokens == r.cache_read_tokens == 0 for r in rows)
    assert {(r.provider, r.identity_kind, r.usage_kind) for r in rows} == {
        ("github_copilot", "user_id", "premium_requests")
    }
    # Logins are case-insensitive: "Octo-Alice" and "octo-alice" are one identity.
    assert {r.identity_value for r in rows} == {"octo-alice", "bobcat"}


def test_spreadsheet_dates_and_other_products_are_handled():
    items = parse(FIXTURES / "copilot_premium_requests.csv", "copilot_csv")
    assert date(2026, 5, 29) in {r.day for r in usage(items)}  # "5/29/26"
    assert [s.line for s in skipped(items)] == [5]  # the Actions minutes row


def test_the_older_analytics_export_has_requests_and_no_cost():
    bob = per_identity(parse(FIXTURES / "copilot_premium_requests_old.csv", "copilot_csv"))["bobcat"]
    # 3 + round(1.5) = 3 + 2 = 5
    assert (bob["requests"], bob["cost"]) == (5, None)
