"""Cursor team usage-events CSV (dashboard → Usage → Export CSV). One row per request/event.

- Columns are found by name, case-insensitively (order and set vary by version; BOM tolerated).
- Tokens: `Input (w/ Cache Write)` and `Input (w/o Cache Write)` are **disjoint** — tokens written to cache
  and plain input — and `Total Tokens` = both + `Cache Read` + `Output Tokens`. Some files follow the other
  convention, where "w/ Cache Write" *includes* the plain input (cache write = w/ − w/o, total = w/ + cache
  read + output). Each row's `Total Tokens` tells which one it follows; a row matching neither is rejected.
- `Cost` is text: "$0.42" / "0.12" → dollars; "Included", "Free", "-" → $0 billed. Without a Cost column
  (files with `Requests` instead) the cost is left to the price table.
- The event time (UTC, ms) goes to the org-local day. Identity: `User`, lower-cased, kind "email".
- Personal exports have no `User` column: they belong to the uploader or the person chosen at upload;
  with neither, the whole file is refused with a message asking to choose the person.
"""

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import IO, BinaryIO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    SummedBlock,
    UsageRow,
    check_day,
    is_null,
    parse_timestamp,
    to_decimal,
)
from .tabular import ROW_ERRORS, Table, count, email_or_blank, sample_keys, whole_tokens

WITH_WRITE, WITHOUT_WRITE = "inputwcachewrite", "inputwocachewrite"
# The columns of a current team export, in their order (files that write one: the demo seed, bench/ingest.py).
EXPORT_HEADER = [
    "Date",
    "User",
    "Cloud Agent ID",
    "Automation ID",
    "Kind",
    "Model",
    "Max Mode",
    "Input (w/ Cache Write)",
    "Input (w/o Cache Write)",
    "Cache Read",
    "Output Tokens",
    "Total Tokens",
    "Cost",
]


def cost_text(text: str) -> Decimal:
    """ "$0.42" → 0.42; non-numeric labels ("Included", "Free", "-", "") mean no charge."""
    cleaned = text.replace("$", "").replace(",", "").strip()
    if not cleaned:
        return Decimal(0)
    try:
        Decimal(cleaned)
    except InvalidOperation:
        return Decimal(0)
    return to_decimal(cleaned, "Cost")


def split_input(
    with_write: int, without_write: int, cache_read: int, output: int, total: int | None
) -> tuple[int, int]:
    """(plain input, cache write) under whichever convention the row's Total Tokens confirms."""
    if total is None or total == with_write + without_write + cache_read + output:
        return without_write, with_write
    if with_write >= without_write and total == with_write + cache_read + output:
        return without_write, with_write - without_write
    raise ValueError(
        f"Total Tokens {total} matches neither reading of the input columns "
        f"(disjoint: {with_write + without_write + cache_read + output}; "
        f"inclusive: {with_write + cache_read + output})"
    )


class CursorCSV(Format):
    name = "cursor_csv"
    label = "Cursor team usage events (CSV)"
    provider = "cursor"

    def detect(self, sample: Sample) -> bool:
        keys = sample_keys(sample)
        return "date" in keys and "model" in keys and (WITH_WRITE in keys or WITHOUT_WRITE in keys)

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        table, columns, fallback = self.header(stream, ctx)
        reader = _RowReader(ctx, fallback)
        for line, values in table.lists(width=columns.width):
            if type(values) is RowError:
                yield values
                continue
            try:
                yield reader.row(line, values, columns)
            except ROW_ERRORS as error:
                yield RowError(line, str(error))

    def summed(self, binary: BinaryIO, ctx: ParseContext) -> Iterator[SummedBlock]:
        from .cursor_summed import summed_blocks  # pyarrow: loaded by the imports that read this way only

        return summed_blocks(self, binary, ctx)

    def header(self, stream: IO[str], ctx: ParseContext) -> tuple[Table, "_Columns", str]:
        """The file's header read and checked: its table, the columns read, and the email of a personal export's
        rows (sets ctx.personal)."""
        table = Table(stream, label=self.label)
        table.require("date", name="Date")
        table.require("model", name="Model")
        table.require(WITH_WRITE, WITHOUT_WRITE, name="Input (w/o Cache Write)")
        has_user = table.has("user")
        fallback = email_or_blank(ctx.attribute_to_email)
        if not has_user and not fallback:
            raise ParseError(
                "this is a personal Cursor export (no User column): choose the person it belongs to "
                "('attribute to' on the upload page)",
                1,
            )
        ctx.personal = not has_user
        cost_key = "cost" if table.has("cost") else "costtoyou" if table.has("costtoyou") else None
        return table, _Columns(table, cost_key), fallback


class _Columns:
    """Column positions, resolved once per file (the row loop indexes lists, the hot path of a large import)."""

    def __init__(self, table, cost_key: str | None):
        get = table.columns.get
        self.date, self.user, self.model = get("date"), get("user"), get("model")
        self.with_write, self.without_write = get(WITH_WRITE), get(WITHOUT_WRITE)
        self.cache_read, self.output = get("cacheread"), get("outputtokens", get("output"))
        self.total, self.requests = get("totaltokens"), get("requests")
        self.cost = get(cost_key) if cost_key else None
        self.width = 1 + max(i for i in vars(self).values() if isinstance(i, int))


_EXACT_MINUTE = re.compile(r":[0-5]\d(\.\d{1,6})?Z")


class _RowReader:
    """Reads one event. Events repeat the same minutes, users and cost texts: their conversions are cached."""

    def __init__(self, ctx: ParseContext, fallback: str):
        self.ctx, self.fallback = ctx, fallback
        self.days: dict[str, object] = {}
        self.emails: dict[str, str] = {}
        self.costs: dict[str, Decimal] = {}

    def when(self, text: str) -> tuple:
        """(org-local day, hour). Every event of one UTC minute is in the same local hour (zone offsets are
        whole minutes)."""
        key = text[:16] if _EXACT_MINUTE.fullmatch(text, 16) else None
        if key is not None and key in self.days:
            return self.days[key]
        moment = parse_timestamp(text, "Date")
        when = (check_day(self.ctx.local_day(moment)), self.ctx.local_hour(moment))
        if key is not None and len(self.days) < 100_000:
            self.days[key] = when
        return when

    def email(self, raw: str) -> str:
        email = self.emails.get(raw)
        if email is None:
            email = email_or_blank(raw)
            if not email:
                raise ValueError(f"User is not an email: {raw!r}")
            if len(self.emails) < 100_000:
                self.emails[raw] = email
        return email

    def cost(self, raw: str) -> Decimal:
        cost = self.costs.get(raw)
        if cost is None:
            cost = cost_text(raw)
            if len(self.costs) < 100_000:
                self.costs[raw] = cost
        return cost

    def row(self, line: int, values: list[str], c: _Columns) -> UsageRow:
        day, hour = self.when(values[c.date].strip())
        email = self.email(values[c.user]) if c.user is not None else self.fallback
        with_write = _count(values, c.with_write, "Input (w/ Cache Write)")
        without_write = _count(values, c.without_write, "Input (w/o Cache Write)")
        cache_read = _count(values, c.cache_read, "Cache Read")
        output = _count(values, c.output, "Output Tokens")
        total_text = values[c.total] if c.total is not None else ""
        total = None if not total_text or is_null(total_text) else count(total_text, "Total Tokens")
        plain_input, cache_write = split_input(with_write, without_write, cache_read, output, total)
        requests_text = values[c.requests] if c.requests is not None else ""
        requests = (
            1
            if not requests_text or is_null(requests_text)
            else whole_tokens(to_decimal(requests_text, "Requests"), "Requests")
        )
        # Positional, in UsageRow's field order: keyword arguments cost more than the rest of this method's
        # work together, and it runs once per event (millions in a large export).
        return UsageRow(
            line,
            day,
            "cursor",  # provider
            "email",  # identity_kind
            email,  # identity_value
            values[c.model].strip(),
            "",  # account
            "tokens",  # usage_kind
            plain_input,
            cache_write,
            cache_read,
            output,
            requests,
            self.cost(values[c.cost].strip()) if c.cost is not None else None,
            email,  # identity_email
            "",  # identity_label
            False,  # cost_estimated
            hour,
        )


def _count(values: list[str], index: int | None, what: str) -> int:
    """The count in a column (0 when the file has no such column): plain ASCII digits directly, anything else
    through tabular.count and its checks."""
    if index is None:
        return 0
    text = values[index]
    if text.isdigit() and len(text) < 16 and text.isascii():
        return int(text)
    return count(text, what)


FORMAT = CursorCSV()
