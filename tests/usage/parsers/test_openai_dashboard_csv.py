from datetime import date
from decimal import Decimal

from .helpers import FIXTURES, context, errors, parse, per_identity, skipped, tokens, usage


def test_usage_export_subtracts_cached_tokens_from_inclusive_input_and_reads_float_counts():
    items = parse(FIXTURES / "openai_dashboard_usage.csv", "openai_dashboard_csv")
    assert errors(items) == []
    totals = per_identity(items)
    # input_tokens "59200.0" includes the 20000 cached: plain input = 59200 - 20000 = 39200.
    assert tokens(totals["user-Qm3AliceXyZ9"]) == (39200, 0, 20000, 9000)
    assert totals["user-Qm3AliceXyZ9"]["requests"] == 42
    # No user or key: the project is the identity.
    assert tokens(totals["proj_Alpha"]) == (1000, 0, 0, 500)
    # Usage exports have no cost: the pipeline estimates it.
    assert all(r.cost_usd is None and r.usage_kind == "completions" for r in usage(items))


def test_rows_for_empty_days_are_skipped_not_rejected():
    items = parse(FIXTURES / "openai_dashboard_usage.csv", "openai_dashboard_csv")
    assert [s.line for s in skipped(items)] == [3]


def test_cost_export_sums_eighteen_decimal_amounts_exactly():
    items = parse(FIXTURES / "openai_dashboard_costs.csv", "openai_dashboard_csv")
    rows = usage(items)
    # 0.123456789012345678 + 0.876543210987654322 = 1.000000000000000000 (no float rounding).
    assert sum(r.cost_usd for r in rows) == Decimal("1")
    assert {(r.usage_kind, r.model, r.day) for r in rows} == {("cost", "gpt-4.1-2025-04-14", date(2026, 9, 1))}
    assert len(skipped(items)) == 1


def test_a_header_only_export_yields_nothing_and_raises_nothing():
    # The pipeline turns "nothing at all" into "no usage rows found" (tested end to end).
    assert parse(FIXTURES / "openai_dashboard_header_only.csv", "openai_dashboard_csv") == []


def test_cached_tokens_above_input_are_rejected(tmp_path):
    bad = tmp_path / "usage.csv"
    bad.write_text((FIXTURES / "openai_dashboard_usage.csv").read_text().replace("59200.0", "100.0"))
    (error,) = errors(parse(bad, "openai_dashboard_csv"))
    assert error.line == 2 and "exceed input_tokens" in error.reason


def test_epoch_float_times_are_read_when_iso_columns_are_empty(tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text(
        "start_time,end_time,start_time_iso,end_time_iso,user_id,model,input_tokens,output_tokens\n"
        "1788220800.0,1788224400.0,,,user-1,gpt-5,10.0,2.0\n"
    )
    (row,) = usage(parse(path, "openai_dashboard_csv", context(tz="Pacific/Kiritimati")))
    # An hourly bucket (00:00–01:00Z on 1 Sept) goes to the org-local day: 14:00 on 1 Sept at UTC+14.
    assert (row.day, row.input_tokens, row.output_tokens) == (date(2026, 9, 1), 10, 2)
