from datetime import date
from decimal import Decimal

from .helpers import FIXTURES, context, errors, parse, per_identity, skipped, tokens, usage

EA = FIXTURES / "azure_ea.csv"
MCA = FIXTURES / "azure_mca_eur.csv"
SHARED = "/subscriptions/sub-1/resourcegroups/rg-ai/providers/microsoft.cognitiveservices/accounts/aoai-shared"


def test_ea_export_scales_1k_and_1m_units_and_attributes_by_brace_less_tags():
    items = parse(EA, "azure_cost")
    assert errors(items) == []
    totals = per_identity(items)
    # Tags '"owner": "Zoë","env": "prod"' (no braces): input 125.5 × 1K = 125500,
    # "cached Inp" 2 × 1M = 2,000,000 cache read; cost 0.31375 + 0.2 = 0.51375
    assert tokens(totals["Zoë"]) == (125500, 0, 2000000, 0)
    assert totals["Zoë"]["cost"] == Decimal("0.51375")


def test_untagged_usage_goes_to_the_resource_id_whatever_its_case():
    totals = per_identity(parse(EA, "azure_cost"))
    # The upper-case and lower-case spellings of aoai-shared are one resource:
    # "Outp" 10 × 1K = 10000 output ($0.10) and "GPT 5 Inpt" 1 × 1M = 1,000,000 input ($1.25).
    assert tokens(totals[SHARED]) == (1000000, 0, 0, 10000)
    assert totals[SHARED]["cost"] == Decimal("1.35")


def test_dates_are_month_first_and_models_come_from_the_meter_name():
    rows = usage(parse(EA, "azure_cost"))
    assert [(r.day, r.model) for r in rows] == [
        (date(2026, 9, 1), "gpt-4o-0806"),
        (date(2026, 9, 1), "gpt-4.1-mini"),
        (date(2026, 9, 1), "gpt-4o-0806"),
        (date(2026, 9, 2), "gpt-5"),
    ]


def test_non_openai_and_non_token_meters_are_skipped():
    # A VM, and an Azure OpenAI training meter billed per hour.
    assert [s.line for s in skipped(parse(EA, "azure_cost"))] == [6, 7]


def test_mca_prefers_cost_in_usd_and_converts_billing_currency_only_with_an_admin_rate():
    items = parse(MCA, "azure_cost")
    # Row 2 has no costInUsd and is billed in EUR: without a rate it is rejected, never taken as dollars.
    (error,) = errors(items)
    assert error.line == 3 and "no EUR→USD rate" in error.reason
    frank = per_identity(parse(MCA, "azure_cost", context(usd_rates={"EUR": Decimal("1.10")})))["Frank@Acme.example"]
    # Output 0.5 × 1M = 500000 at costInUsd 5.00 (not the 4.60 EUR); input 100 × 1K at 0.23 EUR × 1.10 = 0.253
    assert tokens(frank) == (100000, 0, 0, 500000)
    assert frank["cost"] == Decimal("5.253")


def test_a_tag_with_an_email_fills_the_identity_email():
    rows = usage(parse(MCA, "azure_cost", context(usd_rates={"EUR": Decimal("1.1")})))
    assert {(r.identity_kind, r.identity_email) for r in rows} == {("tag", "frank@acme.example")}


def test_embedding_meters_count_as_input_and_keep_their_model_name(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_text(
        "Date,MeterCategory,MeterSubCategory,MeterName,Quantity,UnitOfMeasure,Cost,BillingCurrency,ResourceId,Tags\n"
        "09/01/2026,Cognitive Services,Azure OpenAI,text-embedding-3-small Tokens,40,1K,0.0008,USD,/x/aoai,\n"
    )
    (row,) = usage(parse(path, "azure_cost"))
    # 40 × 1K = 40000 input tokens
    assert (row.model, row.input_tokens, row.output_tokens) == ("text-embedding-3-small", 40000, 0)
