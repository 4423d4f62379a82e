"""Cursor team usage-events CSV read by pyarrow a block at a time and summed there: the fast path of a large import.
Read one by one in Python, a million events cost 10–12 s of CPU (docs/PERFORMANCE.md, Ingest).

It reads a file as CursorCSV.parse does, or not at all: at the first cell it cannot take exactly as that parser
would (a timestamp in another form, a count with a comma or a NULL word, a cost that is not whole millionths of a
dollar, a row of another width…) it raises NotColumnar, and the import reads the file row by row, naming each bad
line and its reason. It reads the same guarded stream (usage.parsers.payload.open_guarded), so the limits on line
length and blank runs hold here too. One difference is left: a cell with text after its closing quote ("x"y) is xy
to pyarrow, where Python's csv refuses the file as malformed. In a column the import reads, such a cell must still
pass the checks here (a date, digits, an email, a cost); in the others it is not looked at.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .base import NotColumnar, ParseContext, ParseError, SummedBlock
from .columnar import (
    MICROS,
    Keys,
    all_true,
    arrow_refusals,
    coded,
    constant,
    csv_chunks,
    local_day_and_hour,
    summed_block,
)
from .cursor_csv import CursorCSV, cost_text
from .payload import SAMPLE_BYTES
from .tabular import ROW_ERRORS, email_or_blank

CHUNK_BYTES = 4 * 1024 * 1024  # about 30,000 events read and summed at a time
_ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"  # the form Cursor writes its event times in
_COUNT = r"^[0-9]{1,15}$"  # what CursorCSV's _count takes as it is: ASCII digits, fewer than 16
_REQUESTS = r"^[0-9]{1,12}$"  # … and its Requests, under to_decimal's limit of 10**12
_LARGEST_MICROS = 10**13  # $10M an event: a block's int64 sums of such costs cannot overflow


def summed_blocks(fmt: CursorCSV, binary: BinaryIO, ctx: ParseContext) -> Iterator[SummedBlock]:
    head = binary.peek(SAMPLE_BYTES)  # type: ignore[attr-defined]  (a BufferedReader: open_guarded's)
    header_end = head.find(b"\n")
    if header_end < 0:
        raise NotColumnar("the header line does not end in the file's first block")
    try:
        header = head[: header_end + 1].decode("utf-8-sig")
        if not header.strip():
            raise NotColumnar("the file starts with a blank line")
        table, columns, fallback = fmt.header(io.StringIO(header), ctx)
    except (UnicodeDecodeError, ParseError) as error:
        raise NotColumnar(f"the header ({error})") from None
    tz = getattr(ctx.tz, "key", None)
    if not tz:
        raise NotColumnar("the org's time zone has no name")
    names = [f"c{index}" for index in range(len(table.headers))]
    read = {name: names[index] for name, index in vars(columns).items() if name != "width" and index is not None}
    keys = Keys()
    for number, chunk in enumerate(csv_chunks(binary, CHUNK_BYTES)):
        with arrow_refusals():
            events = pa_csv.read_csv(
                io.BytesIO(chunk),
                read_options=pa_csv.ReadOptions(
                    skip_rows=0 if number else 1, column_names=names, block_size=len(chunk) + 1, use_threads=False
                ),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=sorted(set(read.values())),
                    column_types=dict.fromkeys(read.values(), pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            block = (
                _summed(events.combine_chunks().to_batches()[0], read, tz, fallback, keys) if events.num_rows else None
            )
        if block is not None:
            yield block


def _summed(batch, read: dict[str, str], tz: str, fallback: str, keys: Keys) -> SummedBlock:
    def column(name: str):
        return batch.column(read[name]) if name in read else None

    rows = batch.num_rows
    day, hour = _local_day_and_hour(column("date"), tz)
    if "user" in read:
        identity = coded(column("user"), keys.identities, _identity)
    else:
        identity = constant(keys.identities.code(("cursor", "email", fallback)), rows, pa.int32())
    with_write, without_write = _counts(column("with_write"), rows), _counts(column("without_write"), rows)
    cache_read, output = _counts(column("cache_read"), rows), _counts(column("output"), rows)
    events = {
        "identity": identity,
        "day": day,
        "hour": hour,
        "model": coded(column("model"), keys.models, str.strip),
        "account": constant(keys.accounts.code(""), rows, pa.int32()),
        "usage_kind": constant(keys.kinds.code("tokens"), rows, pa.int32()),
        "input_tokens": without_write,
        "cache_write_tokens": _cache_write(with_write, without_write, cache_read, output, column("total")),
        "cache_read_tokens": cache_read,
        "output_tokens": output,
        "requests": _requests(column("requests"), rows),
    }
    costs = column("cost")
    if costs is not None:
        events["cost"] = _micros(costs)
    return summed_block(pa.table(events), keys, provider="cursor", emails=True, has_cost=costs is not None)


def _local_day_and_hour(times, tz: str):
    if not all_true(pc.match_substring_regex(times, _ISO_UTC)):
        raise NotColumnar("a Date not written as 2026-01-31T12:34:56.789Z")
    seconds = pc.strptime(pc.utf8_slice_codeunits(times, 0, 19), format="%Y-%m-%dT%H:%M:%S", unit="s")
    return local_day_and_hour(pc.assume_timezone(seconds, "UTC"), tz)


def _identity(raw: str) -> tuple[str, str, str]:
    email = email_or_blank(raw)
    if not email:
        raise NotColumnar("a User that is not an email")
    return ("cursor", "email", email)


def _counts(values, rows: int) -> pa.Array:
    """A token column as _count reads it: plain digits, an empty cell 0, no column 0."""
    return _whole_numbers(values, rows, empty=0, digits=_COUNT, what="a token count")


def _whole_numbers(values, rows: int, *, empty: int, digits: str, what: str) -> pa.Array:
    """A column of plain digits (matching `digits`) as integers; an empty cell, or no column, is `empty`."""
    if values is None:
        return constant(empty, rows, pa.int64())
    filled = pc.if_else(pc.equal(values, ""), str(empty), values)
    if not all_true(pc.match_substring_regex(filled, digits)):
        raise NotColumnar(f"{what} that is not plain digits")
    return filled.cast(pa.int64())


def _cache_write(with_write, without_write, cache_read, output, totals) -> pa.Array:
    """The cache-write tokens under the convention each row's Total Tokens confirms (cursor_csv.split_input)."""
    if totals is None:
        return with_write
    blank = pc.equal(totals, "")
    total = _counts(totals, len(totals))
    disjoint = pc.or_(blank, pc.equal(total, pc.add(pc.add(with_write, without_write), pc.add(cache_read, output))))
    inclusive = pc.and_(
        pc.greater_equal(with_write, without_write), pc.equal(total, pc.add(pc.add(with_write, cache_read), output))
    )
    if not all_true(pc.or_(disjoint, inclusive)):
        raise NotColumnar("a Total Tokens that matches neither reading of the input columns")
    return pc.if_else(disjoint, with_write, pc.subtract(with_write, without_write))


def _requests(values, rows: int) -> pa.Array:
    """One request an event, unless the file's Requests column says (an empty cell: one)."""
    return _whole_numbers(values, rows, empty=1, digits=_REQUESTS, what="a Requests cell")


def _micros(costs) -> pa.Array:
    """Each event's cost (cursor_csv.cost_text: "$0.42", "Included" → 0) in millionths of a dollar."""
    encoded = pc.dictionary_encode(costs)
    micros = []
    for text in encoded.dictionary.to_pylist():
        try:
            amount = cost_text(text.strip()).scaleb(MICROS)
        except ROW_ERRORS as error:
            raise NotColumnar(f"a Cost of {text!r} ({error})") from None
        if amount != amount.to_integral_value() or abs(amount) > _LARGEST_MICROS:
            raise NotColumnar(f"a Cost of {text!r}: not whole millionths of a dollar, or over $10M an event")
        micros.append(int(amount))
    return pa.array(micros, pa.int64()).take(encoded.indices)
