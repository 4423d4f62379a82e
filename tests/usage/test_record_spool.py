"""An import's records are held up to RecordSpool.BUFFER, then written out sorted and merged back when stored
(usage.services.records): whichever way they were held, each record is stored once with the same figures. And the
hours a pipelined import merged are told apart from those it did not (usage.services.outcomes.MergedHours)."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.ingest import generate_cursor, generate_openai
from tests.usage.imported import stored
from usage.models import Identity, UsageHour, UsageRecord
from usage.services.imports import import_batch_create, import_batch_process
from usage.services.outcomes import MergedHours
from usage.services.records import Accumulated, RecordSpool

KEYS = st.tuples(
    st.sampled_from([date(2026, 9, 1), date(2026, 9, 2), date(2026, 10, 31)]),
    st.sampled_from(["openai", "cursor"]),
    st.sampled_from(["", "acme"]),
    st.tuples(st.just("openai"), st.just("user"), st.sampled_from(["user-a", "user-b", "user-c"])),
    st.sampled_from(["gpt-5", "o3", ""]),
    st.sampled_from(["", "batch"]),
)
ROWS = st.tuples(
    st.integers(0, 10**12),
    st.integers(0, 10**9),
    st.one_of(st.none(), st.integers(0, 10**6)),  # requests: None when the row does not report them
    st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=8)),  # billed cost, or none
    st.booleans(),  # the vendor estimated its cost
)


def summed_into(spool: RecordSpool, rows: list[tuple]) -> None:
    """As the row parser sums a row into its record."""
    for key, (tokens, output, requests, cost, estimated) in rows:
        accumulated = spool.get(key) or spool.new(key)
        accumulated.input_tokens += tokens
        accumulated.output_tokens += output
        if requests is not None:
            accumulated.requests = (accumulated.requests or 0) + requests
        if cost is None:
            accumulated.has_unbilled_rows = True
        else:
            accumulated.billed_cost += cost
            accumulated.has_billed_cost = True
            accumulated.cost_estimated_by_vendor |= estimated


@given(st.lists(st.tuples(KEYS, ROWS), max_size=60), st.integers(1, 5))
def test_records_written_out_come_back_once_each_with_the_sums_of_records_held(rows, buffer):
    held = RecordSpool()
    summed_into(held, rows)
    with RecordSpool() as written_out:
        written_out.BUFFER = buffer
        summed_into(written_out, rows)
        items = list(written_out.items())
        assert len(written_out) <= buffer
        assert dict(items) == dict(held.items())
        keys = sorted({key for key, _row in rows})
        assert sorted(key for key, _sums in items) == keys  # each once
        if len(keys) > buffer:  # written out: merged back in key order
            assert [key for key, _sums in items] == keys
        pairs = list(written_out.pairs())
        assert len(pairs) == len(set(pairs))  # each once
        assert set(pairs) == set(held.pairs()) == {key[:4] for key, _row in rows}
        assert written_out.identity_keys() == {key[3] for key, _row in rows}
        assert list(written_out.items()) == items  # read again, the same


def test_a_decimal_cost_is_summed_exactly_across_written_out_parts():
    key = (date(2026, 9, 1), "openai", "", ("openai", "user", "u"), "gpt-5", "")
    with RecordSpool() as spool:
        spool.BUFFER = 1
        for index in range(10):
            accumulated = spool.get(key) or spool.new(key)
            accumulated.billed_cost += Decimal("0.10000001")
            accumulated.has_billed_cost = True
            other = (date(2026, 9, 2), *key[1:])  # another key fills the buffer, so `key` is written out again
            spool.get(other) or spool.new(other)
            assert index == 0 or len(spool) == 1
        (first, sums), _other = spool.items()
    assert first == key and sums.billed_cost == Decimal("1.0000001") and isinstance(sums, Accumulated)


def export(fmt, rows, tmp_path):
    path = tmp_path / f"{fmt}.{'csv' if fmt == 'cursor' else 'jsonl'}"
    {"cursor": generate_cursor, "openai": generate_openai}[fmt](rows, path, tmp_path / "twin")
    return path


def imported(path):
    with path.open("rb") as handle:
        batch = import_batch_create(file=handle, name=path.name, queue=False)
    return import_batch_process(batch.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("columnar", [True, False], ids=["columnar", "rows"])
@pytest.mark.parametrize("fmt", ["cursor", "openai"])
def test_an_import_whose_records_were_written_out_stores_what_one_holding_them_stores(
    fmt, columnar, settings, tmp_path, monkeypatch
):
    settings.TIME_ZONE = "America/Los_Angeles"
    settings.TOKENBOARD_IMPORT_COLUMNAR = columnar
    path = export(fmt, 4000, tmp_path)
    held = imported(path)
    assert held.status == "succeeded", held.error_summary
    expected = stored()
    assert len(expected[0]) > 200
    UsageHour.objects.all().delete()
    UsageRecord.objects.all().delete()
    Identity.objects.all().delete()

    monkeypatch.setattr(RecordSpool, "BUFFER", 37)  # many runs, most records in several of them
    written_out = imported(path)
    assert written_out.status == "succeeded", written_out.error_summary
    assert stored() == expected
    fields = ("rows_read", "rows_imported", "records_written", "period_start", "period_end", "people_affected")
    assert [getattr(written_out, name) for name in fields] == [getattr(held, name) for name in fields]


@given(
    st.lists(
        st.tuples(
            st.integers(1, 3),  # identity
            st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 3, 31)),  # before and after the first seen
            st.sampled_from(["gpt-5", "o3"]),
            st.integers(1, (1 << 24) - 1),  # hours, a bit each
        ),
        max_size=80,
    )
)
def test_the_hours_an_import_merged_are_told_apart_per_identity_day_and_model(marks):
    merged, expected = MergedHours(), {}
    for identity, day, model, hours in marks:
        before = expected.get((identity, day, model), 0)
        assert merged.mark(identity, day, model, hours) == before & hours
        expected[identity, day, model] = before | hours


def test_the_hours_merged_take_a_mask_a_day_between_the_first_and_the_last():
    merged = MergedHours()
    merged.mark(7, date(2026, 9, 10), "gpt-5", 1)
    merged.mark(7, date(2026, 9, 1), "gpt-5", 2)  # before the first
    merged.mark(7, date(2026, 9, 30), "gpt-5", 4)  # after the last
    first, masks = merged._days[7, "gpt-5"]
    assert first == date(2026, 9, 1).toordinal() and len(masks) == 30
    assert (masks[0], masks[9], masks[29]) == (2, 1, 4)
