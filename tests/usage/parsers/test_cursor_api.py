from datetime import date
from decimal import Decimal

from .helpers import FIXTURES, context, errors, parse, per_identity, tokens, usage

FILE = FIXTURES / "cursor_events.json"


def test_events_sum_per_person_with_total_cents_as_dollars():
    items = parse(FILE, "cursor_api")
    assert errors(items) == []
    bob = per_identity(items)["bob@acme.example"]
    # input 1200 + 800, cache write 5000 + 0, cache read 80000 + 20000, output 340 + 60
    assert tokens(bob) == (2000, 5000, 100000, 400)
    # totalCents 12.5 + 3.25 = 15.75 cents = $0.1575
    assert bob["cost"] == Decimal("0.1575")
    assert bob["requests"] == 2


def test_an_event_without_token_usage_counts_a_request_and_leaves_cost_to_the_price_table():
    carol = per_identity(parse(FILE, "cursor_api"))["carol@acme.example"]
    assert tokens(carol) == (0, 0, 0, 0) and carol["requests"] == 1 and carol["cost"] is None


def test_epoch_millisecond_strings_go_to_the_org_local_day():
    # 1788256800000 ms = 2026-09-01T10:00Z; in Tokyo (UTC+9) that is 19:00 the same day, 12:00Z is 21:00.
    assert {r.day for r in usage(parse(FILE, "cursor_api", context(tz="Asia/Tokyo")))} == {date(2026, 9, 1)}
    # In Kiritimati (UTC+14) 10:00Z is already 2 September.
    assert {r.day for r in usage(parse(FILE, "cursor_api", context(tz="Pacific/Kiritimati")))} == {date(2026, 9, 2)}
