from datetime import date
from decimal import Decimal

from .helpers import FIXTURES, errors, parse, per_identity, skipped, tokens, usage

FILE = FIXTURES / "claude_code_analytics.json"


def test_user_actors_are_lower_cased_emails_with_cents_costs_summed_over_models():
    items = parse(FILE, "claude_code")
    assert errors(items) == []
    bob = per_identity(items)["bob@acme.example"]
    # input 1000 + 500, cache_creation 4000 + 0, cache_read 30000 + 0, output 2000 + 100
    assert tokens(bob) == (1500, 4000, 30000, 2100)
    # estimated_cost 187 + 1 cents = $1.88
    assert bob["cost"] == Decimal("1.88")


def test_api_actors_are_identified_by_key_name_and_fractional_cents_convert():
    ci = per_identity(parse(FILE, "claude_code"))["ci-pipeline"]
    assert tokens(ci) == (10, 0, 0, 20)
    assert ci["cost"] == Decimal("0.005")  # 0.5 cents


def test_rows_are_claude_code_usage_on_the_record_day_and_empty_breakdowns_are_skipped():
    items = parse(FILE, "claude_code")
    rows = usage(items)
    assert {(r.day, r.usage_kind, r.provider) for r in rows} == {(date(2026, 9, 1), "claude_code", "anthropic")}
    assert {(r.identity_kind, r.identity_email) for r in rows} == {("email", "bob@acme.example"), ("api_key", "")}
    assert len(skipped(items)) == 1  # carol: a record with no model usage


def test_an_unknown_actor_type_is_a_row_error(tmp_path):
    odd = tmp_path / "cc.json"
    odd.write_text(FILE.read_text().replace('"type":"api_actor"', '"type":"robot_actor"'))
    (error,) = errors(parse(odd, "claude_code"))
    assert "unknown actor type 'robot_actor'" in error.reason
