"""Google Cloud Billing export as CSV (the BigQuery standard/detailed usage table flattened: one column per
leaf path such as `sku.description`, repeated fields — `labels`, `credits` — as JSON). Vertex AI and Gemini API
token SKUs become usage; every other row is Skipped (counted).

- Direction from `sku.description`, **output before input** ("Generate content output token count … short
  input text" is output), then "cached"/"caching" → cache read, then input. Cache *storage* SKUs are skipped.
- Tokens: `usage.amount` (unit "count"), scaled if the unit says 1K / 1M.
- Identity: the first attribution key (settings) present in the request `labels` → kind "tag"; else the
  project id → kind "project" (unassigned until an admin maps it).
- Cost: `cost` (gross, float → Decimal) + Σ `credits.amount` (negative) = net, in `currency`, converted to
  USD with the admin-set rate. Tax / adjustment / rounding rows are skipped.
- Hourly usage windows go to the org-local day.
"""

import re
from collections.abc import Iterator
from typing import IO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    Sample,
    Skipped,
    UsageRow,
    parse_timestamp,
    to_decimal,
)
from .tabular import (
    Row,
    Table,
    bucket_day,
    json_cell,
    sample_keys,
    tag_identity,
    tags_as_dict,
    token_unit_scale,
    whole_tokens,
)

AI_SERVICES = ("vertex", "gemini", "generative")
_GEMINI = re.compile(r"gemini[\s-]+(\d+(?:\.\d+)?)[\s-]*(pro|flash[\s-]+lite|flash|ultra|nano)?", re.IGNORECASE)
_CLAUDE = re.compile(r"claude[\s-]+(opus|sonnet|haiku)[\s-]+(\d+(?:\.\d+)?)", re.IGNORECASE)


def token_class(description: str) -> str | None:
    text = description.lower()
    if "storage" in text:
        return None
    if "output" in text:  # before "input": "… output token count … short input text"
        return "output"
    if "cached" in text or "caching" in text or "cache read" in text:
        return "cache_read"
    if "cache write" in text or "cache creation" in text:
        return "cache_write"
    if "input" in text:
        return "input"
    return None


def sku_model(description: str) -> str:
    """ "Gemini 2.5 Flash GA Text Input - Predictions" → "gemini-2.5-flash"; partner models alike."""
    description = description[:300]
    match = _GEMINI.search(description)
    if match:
        variant = re.sub(r"[\s-]+", "-", (match.group(2) or "").lower())
        return "-".join(part for part in ("gemini", match.group(1), variant) if part)
    match = _CLAUDE.search(description)
    if match:
        return f"claude-{match.group(1).lower()}-{match.group(2).replace('.', '-')}"
    return description.strip()[:200]


class GCPBilling(Format):
    name = "gcp_billing"
    label = "Google Cloud billing export (CSV)"
    provider = "google"

    def detect(self, sample: Sample) -> bool:
        keys = sample_keys(sample)
        return {"skudescription", "usagestarttime", "cost"} <= keys

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        table = Table(stream, label=self.label)
        for key, name in (
            ("skudescription", "sku.description"),
            ("usagestarttime", "usage_start_time"),
            ("cost", "cost"),
            ("usageamount", "usage.amount"),
        ):
            table.require(key, name=name)
        yield from table.each_row(lambda row: self._row(row, ctx))

    def _row(self, row: Row, ctx: ParseContext) -> ParsedItem:
        if row.get("exporttime"):
            # The billing export restates rows as costs settle; its newest export_time dates the file.
            exported = parse_timestamp(row.get("exporttime"), "export_time")
            ctx.exported_at = max(ctx.exported_at or exported, exported)
        service = row.get("servicedescription")
        sku = row.get("skudescription")
        if not any(word in f"{service} {sku}".lower() for word in AI_SERVICES):
            return Skipped(row.line, f"not Vertex AI / Gemini ({service or sku})")
        cost_type = row.get("costtype").lower()
        if cost_type and cost_type != "regular":
            return Skipped(row.line, f"{cost_type} row")
        direction = token_class(sku)
        scale = token_unit_scale(row.get("usageunit") or "count")
        if direction is None or scale is None:
            return Skipped(row.line, f"not a token SKU ({sku})")
        start = parse_timestamp(row.get("usagestarttime"), "usage_start_time")
        end = parse_timestamp(row.get("usageendtime"), "usage_end_time") if row.get("usageendtime") else None
        tokens = whole_tokens(to_decimal(row.get("usageamount"), "usage.amount") * scale, "usage.amount")
        net = to_decimal(row.get("cost"), "cost")
        credits = json_cell(row.get("credits"), "credits") or []
        if not isinstance(credits, list):
            raise ValueError("credits is not a JSON list")
        for credit in credits:
            if isinstance(credit, dict):
                net += to_decimal(credit.get("amount"), "credits.amount")
        labels = tags_as_dict(json_cell(row.get("labels"), "labels"))
        project = row.get("projectid")
        tagged = tag_identity(labels, ctx)
        if tagged:
            kind, (value, email, label) = "tag", tagged
        else:
            kind, value, email, label = "project", project or "(unattributed)", "", row.get("projectname")
        counts = {"input": 0, "cache_read": 0, "cache_write": 0, "output": 0}
        counts[direction] = tokens
        return UsageRow(
            line=row.line,
            day=bucket_day(start, end, ctx),
            provider="google",
            identity_kind=kind,
            identity_value=value,
            model=sku_model(sku),
            account=project,
            usage_kind="tokens",
            input_tokens=counts["input"],
            cache_read_tokens=counts["cache_read"],
            cache_write_tokens=counts["cache_write"],
            output_tokens=counts["output"],
            cost_usd=ctx.to_usd(net, row.get("currency") or "USD"),
            identity_email=email,
            identity_label=label,
        )


FORMAT = GCPBilling()
