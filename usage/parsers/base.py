"""What every format parser yields, and the shared helpers they parse with.

A parser is a module in usage/parsers/ exposing one `Format` subclass instance in `FORMAT`. It reads a
decoded text stream and yields, in file order:
- `UsageRow`: usage in the normalized contract (four disjoint token classes, Decimal USD, org-local day);
- `DirectoryEntry`: an id → email fact from a users / api-keys list;
- `Skipped`: a row that is valid but not AI usage (counted, not an error);
- `RowError`: a row that cannot be read, with its line and reason.
A format may also read its file a block at a time, summed (`Format.summed`): the fast path of a large import.
Parsers never touch the database; the pipeline (usage.services.imports) does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from itertools import chain
from typing import IO, Any, BinaryIO, ClassVar
from zoneinfo import ZoneInfo


@dataclass(slots=True)
class UsageRow:
    line: int
    day: date
    provider: str
    identity_kind: str
    identity_value: str
    model: str = ""
    account: str = ""
    usage_kind: str = "tokens"
    input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    # None: the source does not report requests (unknown, not zero; usage.figures.UNREPORTED_FIGURES).
    requests: int | None = None
    # None: the format has no cost for this usage, so the pipeline estimates it from the price table.
    cost_usd: Decimal | None = None
    identity_email: str = ""
    identity_label: str = ""
    # True when the file's cost is the vendor's own estimate (Claude Code analytics, ccusage), not a bill.
    cost_estimated: bool = False
    # The org-local hour (0–23) where the row is one event or an hourly bucket: the day's hourly shape that
    # the anomaly rules read (usage.services.anomalies). None where the source has only days.
    hour: int | None = None


@dataclass(slots=True)
class OutcomeRow:
    """What usage produced, per identity and day, where a source reports it (usage.models.OutcomeRecord).
    A figure the source does not carry stays None, never 0."""

    line: int
    day: date
    provider: str
    source: str  # the format's name
    identity_kind: str
    identity_value: str
    identity_email: str = ""
    commits: int | None = None
    pull_requests: int | None = None
    lines_added: int | None = None
    lines_accepted: int | None = None
    # The usage the source itself counts for these outcomes (Claude Code analytics: its model breakdown), so a
    # ratio uses exactly the tokens that produced them. None where the source has no usage of its own.
    tokens: int | None = None
    cost_usd: Decimal | None = None


@dataclass(slots=True)
class DirectoryEntry:
    line: int
    provider: str
    kind: str
    value: str
    email: str
    label: str = ""
    # The provider's user id of whoever created or owns a key, workspace or project: once that user id is linked
    # to a person (in this file or any other, before or after), the entry follows it.
    owner_user_id: str = ""


@dataclass(slots=True)
class Skipped:
    line: int
    reason: str


@dataclass(slots=True)
class RowError:
    line: int
    reason: str


ParsedItem = UsageRow | OutcomeRow | DirectoryEntry | Skipped | RowError


@dataclass(slots=True)
class SummedBlock:
    """A block of a file's usage rows, already summed by a columnar reader (Format.summed).

    `records`: ((day, provider, account, identity key, model, usage kind), (input, cache write, cache read, output,
    requests, billed cost or None when the rows state none)) per key, as the import sums UsageRows. `hours`: a
    pyarrow Table of (identity, day, hour, model, requests, input_tokens, output_tokens, total_tokens) summed per
    (identity, day, hour, model), its identity column indexing `identity_keys`; input_tokens is the prompt (input of
    all three kinds), as HourSpool.add sums it."""

    rows: int
    records: list[tuple[tuple, tuple]]
    emails: dict[tuple, str]  # identity key → the email the rows give it
    identity_keys: list[tuple]
    hours: Any


SUMMED_HOURS = ("identity", "day", "hour", "model", "requests", "input_tokens", "output_tokens", "total_tokens")


class NotColumnar(Exception):
    """The file holds something its format's columnar reader does not read exactly as the row parser does: read it
    row by row instead (which names the line and reason of anything bad)."""


class ParseError(Exception):
    """The file as a whole cannot be read (wrong format, truncated JSON, bad encoding)."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass
class ParseContext:
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    attribution_tag_keys: list[str] = field(default_factory=lambda: ["user", "owner", "email", "created_by"])
    # ccusage-style files have no identity: the usage belongs to this email.
    attribute_to_email: str = ""
    usd_rates: dict[str, Decimal] = field(default_factory=dict)
    column_mapping: dict[str, str] | None = None
    # Set by a parser whose format says when it was exported (the newest export of a scope wins).
    exported_at: datetime | None = None
    # Set by a parser whose file names no one (its usage is attribute_to_email's): it states one person's usage,
    # so it replaces only that person's figures of its days.
    personal: bool = False

    def local_day(self, moment: datetime) -> date:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.tz).date()

    def local_hour(self, moment: datetime) -> int:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.tz).hour

    def to_usd(self, amount: Decimal, currency: str) -> Decimal:
        currency = (currency or "USD").strip().upper()
        if currency == "USD":
            return amount
        rate = self.usd_rates.get(currency)
        if rate is None:
            raise ValueError(f"cost is in {currency} and no {currency}→USD rate is set (admin → Currency rates)")
        return amount * rate


@dataclass
class Sample:
    """The start of a file, for detection: its name and first characters, decoded."""

    name: str
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].lstrip("\ufeff").strip()


class Format:
    name: ClassVar[str]
    label: ClassVar[str]
    provider: ClassVar[str]
    has_identity: ClassVar[bool] = True

    def detect(self, sample: Sample) -> bool:
        raise NotImplementedError

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        raise NotImplementedError

    def summed(self, binary: BinaryIO, ctx: ParseContext) -> Iterator[SummedBlock] | None:
        """The file's usage summed a block at a time (the fast path of a large import), or None where the format
        has no such reader. Its blocks add up to what `parse` would yield, or it raises NotColumnar."""
        return None


# --- helpers shared by the parsers ------------------------------------------------------------------------

_NULLS = {"", "null", "none", "nan", "-"}


_LONGEST_NULL = max(map(len, _NULLS))
# Spreadsheet and pandas spellings of "not a number": for a count or an amount they are an error, never 0.
_NOT_FINITE = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "#num!", "#value!", "#div/0!"}


def _refuse_not_finite(value: object, what: str) -> None:
    if isinstance(value, str) and value.strip().lower() in _NOT_FINITE:
        raise ValueError(f"{what} is not a number: {value!r}")


def is_null(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    # Fast path (CSV parsers call this for every cell): longer than any null word and with no whitespace to
    # strip, it cannot be one — lower() never shortens a string — so skip building two new strings.
    if len(value) > _LONGEST_NULL and not value[0].isspace() and not value[-1].isspace():
        return False
    return value.strip().lower() in _NULLS


def to_int(value: object, what: str) -> int:
    """A token or request count: an integer ≥ 0. Accepts "59200.0" (exports write counts as floats)."""
    # Fast paths for the common cases (a JSON int, a CSV digit string): this runs for every count of every
    # row, and the general path below costs a Decimal per call. type() rather than isinstance() because a
    # bool is an int and must be rejected below; isascii() because int() and Decimal() also read other digits.
    if type(value) is int:
        if 0 <= value <= 10**15:
            return value
    elif type(value) is str and value.isascii() and value.isdigit() and len(value) <= 16:
        number = int(value)
        if number <= 10**15:
            return number
    _refuse_not_finite(value, what)
    if is_null(value):
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{what} is not a number: {value!r}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().replace(",", "")
        try:
            parsed = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{what} is not a number: {value!r}") from None
        if not parsed.is_finite() or parsed != parsed.to_integral_value():
            raise ValueError(f"{what} is not a whole number: {value!r}")
        # Range checks before int(): "1e99999999" would build a hundred-million-digit integer.
        if parsed < 0:
            raise ValueError(f"{what} is negative: {value!r}")
        if parsed > 10**15:
            raise ValueError(f"{what} is implausibly large: {value!r}")
        number = int(parsed)
    if number < 0:
        raise ValueError(f"{what} is negative: {value!r}")
    if number > 10**15:
        raise ValueError(f"{what} is implausibly large: {value!r}")
    return number


_MONEY_JUNK = re.compile(r"[\s$,]")


def to_decimal(value: object, what: str) -> Decimal:
    """Money or a fractional quantity as Decimal; floats go through str() so 0.1 stays 0.1."""
    _refuse_not_finite(value, what)
    if is_null(value):
        return Decimal(0)
    if isinstance(value, bool):
        raise ValueError(f"{what} is not a number: {value!r}")
    text = _MONEY_JUNK.sub("", str(value))
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not number.is_finite() or abs(number) > Decimal(10) ** 12:
        raise ValueError(f"{what} is out of range: {value!r}")
    return number


CENTS = Decimal(100)
EARLIEST_DAY = date(2015, 1, 1)


def check_day(day: date) -> date:
    """Usage dates must be plausible: AI usage exports start after 2015 and cannot be in the future."""
    today = date.today()  # once: this runs for every row
    try:
        latest = today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year + 1, day=28)
    if not EARLIEST_DAY <= day <= latest:
        raise ValueError(f"date {day.isoformat()} is out of range ({EARLIEST_DAY.isoformat()} to {latest.isoformat()})")
    return day


EPOCH_MILLISECONDS_FROM = 10**12


def parse_timestamp(value: object, what: str = "timestamp") -> datetime:
    """ISO 8601 (with Z, offset, or space separator), epoch seconds or epoch milliseconds; naive = UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # Milliseconds from 10**12 (September 2001) on: a smaller number is seconds, so seconds in year 9999
        # (2.5 × 10**11) read as year 9999 and are reported as out of range, not as 1978.
        seconds = value / 1000 if value >= EPOCH_MILLISECONDS_FROM else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{what} is out of range: {value!r}") from None
    text = str(value or "").strip()
    if not text:
        raise ValueError(f"{what} is empty")
    if text.isdigit():
        return parse_timestamp(int(text), what)
    text = text.replace(" UTC", "").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} is not a date/time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_day(value: object, what: str = "date") -> date:
    text = str(value or "").strip()
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y"):
        try:
            return check_day(datetime.strptime(text[:10] if fmt == "%Y-%m-%d" else text, fmt).date())
        except ValueError:
            continue
    return check_day(parse_timestamp(value, what).date())


# A multi-line JSON document is parsed whole; beyond this size its objects would not fit a worker's 512 MB.
WHOLE_DOCUMENT_MAX_CHARS = 32 * 1024 * 1024


def load_json_documents(stream: IO[str]) -> Iterator[tuple[int, object]]:
    """A JSON file as documents: one object, an array of pages, or JSON lines. Yields (line, document).

    JSON lines are read one line at a time, so memory stays flat however long the file is. A single document
    spread over several lines (a pretty-printed page or array of pages) is read whole: such files come from
    one API response and are small; a very large export should be JSON lines (docs/PERFORMANCE.md)."""
    lines = enumerate(stream, start=1)
    number, first = next(((n, line) for n, line in lines if line.lstrip("\ufeff").strip()), (0, ""))
    if not number:
        raise ParseError("the file is empty")
    try:
        first_document = json.loads(first)
    except (RecursionError, ValueError) as first_error:  # JSONDecodeError is a ValueError
        # Not a whole document on its first line: the file is one multi-line document (or broken).
        rest = stream.read(WHOLE_DOCUMENT_MAX_CHARS)
        if stream.read(1):
            raise ParseError(
                f"a JSON document spread over lines is read whole, and this one is larger than "
                f"{WHOLE_DOCUMENT_MAX_CHARS:,} characters: export it as JSON lines (one object per line)"
            ) from None
        yield from _json_whole_document(first + rest, number, first_error)
        return
    following = next(((n, line) for n, line in lines if line.strip()), None)
    if following is None:  # one line in all: a single document, as if read whole
        yield from _json_pages(first_document)
        return
    # JSON lines: one document per line (a file whose first line is a whole document cannot be one document).
    yield number, first_document
    for number, raw_line in chain([following], lines):
        if not raw_line.strip():
            continue
        try:
            yield number, json.loads(raw_line)
        except (RecursionError, ValueError) as line_error:
            raise _json_line_error(line_error, number) from None


def _json_whole_document(text: str, first_line: int, first_error: Exception) -> Iterator[tuple[int, object]]:
    stripped = text.lstrip("\ufeff").strip()
    try:
        document = json.loads(stripped)
    except RecursionError:
        raise ParseError("invalid JSON: nested too deeply") from None
    except json.JSONDecodeError as whole_error:
        if "\n" not in stripped:
            raise ParseError(f"invalid or truncated JSON: {whole_error.msg}", whole_error.lineno) from None
        # Neither one document nor JSON lines: report it as JSON lines, whose first line does not parse.
        raise _json_line_error(first_error, first_line) from None
    except ValueError as whole_error:  # e.g. an integer longer than Python's digit limit
        raise ParseError(f"invalid JSON ({whole_error})") from None
    yield from _json_pages(document)


def _json_pages(document: object) -> Iterator[tuple[int, object]]:
    if isinstance(document, list) and all(isinstance(item, dict) and "data" in item for item in document):
        for item in document:
            yield 1, item
    else:
        yield 1, document


def _json_line_error(error: Exception, number: int) -> ParseError:
    if isinstance(error, json.JSONDecodeError):
        return ParseError(f"invalid or truncated JSON ({error.msg}); not a JSON document or JSON lines", number)
    return ParseError(f"invalid JSON ({type(error).__name__}: {error})", number)


def looks_like_json(sample: Sample) -> bool:
    return sample.text.lstrip("\ufeff \r\n\t")[:1] in ("{", "[")
