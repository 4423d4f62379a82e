from datetime import date
from decimal import Decimal

import pytest

from usage.parsers.base import ParseError

from .helpers import FIXTURES, context, parse, per_identity, tokens, usage

FILE = FIXTURES / "generic_usage.csv"
MAPPING = {
    "day": "When",
    "identity": "Who",
    "model": "Model",
    "input_tokens": "In",
    "output_tokens": "Out",
    "cost_usd": "Dollars",
    "identity_kind": "email",
    "provider": "other",
}


def test_a_saved_mapping_reads_any_csv():
    items = parse(FILE, "generic_csv", context(column_mapping=MAPPING))
    ivy = per_identity(items)["ivy@acme.example"]
    # input 1000 + 500 + 10, output 200 + 100 + 10, cost 0.05 + 0.025 + 0.001
    assert tokens(ivy) == (1510, 0, 0, 310)
    assert ivy["cost"] == Decimal("0.076")


def test_a_timestamp_goes_to_the_org_local_day():
    rows = usage(parse(FILE, "generic_csv", context(column_mapping=MAPPING, tz="Europe/Berlin")))
    assert rows[2].day == date(2026, 9, 3)  # 23:30Z on 2 Sept is 01:30 on 3 Sept in Berlin


def test_without_a_mapping_or_with_a_missing_column_the_file_is_refused():
    with pytest.raises(ParseError, match="needs a saved column mapping"):
        parse(FILE, "generic_csv")
    with pytest.raises(ParseError, match="missing required column 'Tokens in'"):
        parse(FILE, "generic_csv", context(column_mapping={**MAPPING, "input_tokens": "Tokens in"}))


def test_a_mapping_with_an_unknown_identity_kind_is_refused():
    with pytest.raises(ParseError, match="identity_kind 'person'"):
        parse(FILE, "generic_csv", context(column_mapping={**MAPPING, "identity_kind": "person"}))


def test_values_longer_than_the_database_holds_are_row_errors(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(f"When,Who,Model,In,Out,Dollars\n2026-09-01,ivy@acme.example,{'m' * 201},1,1,0\n")
    (error,) = parse(path, "generic_csv", context(column_mapping=MAPPING))
    assert error.reason == "Model is longer than 200 characters"
