"""Cursor Admin API usage events (POST /teams/filtered-usage-events): `{"usageEvents": [...]}` pages, an array
of pages, or JSON lines.

Each event: `timestamp` (epoch **milliseconds** as a string) → org-local day; `userEmail` (lower-cased, kind
"email"); `tokenUsage` {inputTokens, outputTokens, cacheWriteTokens, cacheReadTokens} — taken as disjoint, like
the CSV — and `totalCents` (**cents**, a float) → dollars. Events without token usage (request-based calls)
count one request and leave cost to the price table.
"""

from collections.abc import Iterator
from typing import IO

from .base import (
    CENTS,
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    UsageRow,
    check_day,
    is_null,
    load_json_documents,
    looks_like_json,
    parse_timestamp,
    to_decimal,
    to_int,
)
from .tabular import ROW_ERRORS, email_or_blank


class CursorAPI(Format):
    name = "cursor_api"
    label = "Cursor Admin API usage events (JSON)"
    provider = "cursor"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and '"usageEvents"' in sample.text

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, document in load_json_documents(stream):
            pages = document if isinstance(document, list) else [document]
            for page in pages:
                if not isinstance(page, dict) or not isinstance(page.get("usageEvents"), list):
                    raise ParseError("not a Cursor usage-events page: expected a 'usageEvents' list", line)
                for event in page["usageEvents"]:
                    try:
                        yield self._event(event, line, ctx)
                    except ROW_ERRORS as error:
                        yield RowError(line, str(error))

    def _event(self, event: object, line: int, ctx: ParseContext) -> UsageRow:
        if not isinstance(event, dict):
            raise ValueError("usage event is not an object")
        moment = parse_timestamp(event.get("timestamp"), "timestamp")
        day = check_day(ctx.local_day(moment))
        email = email_or_blank(str(event.get("userEmail") or ""))
        if not email:
            raise ValueError(f"userEmail is missing or not an email: {event.get('userEmail')!r}")
        usage = event.get("tokenUsage")
        if usage is not None and not isinstance(usage, dict):
            raise ValueError("tokenUsage is not an object")
        usage = usage or {}
        cost = None
        if not is_null(usage.get("totalCents")):
            cost = to_decimal(usage.get("totalCents"), "totalCents") / CENTS
        return UsageRow(
            line=line,
            day=day,
            provider="cursor",
            identity_kind="email",
            identity_value=email,
            model="" if is_null(event.get("model")) else str(event.get("model")),
            usage_kind="tokens",
            input_tokens=to_int(usage.get("inputTokens"), "inputTokens"),
            cache_write_tokens=to_int(usage.get("cacheWriteTokens"), "cacheWriteTokens"),
            cache_read_tokens=to_int(usage.get("cacheReadTokens"), "cacheReadTokens"),
            output_tokens=to_int(usage.get("outputTokens"), "outputTokens"),
            requests=1,
            hour=ctx.local_hour(moment),
            cost_usd=cost,
            identity_email=email,
        )


FORMAT = CursorAPI()
