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

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import IO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    UsageRow,
    check_day,
    parse_timestamp,
    to_decimal,
    to_int,
)
from .tabular import ROW_ERRORS, Row, Table, email_or_blank, sample_keys, whole_tokens

WITH_WRITE, WITHOUT_WRITE = "inputwcachewrite", "inputwocachewrite"


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
        cost_key = "cost" if table.has("cost") else "costtoyou" if table.has("costtoyou") else None
        for row in table.rows():
            try:
                yield self._row(row, ctx, has_user, fallback, cost_key)
            except ROW_ERRORS as error:
                yield RowError(row.line, str(error))

    def _row(self, row: Row, ctx: ParseContext, has_user: bool, fallback: str, cost_key: str | None) -> UsageRow:
        moment = parse_timestamp(row.get("date"), "Date")
        day = check_day(ctx.local_day(moment))
        if has_user:
            email = email_or_blank(row.get("user"))
            if not email:
                raise ValueError(f"User is not an email: {row.get('user')!r}")
        else:
            email = fallback
        with_write = to_int(row.get(WITH_WRITE), "Input (w/ Cache Write)")
        without_write = to_int(row.get(WITHOUT_WRITE), "Input (w/o Cache Write)")
        cache_read = to_int(row.get("cacheread"), "Cache Read")
        output = to_int(row.get("outputtokens", "output"), "Output Tokens")
        total = to_int(row.get("totaltokens"), "Total Tokens") if row.get("totaltokens") else None
        plain_input, cache_write = split_input(with_write, without_write, cache_read, output, total)
        requests = whole_tokens(to_decimal(row.get("requests"), "Requests"), "Requests") if row.get("requests") else 1
        return UsageRow(
            line=row.line,
            day=day,
            provider="cursor",
            identity_kind="email",
            identity_value=email,
            model=row.get("model"),
            usage_kind="tokens",
            input_tokens=plain_input,
            cache_write_tokens=cache_write,
            cache_read_tokens=cache_read,
            output_tokens=output,
            requests=requests,
            cost_usd=cost_text(row.get(cost_key)) if cost_key else None,
            identity_email=email,
        )


FORMAT = CursorCSV()
