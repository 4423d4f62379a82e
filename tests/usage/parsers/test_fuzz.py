"""Any bytes in → rows or clear errors out: every registered parser, fed through the real payload opener with
arbitrary bytes and with mutated valid exports, yields only the five item types or raises ParseError."""

import os
import tempfile
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usage.parsers.base import DirectoryEntry, OutcomeRow, ParseContext, ParseError, RowError, Skipped, UsageRow
from usage.parsers.payload import open_text
from usage.parsers.registry import FORMATS

from .helpers import FIXTURES, context

ITEM_TYPES = (UsageRow, OutcomeRow, DirectoryEntry, Skipped, RowError)
SEEDS = sorted(p.name for p in FIXTURES.iterdir())
MAPPING = {"day": "When", "identity": "Who", "model": "Model", "input_tokens": "In", "cost_usd": "Dollars"}
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def fuzz_context() -> ParseContext:
    # A far-from-UTC zone catches date arithmetic that overflows at the ends of the calendar.
    return context(
        tz="Pacific/Kiritimati",
        attribute_to_email="me@acme.example",
        usd_rates={"EUR": Decimal("1.1")},
        column_mapping=MAPPING,
    )


def run_parser(format_name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "export")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            with open_text(path, max_decompressed=1_000_000) as (stream, _encoding):
                for item in FORMATS[format_name].parse(stream, fuzz_context()):
                    assert isinstance(item, ITEM_TYPES), f"{format_name} yielded {item!r}"
                    assert isinstance(item.line, int)
                    if isinstance(item, UsageRow):
                        counts = (
                            item.input_tokens,
                            item.cache_write_tokens,
                            item.cache_read_tokens,
                            item.output_tokens,
                        )
                        assert all(isinstance(n, int) and n >= 0 for n in counts), item
                        assert item.cost_usd is None or isinstance(item.cost_usd, Decimal)
                        assert item.hour is None or 0 <= item.hour <= 23
                    if isinstance(item, OutcomeRow):
                        figures = (item.commits, item.pull_requests, item.lines_added, item.lines_accepted)
                        assert all(n is None or (isinstance(n, int) and n >= 0) for n in figures), item
        except ParseError as error:
            assert error.reason


@st.composite
def mutated_export(draw) -> bytes:
    """A real export with a few bytes flipped, a slice replaced by random text, or cut short."""
    data = bytearray((FIXTURES / draw(st.sampled_from(SEEDS))).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "text", "truncate", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "text":
            end = draw(st.integers(at, min(len(data), at + 20)))
            data[at:end] = draw(st.text(max_size=12)).encode("utf-8")
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.sampled_from([b",", b'"', b"\n", b"{", b"]", b"-1", b"1e999", b"null", b"\x00"]))
    return bytes(data)


@pytest.mark.parametrize("format_name", sorted(FORMATS))
@FUZZ
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_give_rows_or_a_parse_error(format_name, data):
    run_parser(format_name, data)


@pytest.mark.parametrize("format_name", sorted(FORMATS))
@FUZZ
@given(data=mutated_export())
def test_mutated_exports_give_rows_or_a_parse_error(format_name, data):
    run_parser(format_name, data)


@pytest.mark.parametrize("count", ["1e99999999", "-1e99999999", "9" * 40])
def test_absurd_counts_are_rejected_at_once_not_computed(count, tmp_path):
    # Found by fuzzing: int(Decimal("1e99999999")) runs for minutes; the range check must come first.
    path = tmp_path / "cursor.csv"
    path.write_text(f"Date,User,Model,Input (w/o Cache Write)\n2026-09-01T00:00:00Z,a@acme.example,gpt-5,{count}\n")
    (item,) = [item for item in _parse_all("cursor_csv", path)]
    assert isinstance(item, RowError) and ("implausibly large" in item.reason or "negative" in item.reason)


def _parse_all(format_name: str, path) -> list:
    with open_text(str(path), max_decompressed=1_000_000) as (stream, _encoding):
        return list(FORMATS[format_name].parse(stream, fuzz_context()))


CSV_SEEDS = {
    "openai_dashboard_csv": "openai_dashboard_usage.csv",
    "cursor_csv": "cursor_team_usage.csv",
    "copilot_csv": "copilot_premium_requests.csv",
    "aws_cur": "aws_cur2_bedrock.csv",
    "azure_cost": "azure_ea.csv",
    "gcp_billing": "gcp_billing_vertex.csv",
    "focus": "focus_ai.csv",
    "litellm": "litellm_spend_logs.csv",
    "generic_csv": "generic_usage.csv",
}


@pytest.mark.parametrize("format_name", sorted(CSV_SEEDS))
@pytest.mark.parametrize("cell", [" " * 50_000 + "x", "a@" + "b" * 50_000, "claude " * 8_000, "1" * 60_000])
def test_huge_cells_give_row_errors_or_skips_without_pathological_slowness(format_name, cell, tmp_path):
    # Regexes over cell text must stay linear: a backtracking pattern would hang here, not fail.
    header = (FIXTURES / CSV_SEEDS[format_name]).read_text(encoding="utf-8-sig").splitlines()[0]
    width = len(header.split(","))
    path = tmp_path / "export.csv"
    path.write_text(header + "\n" + ",".join([f'"{cell}"'] * width) + "\n")
    for item in _parse_all(format_name, path):
        assert isinstance(item, (RowError, Skipped))
