"""Cursor team usage-events CSV read by pyarrow a block at a time and summed there: the fast path of a large import.
Read one by one in Python, a million events cost 10–12 s of CPU (docs/PERFORMANCE.md, Ingest).

It reads a file as CursorCSV.parse does, or not at all: at the first cell it cannot take exactly as that parser
would (a timestamp in another form, a count with a comma or a NULL word, a cost that is not whole millionths of a
dollar, a row of another width…) it raises NotColumnar, and the import reads the file row by row, naming each bad
line and its reason. It reads the same guarded stream (usage.parsers.payload.open_guarded), so the limits on line
length and blank runs hold here too.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .base import NotColumnar, ParseContext, ParseError, SummedBlock, check_day
from .payload import SAMPLE_BYTES
from .tabular import ROW_ERRORS, email_or_blank

if TYPE_CHECKING:
    from .cursor_csv import CursorCSV

BLOCK_BYTES = 2 * 1024 * 1024  # about 15,000 events (the reader holds some 20 blocks): memory stays flat
_ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"  # the form Cursor writes its event times in
_COUNT = r"^[0-9]{1,15}$"  # what CursorCSV's _count takes as it is: ASCII digits, fewer than 16
_REQUESTS = r"^[0-9]{1,12}$"  # … and its Requests, under to_decimal's limit of 10**12
MICROS = 6  # costs summed as whole millionths of a dollar, the places a usage record keeps
_LARGEST_MICROS = 10**13  # $10M an event: a block's int64 sums of such costs cannot overflow
FIGURES = ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens", "requests")


class _Codes:
    """Distinct values numbered in order of first appearance, across the file's blocks."""

    def __init__(self) -> None:
        self.values: list = []
        self.numbers: dict = {}

    def code(self, value) -> int:
        number = self.numbers.get(value)
        if number is None:
            number = self.numbers[value] = len(self.values)
            self.values.append(value)
        return number


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
    reader = _open(binary, names, sorted(set(read.values())))
    identities, models = _Codes(), _Codes()
    try:
        for batch in reader:
            if batch.num_rows:
                yield _summed(batch, read, tz, fallback, identities, models)
    except pa.ArrowException as error:
        raise NotColumnar(f"pyarrow: {error}") from None


def _open(binary: BinaryIO, names: list[str], read: list[str]):
    try:
        return pa_csv.open_csv(
            binary,
            read_options=pa_csv.ReadOptions(skip_rows=1, column_names=names, block_size=BLOCK_BYTES, use_threads=False),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                include_columns=read,
                column_types=dict.fromkeys(read, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowException as error:
        raise NotColumnar(f"pyarrow: {error}") from None


def _summed(batch, read: dict[str, str], tz: str, fallback: str, identities: _Codes, models: _Codes) -> SummedBlock:
    def column(name: str):
        return batch.column(read[name]) if name in read else None

    rows = batch.num_rows
    day, hour = _local_day_and_hour(column("date"), tz)
    if "user" in read:
        identity = _coded(column("user"), identities, _email)
    else:
        identity = pa.repeat(pa.scalar(identities.code(fallback), pa.int32()), rows)
    model = _coded(column("model"), models, str.strip)
    with_write, without_write = _counts(column("with_write"), rows), _counts(column("without_write"), rows)
    cache_read, output = _counts(column("cache_read"), rows), _counts(column("output"), rows)
    cache_write = _cache_write(with_write, without_write, cache_read, output, column("total"))
    figures = {
        "input_tokens": without_write,
        "cache_write_tokens": cache_write,
        "cache_read_tokens": cache_read,
        "output_tokens": output,
        "requests": _requests(column("requests"), rows),
    }
    costs = column("cost")
    if costs is not None:
        figures["cost"] = _micros(costs)
    events = pa.table({"identity": identity, "day": day, "hour": hour, "model": model, **figures})
    return SummedBlock(
        rows=rows,
        records=_records(events, identities, models, "cost" in figures),
        emails={("cursor", "email", email): email for email in identities.values},
        identity_keys=[("cursor", "email", email) for email in identities.values],
        hours=_hours(events, models),
    )


def _local_day_and_hour(times, tz: str):
    if not pc.all(pc.match_substring_regex(times, _ISO_UTC)).as_py():
        raise NotColumnar("a Date not written as 2026-01-31T12:34:56.789Z")
    seconds = pc.strptime(pc.utf8_slice_codeunits(times, 0, 19), format="%Y-%m-%dT%H:%M:%S", unit="s")
    local = pc.local_timestamp(pc.assume_timezone(seconds, "UTC").cast(pa.timestamp("s", tz=tz)))
    day = local.cast(pa.date32())
    try:
        check_day(pc.min(day).as_py())
        check_day(pc.max(day).as_py())
    except ValueError as error:
        raise NotColumnar(str(error)) from None
    return day, pc.hour(local).cast(pa.int8())


def _email(raw: str) -> str:
    email = email_or_blank(raw)
    if not email:
        raise NotColumnar("a User that is not an email")
    return email


def _coded(values, codes: _Codes, clean) -> pa.Array:
    """Each value's code (after `clean`), cleaning each distinct value once."""
    encoded = pc.dictionary_encode(values)
    numbers = pa.array([codes.code(clean(value)) for value in encoded.dictionary.to_pylist()], pa.int32())
    return numbers.take(encoded.indices)


def _counts(values, rows: int) -> pa.Array:
    """A token column as _count reads it: plain digits, an empty cell 0, no column 0."""
    if values is None:
        return pa.repeat(pa.scalar(0, pa.int64()), rows)
    filled = pc.if_else(pc.equal(values, ""), "0", values)
    if not pc.all(pc.match_substring_regex(filled, _COUNT)).as_py():
        raise NotColumnar("a token count that is not plain digits")
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
    if not pc.all(pc.or_(disjoint, inclusive)).as_py():
        raise NotColumnar("a Total Tokens that matches neither reading of the input columns")
    return pc.if_else(disjoint, with_write, pc.subtract(with_write, without_write))


def _requests(values, rows: int) -> pa.Array:
    """One request an event, unless the file's Requests column says (an empty cell: one)."""
    if values is None:
        return pa.repeat(pa.scalar(1, pa.int64()), rows)
    filled = pc.if_else(pc.equal(values, ""), "1", values)
    if not pc.all(pc.match_substring_regex(filled, _REQUESTS)).as_py():
        raise NotColumnar("a Requests cell that is not plain digits")
    return filled.cast(pa.int64())


def _micros(costs) -> pa.Array:
    """Each event's cost (cursor_csv.cost_text: "$0.42", "Included" → 0) in millionths of a dollar."""
    from .cursor_csv import cost_text

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


def _records(events: pa.Table, identities: _Codes, models: _Codes, has_cost: bool) -> list[tuple[tuple, tuple]]:
    summed = events.group_by(["day", "identity", "model"], use_threads=False).aggregate(
        [(name, "sum") for name in (*FIGURES, *(("cost",) if has_cost else ()))]
    )
    sums = [summed[f"{name}_sum"].to_pylist() for name in FIGURES]
    costs = (
        [Decimal(micros).scaleb(-MICROS) for micros in summed["cost_sum"].to_pylist()]
        if has_cost
        else [None] * summed.num_rows
    )
    keys = zip(summed["day"].to_pylist(), summed["identity"].to_pylist(), summed["model"].to_pylist(), strict=True)
    return [
        (
            (day, "cursor", "", ("cursor", "email", identities.values[identity]), models.values[model], "tokens"),
            (*figures, cost),
        )
        for (day, identity, model), *figures, cost in zip(keys, *sums, costs, strict=True)
    ]


def _hours(events: pa.Table, models: _Codes) -> pa.Table:
    prompt = pc.add(pc.add(events["input_tokens"], events["cache_write_tokens"]), events["cache_read_tokens"])
    summed = (
        events.select(["identity", "day", "hour", "model", "requests", "output_tokens"])
        .append_column("prompt", prompt)
        .group_by(["identity", "day", "hour", "model"], use_threads=False)
        .aggregate([("requests", "sum"), ("prompt", "sum"), ("output_tokens", "sum")])
    )
    return pa.table(
        {
            "identity": summed["identity"],
            "day": summed["day"],
            "hour": summed["hour"],
            "model": pa.array(models.values, pa.string()).take(summed["model"]),
            "requests": summed["requests_sum"],
            "input_tokens": summed["prompt_sum"],
            "output_tokens": summed["output_tokens_sum"],
            "total_tokens": pc.add(summed["prompt_sum"], summed["output_tokens_sum"]),
        }
    )
