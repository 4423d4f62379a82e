"""Cursor Admin API daily usage (POST /teams/daily-usage-data): `{"data": [...]}` pages, an array of pages, or
JSON lines. Activity only, no tokens: each row gives outcomes (usage.models.OutcomeRecord).

Each row: `date` (epoch **milliseconds**, the UTC day), `email` (lower-cased, kind "email"), `totalLinesAdded`
→ lines added, `acceptedLinesAdded` → lines accepted. Rows of inactive days (`isActive` false, no lines) are
Skipped. Cursor reports no commits or pull requests: those stay empty.
"""

from collections.abc import Iterator
from typing import IO

from .base import (
    Format,
    OutcomeRow,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    Skipped,
    check_day,
    is_null,
    load_json_documents,
    looks_like_json,
    parse_timestamp,
    to_int,
)
from .tabular import ROW_ERRORS, email_or_blank


class CursorDailyUsage(Format):
    name = "cursor_daily_usage"
    label = "Cursor Admin API daily usage (JSON)"
    provider = "cursor"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and '"acceptedLinesAdded"' in sample.text

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, document in load_json_documents(stream):
            pages = document if isinstance(document, list) else [document]
            for page in pages:
                if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                    raise ParseError("not a Cursor daily-usage page: expected a 'data' list of rows", line)
                for row in page["data"]:
                    try:
                        yield self._row(row, line)
                    except ROW_ERRORS as error:
                        yield RowError(line, str(error))

    def _row(self, row: object, line: int) -> ParsedItem:
        if not isinstance(row, dict):
            raise ValueError("daily usage row is not an object")
        day = check_day(parse_timestamp(row.get("date"), "date").date())
        email = email_or_blank(str(row.get("email") or ""))
        if not email:
            raise ValueError(f"email is missing or not an email: {row.get('email')!r}")
        added = None if is_null(row.get("totalLinesAdded")) else to_int(row.get("totalLinesAdded"), "totalLinesAdded")
        accepted_raw = row.get("acceptedLinesAdded")
        accepted = None if is_null(accepted_raw) else to_int(accepted_raw, "acceptedLinesAdded")
        if row.get("isActive") is False and not added and not accepted:
            return Skipped(line, f"{email} on {day}: not active")
        return OutcomeRow(
            line=line,
            day=day,
            provider="cursor",
            source=self.name,
            identity_kind="email",
            identity_value=email,
            identity_email=email,
            lines_added=added,
            lines_accepted=accepted,
        )


FORMAT = CursorDailyUsage()
