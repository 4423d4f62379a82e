"""Shared reading helpers for the CSV formats (and JSON cells inside them): headers resolved by name,
tag attribution, bucket days, unit scales. Parsers stay small and read alike by using these."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import IO

from .base import ParseContext, ParsedItem, ParseError, RowError, Sample, check_day, is_null, to_int

# Errors that mean "this row's content is unreadable": a parser turns them into a RowError for the row.
ROW_ERRORS = (ValueError, TypeError, ArithmeticError)

_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def header_key(name: str) -> str:
    """Headers compare case-, space- and punctuation-insensitively: "lineItem/UsageType", "line_item_usage_type"
    and "LINE ITEM USAGE TYPE" are one column; so are "Input (w/ Cache Write)" and "input_w_cache_write"."""
    return _NOT_ALNUM.sub("", name.lstrip("\ufeff").strip().lower())


def sample_keys(sample: Sample) -> set[str]:
    """The header keys of a CSV sample (empty when the sample is JSON)."""
    if sample.text.lstrip("\ufeff \r\n\t")[:1] in ("{", "["):
        return set()
    try:
        first = next(csv.reader([sample.first_line]))
    except (StopIteration, csv.Error):
        return set()
    return {header_key(h) for h in first}


class Row:
    """One CSV row, read by header key; a missing column or short row reads as ""."""

    __slots__ = ("values", "columns", "line")

    def __init__(self, values: list[str], columns: dict[str, int], line: int):
        self.values, self.columns, self.line = values, columns, line

    def get(self, *keys: str) -> str:
        """The first non-empty (and non-NULL) value among the given columns."""
        for key in keys:
            index = self.columns.get(key)
            if index is not None and index < len(self.values):
                value = self.values[index].strip()
                if not is_null(value):
                    return value
        return ""

    def items(self) -> Iterator[tuple[str, str]]:
        for key, index in self.columns.items():
            if index < len(self.values):
                yield key, self.values[index]


class Table:
    """A CSV export whose columns are found by name (order varies between versions), BOM and CRLF tolerated.

    Raises ParseError for a file with no header or a malformed CSV, naming the line."""

    def __init__(self, stream: IO[str], *, label: str):
        self.label = label
        # strict: a quote left open (a file cut inside a quoted cell, a stray quote) is an error, not a cell
        # that swallows the following lines.
        self._reader = csv.reader(stream, strict=True)
        self.headers: list[str] = []
        try:
            for first in self._reader:
                if any(cell.strip() for cell in first):
                    self.headers = first
                    break
        except csv.Error as error:
            raise ParseError(f"malformed CSV header ({error})", self._reader.line_num) from None
        if not self.headers:
            raise ParseError("the file is empty (no CSV header)")
        self.columns: dict[str, int] = {}
        seen: dict[str, int] = {}
        for index, name in enumerate(self.headers):
            plain = name.lstrip("\ufeff").strip().lower()
            if plain and plain in seen:
                raise ParseError(
                    f"duplicate column {name.strip()!r} (columns {seen[plain] + 1} and {index + 1}): which one holds "
                    "the data is ambiguous; remove or rename one",
                    self._reader.line_num,
                )
            seen[plain] = index
            self.columns.setdefault(header_key(name), index)
        # Rows must have every named column: a shorter row is cut off (trailing unnamed columns may be missing).
        self.width = 1 + max(index for index, name in enumerate(self.headers) if name.strip())

    def has(self, *keys: str) -> bool:
        return any(key in self.columns for key in keys)

    def require(self, *alternatives: str, name: str | None = None) -> None:
        if not self.has(*alternatives):
            raise ParseError(
                f"missing required column {name or alternatives[0]!r} for {self.label} "
                f"(columns found: {', '.join(h.strip() for h in self.headers)[:500]})",
                1,
            )

    def lists(self, *, width: int) -> Iterator[tuple[int, list[str] | RowError]]:
        """(line, cells) for parsers that index columns directly (`width`: the columns they read); a row with
        fewer columns than the header comes as (line, RowError)."""
        reader, needed = self._reader, max(width, self.width)
        line = reader.line_num
        try:
            for values in reader:
                # Cheap test first: a normal row has a first cell and every column.
                if not values or not values[0] or len(values) < needed:
                    if not any(cell.strip() for cell in values):
                        line = reader.line_num
                        continue
                    if len(values) < self.width:
                        yield reader.line_num, self._short_row(values, reader.line_num)
                        line = reader.line_num
                        continue
                    if len(values) < width:
                        values += [""] * (width - len(values))
                yield reader.line_num, values
                line = reader.line_num
        except csv.Error as error:
            raise self._malformed(error, line + 1) from None

    def rows(self) -> Iterator[Row | RowError]:
        """Each non-blank row; a row with fewer columns than the header comes as a RowError."""
        reader = self._reader
        line = reader.line_num
        try:
            for values in reader:
                if not any(cell.strip() for cell in values):
                    line = reader.line_num
                    continue
                if len(values) < self.width:
                    yield self._short_row(values, reader.line_num)
                else:
                    yield Row(values, self.columns, reader.line_num)
                line = reader.line_num
        except csv.Error as error:
            raise self._malformed(error, line + 1) from None

    def _short_row(self, values: list[str], line: int) -> RowError:
        return RowError(
            line, f"the row has {len(values)} of the header's {self.width} columns (cut off, or a missing delimiter)"
        )

    def _malformed(self, error: csv.Error, row_start: int) -> ParseError:
        if "unexpected end of data" in str(error):
            return ParseError(
                f"the file ends inside a quoted cell opened on line {row_start} or after: it is cut off, or a quote "
                "is never closed",
                self._reader.line_num,
            )
        if "expected after" in str(error):
            return ParseError(
                f"a quoted cell is not closed where it should be: a closing quote is missing, or a quote inside "
                f"the cell is not doubled (malformed CSV: {error})",
                self._reader.line_num,
            )
        return ParseError(f"malformed CSV ({error})", self._reader.line_num)

    def each_row(self, read_row: Callable[[Row], ParsedItem]) -> Iterator[ParsedItem]:
        """Every row through `read_row`; a row it cannot read becomes a RowError naming its line."""
        for row in self.rows():
            if type(row) is RowError:
                yield row
                continue
            try:
                yield read_row(row)
            except ROW_ERRORS as error:
                yield RowError(row.line, str(error))


# --- values ---------------------------------------------------------------------------------------------


def bucket_day(start: datetime, end: datetime | None, ctx: ParseContext) -> date:
    """A daily (or longer) bucket keeps its UTC date; an hourly or finer one goes to the org-local day."""
    if end is not None and (end - start).total_seconds() >= 86400:
        return check_day(start.date())
    return check_day(ctx.local_day(start))


def json_cell(text: str, what: str) -> object:
    if is_null(text):
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError(f"{what} is not valid JSON: {text[:80]!r}") from None


def count(text: str, what: str) -> int:
    """A token count from a CSV cell: plain ASCII digits directly (the common case, once per cell of a large
    file), anything else ("59200.0", "", "-5", "lots") through base.to_int and its checks."""
    if len(text) < 16 and text.isdigit() and text.isascii():
        return int(text)
    return to_int(text, what)


def whole_tokens(quantity: Decimal, what: str) -> int:
    """Tokens from a scaled quantity (250.5 × 1000); rounded half-up, never negative."""
    if quantity < 0:
        raise ValueError(f"{what} is negative: {quantity}")
    if quantity > 10**15:
        raise ValueError(f"{what} is implausibly large: {quantity}")
    return int(quantity.to_integral_value(rounding=ROUND_HALF_UP))


def tags_as_dict(tags: object) -> dict[str, str]:
    """Tags / labels as {key: value}: a JSON object, or a list of {"key": k, "value": v} (GCP labels)."""
    result: dict[str, str] = {}
    if isinstance(tags, dict):
        for key, value in tags.items():
            if not is_null(value) and not isinstance(value, (dict, list)):
                result[str(key)] = str(value)
    elif isinstance(tags, list):
        for item in tags:
            if isinstance(item, dict) and "key" in item and not is_null(item.get("value")):
                if not isinstance(item["value"], (dict, list)):
                    result[str(item["key"])] = str(item["value"])
    return result


def tag_identity(tags: dict[str, str], ctx: ParseContext) -> tuple[str, str, str] | None:
    """The first attribution key (settings order) present among the tags → (value, email, label).

    Keys match case-insensitively and with the prefixes clouds add: AWS `user:owner` / `user_owner`,
    FOCUS provider prefixes like `tag:owner`."""
    lowered: dict[str, tuple[str, str]] = {}
    for key, value in tags.items():
        lowered.setdefault(key.strip().lower(), (key, value.strip()))
    for wanted in ctx.attribution_tag_keys:
        wanted = wanted.strip().lower()
        for candidate in (wanted, f"user:{wanted}", f"user_{wanted}", f"tag:{wanted}", f"tag_{wanted}"):
            if candidate in lowered and lowered[candidate][1]:
                key, value = lowered[candidate]
                return value, email_or_blank(value), f"{key}={value}"
    return None


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email_or_blank(value: str) -> str:
    value = value.strip()
    # Emails are at most 254 characters; the length check also keeps the regex linear on junk cells.
    return value.lower() if len(value) <= 254 and _EMAIL.match(value) else ""


# Applied to the unit with its whitespace collapsed, so each " ?" takes at most one space (no backtracking blow-up).
_UNIT = re.compile(r"(\d+(?:\.\d+)?)? ?([km]|thousand|million)? ?(tokens?|units?|count)?", re.IGNORECASE)


def token_unit_scale(unit: str) -> int | None:
    """How many tokens one unit is: "1K" / "1K tokens" → 1000, "1M" / "1 Million Tokens" → 1e6,
    "Tokens" / "count" / "Units" → 1. None when the unit is not a token unit ("1 Hour", "GB")."""
    match = _UNIT.fullmatch(" ".join((unit or "")[:100].split()))
    if not match or not any(match.groups()):
        return None
    number = Decimal(match.group(1) or 1)
    multiplier = {"k": 1000, "thousand": 1000, "m": 1_000_000, "million": 1_000_000}.get(
        (match.group(2) or "").lower(), 1
    )
    scale = number * multiplier
    if scale != scale.to_integral_value() or scale <= 0:
        return None
    return int(scale)


def provider_of(text: str) -> str:
    """Our provider for a vendor / proxy provider name; "other" when it is none of ours."""
    text = (text or "").strip().lower()
    for needles, provider in (
        (("azure", "microsoft"), "azure_openai"),
        (("bedrock", "aws", "amazon"), "aws_bedrock"),
        (("vertex", "gemini", "google", "gcp"), "google"),
        (("anthropic", "claude"), "anthropic"),
        (("openai",), "openai"),
        (("cursor",), "cursor"),
        (("copilot", "github"), "github_copilot"),
    ):
        if any(needle in text for needle in needles):
            return provider
    return "other"
