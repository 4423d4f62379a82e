from dataclasses import fields

from usage.parsers.base import UsageRow


def test_usage_row_field_order_is_what_the_openai_parser_constructs_positionally():
    # openai_usage builds UsageRow positionally for speed (keywords cost ~1 µs a row); a reordering must fail here.
    assert [f.name for f in fields(UsageRow)][:15] == [
        "line",
        "day",
        "provider",
        "identity_kind",
        "identity_value",
        "model",
        "account",
        "usage_kind",
        "input_tokens",
        "cache_write_tokens",
        "cache_read_tokens",
        "output_tokens",
        "requests",
        "cost_usd",
        "identity_email",
    ]
