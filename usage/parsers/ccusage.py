"""ccusage JSON (`ccusage daily|monthly|session|blocks --json`, Claude Code's local logs summarized on a
developer's machine). Shapes read: `{"daily": [...]}`, `{"monthly": [...]}`, `{"sessions": [...]}`,
`{"blocks": [...]}`, the `{"type": "daily", "data": [...]}` form, and `--instances` (`{"projects": {name: [...]}}`,
the project name becomes the record's account).

- No identity in the file: the usage belongs to the uploader or the person chosen at upload (kind "email",
  provider anthropic); with neither, the file is refused with a message asking to choose the person.
- Per entry, `modelBreakdowns` give one row per model; without them the entry's totals make one row.
- The four counters are disjoint (`inputTokens`, `cacheCreationTokens` → cache write, `cacheReadTokens`,
  `outputTokens`). Cost (`cost` / `totalCost` / `costUSD`, dollars) is ccusage's own estimate from its price
  table; it is passed on as the row's cost (the pipeline labels any cost a file gives as billed).
- Days: `date` (the machine's local date), a month → its first day, a session → its `lastActivity` date, a
  block → its `startTime` in the org's time zone. Usage kind "ccusage", kept apart from the org's Claude Code
  analytics (which count the same work when the developer uses an org API key).
"""

from collections.abc import Iterator
from decimal import Decimal
from typing import IO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    Skipped,
    UsageRow,
    check_day,
    is_null,
    load_json_documents,
    looks_like_json,
    parse_day,
    parse_timestamp,
    to_decimal,
    to_int,
)
from .tabular import ROW_ERRORS, email_or_blank

SHAPES = ("daily", "monthly", "sessions", "session", "blocks")


def entries_of(document: object, line: int) -> Iterator[tuple[str, str, object]]:
    """(shape, project, entry) for every entry in a ccusage document."""
    if not isinstance(document, dict):
        raise ParseError("not a ccusage report: expected a JSON object", line)
    if isinstance(document.get("projects"), dict):
        shape = str(document.get("type") or "daily")
        for project, entries in document["projects"].items():
            for entry in entries if isinstance(entries, list) else [entries]:
                yield shape, str(project), entry
        return
    if isinstance(document.get("type"), str) and isinstance(document.get("data"), list):
        for entry in document["data"]:
            yield document["type"], "", entry
        return
    for shape in SHAPES:
        if isinstance(document.get(shape), list):
            for entry in document[shape]:
                yield shape, "", entry
            return
    raise ParseError("not a ccusage report: no daily / monthly / sessions / blocks list", line)


def money(value: object, what: str) -> Decimal:
    return to_decimal(str(value) if isinstance(value, float) else value, what)


class CCUsage(Format):
    name = "ccusage"
    label = "ccusage report (JSON)"
    provider = "anthropic"
    has_identity = False

    def detect(self, sample: Sample) -> bool:
        text = sample.text
        return looks_like_json(sample) and (
            '"modelBreakdowns"' in text
            or ('"cacheCreationTokens"' in text and '"cacheReadTokens"' in text)
            or ('"tokenCounts"' in text and '"costUSD"' in text)
        )

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        email = email_or_blank(ctx.attribute_to_email)
        if not email:
            raise ParseError(
                "ccusage files name no person: choose who this usage belongs to ('attribute to' on the upload page)"
            )
        ctx.personal = True
        for line, document in load_json_documents(stream):
            for shape, project, entry in entries_of(document, line):
                try:
                    yield from self._entry(shape, project, entry, line, email, ctx)
                except ROW_ERRORS as error:
                    yield RowError(line, str(error))

    def _entry(
        self, shape: str, project: str, entry: object, line: int, email: str, ctx: ParseContext
    ) -> Iterator[ParsedItem]:
        if not isinstance(entry, dict):
            raise ValueError(f"{shape} entry is not an object")
        if entry.get("isGap") is True:
            yield Skipped(line, "gap block")
            return
        day = self._day(shape, entry, ctx)
        breakdowns = entry.get("modelBreakdowns")
        if isinstance(breakdowns, list) and breakdowns:
            parts = breakdowns
        else:
            counts = entry.get("tokenCounts") if isinstance(entry.get("tokenCounts"), dict) else entry
            models = entry.get("modelsUsed") or entry.get("models") or []
            model = models[0] if isinstance(models, list) and len(models) == 1 else ""
            parts = [
                {
                    "modelName": model,
                    "inputTokens": counts.get("inputTokens"),
                    "outputTokens": counts.get("outputTokens"),
                    "cacheCreationTokens": counts.get("cacheCreationTokens", counts.get("cacheCreationInputTokens")),
                    "cacheReadTokens": counts.get("cacheReadTokens", counts.get("cacheReadInputTokens")),
                    "cost": entry.get("totalCost", entry.get("costUSD")),
                }
            ]
        for part in parts:
            if not isinstance(part, dict):
                raise ValueError("modelBreakdowns entry is not an object")
            cost = part.get("cost", part.get("costUSD"))
            yield UsageRow(
                line=line,
                day=day,
                provider="anthropic",
                identity_kind="email",
                identity_value=email,
                model="" if is_null(part.get("modelName")) else str(part.get("modelName")),
                account=project,
                usage_kind="ccusage",
                input_tokens=to_int(part.get("inputTokens"), "inputTokens"),
                output_tokens=to_int(part.get("outputTokens"), "outputTokens"),
                cache_write_tokens=to_int(part.get("cacheCreationTokens"), "cacheCreationTokens"),
                cache_read_tokens=to_int(part.get("cacheReadTokens"), "cacheReadTokens"),
                cost_usd=None if is_null(cost) else money(cost, "cost"),
                cost_estimated=True,
                identity_email=email,
            )

    @staticmethod
    def _day(shape: str, entry: dict, ctx: ParseContext):
        if not is_null(entry.get("date")):
            return parse_day(entry.get("date"), "date")
        if not is_null(entry.get("month")):
            return parse_day(f"{str(entry.get('month'))[:7]}-01", "month")
        for key in ("lastActivity", "startTime", "timestamp"):
            if not is_null(entry.get(key)):
                text = str(entry.get(key))
                if len(text) == 10:
                    return parse_day(text, key)
                return check_day(ctx.local_day(parse_timestamp(text, key)))
        raise ValueError(f"{shape} entry has no date")


FORMAT = CCUsage()
