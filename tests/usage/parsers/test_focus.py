from datetime import date
from decimal import Decimal

from .helpers import FIXTURES, context, errors, focus_sample, parse, per_identity, skipped, tokens, usage

AI = FIXTURES / "focus_ai.csv"
SHARED = "/subscriptions/sub-1/resourcegroups/rg-ai/providers/microsoft.cognitiveservices/accounts/aoai-shared"


def test_the_public_focus_sample_has_no_ai_rows_so_all_1000_are_skipped_without_error():
    items = parse(focus_sample(), "focus")
    assert len(items) == 1000
    assert len(skipped(items)) == 1000


def test_ai_token_rows_scale_their_consumed_unit_and_attribute_by_tags():
    items = parse(AI, "focus")
    assert errors(items) == []
    totals = per_identity(items)
    # alice (Tags {"user": ...}): input 250000 "Tokens" + output 10 "1K Tokens" = 10000; 0.75 + 0.15 = 0.90
    assert tokens(totals["alice@acme.example"]) == (250000, 0, 0, 10000)
    assert totals["alice@acme.example"]["cost"] == Decimal("0.90")
    # NULL tags: the resource. 0.2 "1M Tokens" of cached input = 200000 cache read.
    assert tokens(totals[SHARED]) == (0, 0, 200000, 0) and totals[SHARED]["cost"] == Decimal("0.02")


def test_non_ai_rows_and_credits_and_taxes_are_skipped():
    assert [s.line for s in skipped(parse(AI, "focus"))] == [5, 6, 7]


def test_providers_models_and_days_come_from_the_row():
    rows = usage(parse(AI, "focus", context(tz="America/New_York")))
    assert [(r.provider, r.model, r.day) for r in rows] == [
        # Hourly 10:00Z (and "2024-…-style" 10:00 without Z, which is UTC) is 06:00 in New York.
        ("aws_bedrock", "claude-sonnet-4.5", date(2026, 9, 1)),
        ("aws_bedrock", "claude-sonnet-4.5", date(2026, 9, 1)),
        # A daily charge period keeps its UTC date.
        ("azure_openai", "gpt-4o", date(2026, 9, 2)),
    ]


def test_corrections_of_earlier_periods_are_skipped_not_taken_as_negative_tokens(tmp_path):
    path = tmp_path / "focus.csv"
    header, first, *_ = AI.read_text().splitlines()
    # The first AI row again, as a correction with a negative quantity.
    correction = first.replace("0.75,USD,Usage,NULL", "-0.75,USD,Usage,Correction").replace(",250000,", ",-250000,")
    path.write_text("\n".join([header, first, correction]) + "\n")
    items = parse(path, "focus")
    assert (len(usage(items)), [s.line for s in skipped(items)], errors(items)) == (1, [3], [])
