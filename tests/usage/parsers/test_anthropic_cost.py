from decimal import Decimal

from .helpers import FIXTURES, context, errors, parse, per_identity, usage

FILE = FIXTURES / "anthropic_cost_report.json"


def test_amounts_are_cents_strings_divided_by_one_hundred():
    totals = per_identity(parse(FILE, "anthropic_cost"))
    # "123.78912" + "2500" cents = 2623.78912 cents = $26.2378912 (not $2623.79: the 100× bug).
    assert totals["wrkspc_01Research"]["cost"] == Decimal("26.2378912")
    # A null workspace is the default workspace: "50.5" cents = $0.505.
    assert totals["(default workspace)"]["cost"] == Decimal("0.505")


def test_cost_rows_are_usage_kind_cost_per_workspace_and_model():
    rows = usage(parse(FILE, "anthropic_cost"))
    assert {(r.identity_kind, r.usage_kind) for r in rows} == {("workspace", "cost")}
    assert [r.model for r in rows] == ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", ""]
    assert all(r.input_tokens == r.output_tokens == 0 for r in rows)


def test_a_non_usd_cost_needs_an_admin_rate_and_is_never_passed_as_dollars(tmp_path):
    eur = tmp_path / "cost.json"
    eur.write_text(FILE.read_text().replace('"currency":"USD","amount":"50.5"', '"currency":"EUR","amount":"50.5"'))
    (error,) = errors(parse(eur, "anthropic_cost"))
    assert "no EUR→USD rate" in error.reason
    converted = per_identity(parse(eur, "anthropic_cost", context(usd_rates={"EUR": Decimal("1.10")})))
    # 50.5 cents = 0.505 EUR × 1.10 = $0.5555
    assert converted["(default workspace)"]["cost"] == Decimal("0.5555")
