from datetime import date
from decimal import Decimal

from .helpers import FIXTURES, context, errors, parse, per_identity, usage

FILE = FIXTURES / "openai_costs_two_keys.json"


def test_costs_are_dollars_read_exactly_and_attributed_to_key_then_project_then_unattributed():
    items = parse(FILE, "openai_costs")
    assert errors(items) == []
    totals = per_identity(items)
    # key_AliceKey01: 0.06 + 0.1 (day 1) + 0.02 (day 2) = 0.18 exactly — floats go through str(), so 0.1 is 0.1.
    assert totals["key_AliceKey01"]["cost"] == Decimal("0.18")
    # No key: the project pays; neither: the unattributed bucket, never dropped.
    assert totals["proj_Beta"]["cost"] == Decimal("1.25")
    assert totals["(unattributed)"]["cost"] == Decimal("0.5")


def test_cost_rows_carry_no_tokens_and_join_a_models_input_and_output_line_items():
    rows = usage(parse(FILE, "openai_costs"))
    assert all(r.usage_kind == "cost" and r.input_tokens == r.output_tokens == 0 for r in rows)
    alice = [r for r in rows if r.identity_value == "key_AliceKey01"]
    # "gpt-4.1-2025-04-14, input" and "…, output" are one model, so they add up in one record.
    assert {r.model for r in alice} == {"gpt-4.1-2025-04-14"}
    assert {r.day for r in alice} == {date(2026, 9, 1), date(2026, 9, 2)}
    assert {(r.identity_kind, r.account) for r in alice} == {("api_key", "proj_Alpha")}


def test_a_daily_bucket_keeps_its_utc_date_whatever_the_org_time_zone():
    rows = usage(parse(FILE, "openai_costs", context(tz="America/Los_Angeles")))
    assert min(r.day for r in rows) == date(2026, 9, 1)


def test_a_result_without_an_amount_is_a_row_error(tmp_path):
    broken = tmp_path / "costs.json"
    broken.write_text(FILE.read_text().replace('"amount":{"value":0.5,"currency":"usd"},', ""))
    assert [e.reason for e in errors(parse(broken, "openai_costs"))] == ["amount is missing or not an object"]
