from datetime import date
from decimal import Decimal

import pytest

from usage.parsers.base import ParseError

from .helpers import FIXTURES, context, errors, parse, per_identity, tokens, usage

FILE = FIXTURES / "cursor_team_usage.csv"  # UTF-8 BOM and CRLF, as after a trip through Excel


def test_the_two_input_columns_are_disjoint_and_cost_text_is_dollars_or_zero():
    items = parse(FILE, "cursor_csv")
    assert errors(items) == []
    totals = per_identity(items)
    # Bob, three events (Bob@Acme.example and bob@acme.example are one person):
    #   input (w/o cache write) 2200 + 0 + 1200 = 3400; cache write (w/ cache write) 30500;
    #   cache read 410000 + 0 + 5000 = 415000; output 9800 + 0 + 300 = 10100
    #   (each row's Total Tokens = the four summed: 452500, 0, 6500).
    assert tokens(totals["bob@acme.example"]) == (3400, 30500, 415000, 10100)
    # "$1.37" + "$0.00" + "Included" (= no charge) = 1.37
    assert totals["bob@acme.example"]["cost"] == Decimal("1.37")
    assert totals["bob@acme.example"]["requests"] == 3
    # Alice: input 900 + 50, write 100, read 1000, output 250 + 10; "0.12" + "-" = 0.12
    assert tokens(totals["alice@acme.example"]) == (950, 100, 1000, 260)
    assert totals["alice@acme.example"]["cost"] == Decimal("0.12")


def test_events_go_to_the_org_local_day():
    utc_days = {r.line: r.day for r in usage(parse(FILE, "cursor_csv"))}
    berlin_days = {r.line: r.day for r in usage(parse(FILE, "cursor_csv", context(tz="Europe/Berlin")))}
    # 2026-09-01T23:30Z is 01:30 on 2 September in Berlin.
    assert utc_days[4] == date(2026, 9, 1) and berlin_days[4] == date(2026, 9, 2)


def test_identities_are_lower_cased_emails():
    rows = usage(parse(FILE, "cursor_csv"))
    assert {(r.identity_kind, r.identity_value, r.identity_email) for r in rows} == {
        ("email", "bob@acme.example", "bob@acme.example"),
        ("email", "alice@acme.example", "alice@acme.example"),
    }


def test_total_tokens_reveals_files_where_the_cache_write_column_includes_plain_input():
    items = parse(FIXTURES / "cursor_inclusive_convention.csv", "cursor_csv")
    # Row 1: w/ 3000, w/o 1000, read 5000, out 200, total 8200 = 3000 + 5000 + 200 → inclusive:
    #   cache write = 3000 - 1000 = 2000, input 1000. Row 2 (w/ 0): input 400, out 100.
    assert tokens(per_identity(items)["dana@acme.example"]) == (1400, 2000, 5000, 300)


def test_a_total_matching_neither_convention_is_rejected(tmp_path):
    bad = tmp_path / "cursor.csv"
    bad.write_text((FIXTURES / "cursor_inclusive_convention.csv").read_text().replace(",8200,", ",99999,"))
    (error,) = errors(parse(bad, "cursor_csv"))
    assert error.line == 2 and "matches neither" in error.reason


def test_a_personal_export_belongs_to_the_chosen_person_or_asks_for_one():
    with pytest.raises(ParseError, match="choose the person it belongs to"):
        parse(FIXTURES / "cursor_personal.csv", "cursor_csv")
    items = parse(FIXTURES / "cursor_personal.csv", "cursor_csv", context(attribute_to_email="Me@Acme.example"))
    # 100 + 200 + 300 + 400 = 1000 = Total Tokens: disjoint.
    assert tokens(per_identity(items)["me@acme.example"]) == (200, 100, 300, 400)


def test_a_missing_required_column_names_it(tmp_path):
    bad = tmp_path / "cursor.csv"
    bad.write_text("Date,User,Input (w/o Cache Write)\n2026-09-01T00:00:00Z,a@b.example,1\n")
    with pytest.raises(ParseError, match="missing required column 'Model'"):
        parse(bad, "cursor_csv")


def test_negative_and_non_numeric_counts_are_row_errors(tmp_path):
    bad = tmp_path / "cursor.csv"
    text = FILE.read_text(encoding="utf-8-sig")
    bad.write_text(text.replace('"9800","452500"', '"-9800","432900"').replace('"250","2250"', '"lots","2250"'))
    reasons = [e.reason for e in errors(parse(bad, "cursor_csv"))]
    assert reasons == ["Output Tokens is negative: '-9800'", "Output Tokens is not a number: 'lots'"]


def test_a_malformed_time_is_rejected_even_right_after_a_valid_one_of_the_same_minute(tmp_path):
    # Days are cached per UTC minute for speed; the cache must never let a bad timestamp through.
    path = tmp_path / "cursor.csv"
    path.write_text(
        "Date,User,Model,Input (w/o Cache Write),Output Tokens\n"
        "2026-09-01T10:45:00.120Z,a@acme.example,gpt-5,1,1\n"
        "2026-09-01T10:45:99Z,a@acme.example,gpt-5,1,1\n"
        "2026-09-01T10:45:30Z,a@acme.example,gpt-5,1,1\n"
    )
    items = parse(path, "cursor_csv")
    assert [e.line for e in errors(items)] == [3]
    assert [r.day for r in usage(items)] == [date(2026, 9, 1), date(2026, 9, 1)]
