"""What the columnar readers (Format.summed: cursor_summed, openai_summed) share: a block of events as a pyarrow
table, summed into a SummedBlock as the import sums UsageRows, one key at a time in Python for the records only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from .base import SUMMED_HOURS, NotColumnar, SummedBlock, check_day

_END = object()

FIGURES = ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens", "requests")
MICROS = 6  # costs summed as whole millionths of a dollar, the places a usage record keeps


CHUNK_BYTES = 4 * 1024 * 1024  # read and summed at a time: memory stays flat however long the file


def read_ahead(blocks: Iterator[SummedBlock]) -> Iterator[SummedBlock]:
    """The blocks, the next one read and summed in a thread while the caller works on this one: pyarrow releases
    the GIL as it parses and sums, so a block's reading takes the other core. Its errors are raised here, in
    order; when the caller stops early, the block being read is finished first (the reader's file stays open
    until then)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as reader:
        pending = reader.submit(next, blocks, _END)
        while (block := pending.result()) is not _END:
            pending = reader.submit(next, blocks, _END)
            yield block


def csv_chunks(binary: BinaryIO, size: int) -> Iterator[bytes]:
    """A CSV's bytes in pieces of about `size`, each ending at a row's end: a line break outside quotes, which has
    an even number of quote characters before it (RFC 4180 escapes a quote by doubling it). pyarrow's own
    streaming reader held some 20 blocks ahead of the one read."""
    pending = b""
    while piece := binary.read(size):
        pending += piece
        cut = _row_end(pending)
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
        elif len(pending) > 4 * size:
            raise NotColumnar("no row ends in several megabytes (a quote left open?)")
    if pending.strip():
        yield pending


def _row_end(data: bytes, tries: int = 100) -> int:
    """The offset just past the last line break of `data` that is outside quotes; 0 where none is found."""
    cut = data.rfind(b"\n") + 1
    quotes = data.count(b'"', 0, cut)
    while cut and tries:
        if quotes % 2 == 0:
            return cut
        earlier = data.rfind(b"\n", 0, cut - 1) + 1
        quotes -= data.count(b'"', earlier, cut)
        cut, tries = earlier, tries - 1
    return 0


def line_chunks(binary: BinaryIO, size: int) -> Iterator[bytes]:
    """A file's non-blank lines, gathered into chunks of about `size` (LineGuard limits a line's length)."""
    lines, gathered = [], 0
    for line in binary:
        if line.isspace():  # strip() would copy a page-long line to find out
            continue
        lines.append(line if line.endswith(b"\n") else line + b"\n")
        gathered += len(line)
        if gathered >= size:
            yield b"".join(lines)
            lines, gathered = [], 0
    if lines:
        yield b"".join(lines)


@contextmanager
def arrow_refusals() -> Iterator[None]:
    """pyarrow's errors on a file's content (a row of another width, a value it cannot convert, such as a date in
    the right form but of no such month) as NotColumnar: the row parser names the line and reason."""
    try:
        yield
    except pa.ArrowException as error:
        raise NotColumnar(f"pyarrow: {error}") from None


class Codes:
    """Distinct values numbered in order of first appearance, across a file's blocks."""

    def __init__(self) -> None:
        self.values: list = []
        self.numbers: dict = {}

    def code(self, value) -> int:
        number = self.numbers.get(value)
        if number is None:
            number = self.numbers[value] = len(self.values)
            self.values.append(value)
        return number


def coded(values, codes: Codes, clean: Callable = lambda value: value) -> pa.Array:
    """Each value's code (after `clean`, which may be given None: a null), cleaning each distinct value once."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    numbers = pa.array([codes.code(clean(value)) for value in encoded.dictionary.to_pylist()], pa.int32())
    return numbers.take(encoded.indices)


def constant(value, rows: int, type_: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), rows)


def local_day_and_hour(moments, tz: str) -> tuple[pa.Array, pa.Array]:
    """The org-local day and hour of UTC timestamps; NotColumnar where a day is out of check_day's range."""
    local = pc.local_timestamp(moments.cast(pa.timestamp("s", tz=tz)))
    day = local.cast(pa.date32())
    checked(day)
    return day, pc.hour(local).cast(pa.int8())


def checked(days) -> None:
    try:
        check_day(pc.min(days).as_py())
        check_day(pc.max(days).as_py())
    except ValueError as error:
        raise NotColumnar(str(error)) from None


def all_true(condition) -> bool:
    return bool(pc.all(condition).as_py())


class Keys:
    """The codes of a file's record keys: identities (as identity keys), models, accounts and usage kinds."""

    def __init__(self) -> None:
        self.identities, self.models, self.accounts, self.kinds = Codes(), Codes(), Codes(), Codes()


def summed_block(events: pa.Table, keys: Keys, *, provider: str, emails: bool, has_cost: bool) -> SummedBlock:
    """`events`: identity, day, hour (null: none), model, account, usage_kind (codes into `keys`), the FIGURES and,
    `has_cost`, the cost in millionths of a dollar. `emails`: an identity key's value is its email."""
    summed = events.group_by(["day", "identity", "model", "account", "usage_kind"], use_threads=False).aggregate(
        [(name, "sum") for name in (*FIGURES, *(("cost",) if has_cost else ()))]
    )
    sums = [summed[f"{name}_sum"].to_pylist() for name in FIGURES]
    rows = summed.num_rows
    costs = (
        [Decimal(micros).scaleb(-MICROS) for micros in summed["cost_sum"].to_pylist()] if has_cost else [None] * rows
    )
    names = ("day", "identity", "model", "account", "usage_kind")
    identities, models, accounts, kinds = (
        keys.identities.values,
        keys.models.values,
        keys.accounts.values,
        keys.kinds.values,
    )
    records = [
        (
            (day, provider, accounts[account], identities[identity], models[model], kinds[kind]),
            (*figures, cost),
        )
        for (day, identity, model, account, kind), *figures, cost in zip(
            zip(*(summed[name].to_pylist() for name in names), strict=True), *sums, costs, strict=True
        )
    ]
    return SummedBlock(
        rows=events.num_rows,
        records=records,
        emails={key: key[2] for key in identities} if emails else {},
        identity_keys=list(identities),
        hours=_hours(events, models),
    )


def _hours(events: pa.Table, models: list[str]) -> pa.Table:
    """The events' hourly shape (UsageHour), summed per (identity, day, hour, model); events with no hour have none."""
    timed = events.filter(pc.is_valid(events["hour"]))
    prompt = pc.add(pc.add(timed["input_tokens"], timed["cache_write_tokens"]), timed["cache_read_tokens"])
    summed = (
        timed.select(["identity", "day", "hour", "model", "requests", "output_tokens"])
        .append_column("prompt", prompt)
        .group_by(["identity", "day", "hour", "model"], use_threads=False)
        .aggregate([("requests", "sum"), ("prompt", "sum"), ("output_tokens", "sum")])
    )
    columns = {
        "identity": summed["identity"],
        "day": summed["day"],
        "hour": summed["hour"],
        "model": pa.array(models, pa.string()).take(summed["model"]),
        "requests": summed["requests_sum"],
        "input_tokens": summed["prompt_sum"],
        "output_tokens": summed["output_tokens_sum"],
        "total_tokens": pc.add(summed["prompt_sum"], summed["output_tokens_sum"]),
    }
    return pa.table({name: columns[name] for name in SUMMED_HOURS})
