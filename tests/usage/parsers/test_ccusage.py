from datetime import date
from decimal import Decimal

import pytest

from usage.parsers.base import ParseError

from .helpers import FIXTURES, context, parse, per_identity, tokens, usage

ME = context(attribute_to_email="Me@Acme.example")


def test_daily_report_is_attributed_to_the_chosen_person_per_model():
    items = parse(FIXTURES / "ccusage_daily.json", "ccusage", ME)
    me = per_identity(items)["me@acme.example"]
    # Breakdowns of 1 Sept (1000 + 500 input, 15000 + 5000 write, 300000 + 100000 read, 2000 + 1000 output)
    # plus 2 Sept's totals (10 input, 20 output; no breakdowns): 1510 / 20000 / 400000 / 3020
    assert tokens(me) == (1510, 20000, 400000, 3020)
    # ccusage's own estimates: 0.2 + 1.3 + 0.01 = 1.51
    assert me["cost"] == Decimal("1.51")
    rows = usage(items)
    assert [(r.day, r.model) for r in rows] == [
        (date(2026, 9, 1), "claude-sonnet-4-5-20250929"),
        (date(2026, 9, 1), "claude-opus-4-1-20250805"),
        (date(2026, 9, 2), "claude-haiku-4-5-20251001"),  # the only model used that day
    ]
    assert {(r.provider, r.identity_kind, r.usage_kind) for r in rows} == {("anthropic", "email", "ccusage")}


def test_a_monthly_report_in_the_typed_shape_lands_on_the_first_of_the_month():
    rows = usage(parse(FIXTURES / "ccusage_monthly_typed.json", "ccusage", ME))
    assert [(r.day, r.input_tokens, r.cache_read_tokens, r.cost_usd) for r in rows] == [
        (date(2026, 9, 1), 700, 9000, Decimal("0.25"))
    ]


def test_without_a_chosen_person_the_file_is_refused_with_a_clear_message():
    with pytest.raises(ParseError, match="choose who this usage belongs to"):
        parse(FIXTURES / "ccusage_daily.json", "ccusage")


def test_session_and_instance_shapes_are_read(tmp_path):
    sessions = tmp_path / "s.json"
    sessions.write_text(
        '{"sessions":[{"sessionId":"-Users-me-proj","inputTokens":100,"outputTokens":200,"cacheCreationTokens":0,'
        '"cacheReadTokens":1000,"totalCost":0.05,"lastActivity":"2026-09-03","modelsUsed":["claude-sonnet-4-5"],'
        '"modelBreakdowns":[]}],"totals":{}}'
    )
    (row,) = usage(parse(sessions, "ccusage", ME))
    assert (row.day, row.model, row.cache_read_tokens, row.cost_usd) == (
        date(2026, 9, 3),
        "claude-sonnet-4-5",
        1000,
        Decimal("0.05"),
    )
    instances = tmp_path / "i.json"
    instances.write_text(
        '{"projects":{"tokenboard":[{"date":"2026-09-04","inputTokens":5,"outputTokens":6,"cacheCreationTokens":0,'
        '"cacheReadTokens":0,"totalCost":0.001,"modelsUsed":[],"modelBreakdowns":[]}]}}'
    )
    (row,) = usage(parse(instances, "ccusage", ME))
    assert (row.account, row.input_tokens, row.output_tokens) == ("tokenboard", 5, 6)
