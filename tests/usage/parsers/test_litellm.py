from decimal import Decimal

from .helpers import FIXTURES, parse, per_identity, skipped, tokens, usage


def test_spend_logs_sum_per_person_in_dollars_with_the_key_owner_email():
    items = parse(FIXTURES / "litellm_spend_logs.json", "litellm")
    totals = per_identity(items)
    # gina (metadata.user_api_key_user_email, mixed case): prompt 100 + 50, completion 50 + 25;
    # spend 0.000123 + 0.000877 = 0.001
    assert tokens(totals["gina@acme.example"]) == (150, 0, 0, 75)
    assert totals["gina@acme.example"]["cost"] == Decimal("0.001")
    assert totals["gina@acme.example"]["requests"] == 2
    # hank: the `user` field is an email.
    assert tokens(totals["hank@acme.example"]) == (1000, 0, 0, 200)
    # No user, no owner email: the key alias.
    assert tokens(totals["batch-key"]) == (300, 0, 0, 30)
    assert [s.line for s in skipped(items)] == [1]  # the failed request


def test_providers_map_to_ours_and_rows_stay_apart_from_direct_imports():
    rows = usage(parse(FIXTURES / "litellm_spend_logs.json", "litellm"))
    assert [(r.identity_value, r.provider, r.identity_kind) for r in rows] == [
        ("gina@acme.example", "openai", "email"),
        ("hank@acme.example", "anthropic", "email"),
        ("batch-key", "google", "api_key"),
        ("gina@acme.example", "openai", "email"),
    ]
    assert {r.account for r in rows} == {"litellm"}


def test_a_csv_export_of_the_table_reads_metadata_json_cells():
    rows = usage(parse(FIXTURES / "litellm_spend_logs.csv", "litellm"))
    assert [(r.identity_value, r.identity_kind, r.provider, r.input_tokens, r.cost_usd) for r in rows] == [
        ("gina@acme.example", "email", "azure_openai", 1000, Decimal("0.5")),
        ("ivan", "user_id", "aws_bedrock", 200, Decimal("0.25")),
    ]
