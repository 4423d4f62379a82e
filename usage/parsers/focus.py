"""FinOps FOCUS 1.0 / 1.1 / 1.2 cost-and-usage files (CSV or Parquet), from any FOCUS publisher (AWS, Azure,
Google Cloud, Oracle…). Only AI token usage is kept; every other row is Skipped and counted (a FOCUS file is a
whole cloud bill).

- AI row: `ServiceCategory` "AI and Machine Learning", or `ServiceName` / `SkuMeter` / `ChargeDescription`
  naming tokens, Bedrock, OpenAI, Vertex or Gemini — *and* a token `ConsumedUnit` ("Tokens", "1K Tokens",
  "1M Tokens"…), which scales `ConsumedQuantity`. `ChargeCategory` other than Usage → Skipped.
- Direction from `SkuMeter` / `ChargeDescription` / `SkuId`: output first, then cache read, cache write,
  input. A token row naming no direction counts as input, so totals stay whole.
- Literal `NULL` cells are empty; datetimes "2024-09-18 22:00:00" (no Z) are UTC; hourly charge periods go
  to the org-local day, daily or longer ones keep their UTC date.
- Identity: `Tags` (JSON object) by the attribution keys → kind "tag"; else `ResourceId`, else
  `SubAccountId` → kind "project". Cost: `BilledCost` in `BillingCurrency` → USD.
- Provider from `ProviderName` (AWS → aws_bedrock, Microsoft → azure_openai, Google → google, else other).
"""

import re
from collections.abc import Iterator
from decimal import Decimal
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
    provider_of,
    sample_keys,
    tag_identity,
    tags_as_dict,
    token_unit_scale,
    whole_tokens,
)

AI_WORDS = ("token", "bedrock", "openai", "vertex", "gemini")
_MODEL = re.compile(
    r"\b(gpt[-\s]?[0-9][\w.]*(?:[-\s](?:mini|nano|turbo|pro))?|o[1-9](?:-mini|-pro)?|"
    r"claude[\w.\- ]*?(?:opus|sonnet|haiku)(?:[\s\-]?[0-9][\w.\-]*)?|gemini[-\s][0-9.]+[-\s]?(?:pro|flash(?:[-\s]lite)?)?|"
    r"nova[-\s]?\w+|llama[\w.\-]*|mistral[\w.\-]*|titan[\w.\-]*)",
    re.IGNORECASE,
)


def token_class(text: str) -> str:
    text = text.lower()
    if re.search(r"\boutp|output", text):
        return "output"
    if re.search(r"cache[\s\-_]?read|cached", text):
        return "cache_read"
    if re.search(r"cache[\s\-_]?(write|creation)", text):
        return "cache_write"
    return "input"


def text_model(*texts: str) -> str:
    for text in texts:
        match = _MODEL.search((text or "")[:300])
        if match:
            return re.sub(r"\s+", "-", match.group(1).strip().lower())
    return ""


class Focus(Format):
    name = "focus"
    label = "FinOps FOCUS 1.0–1.2 (CSV / Parquet)"
    provider = "other"

    def detect(self, sample: Sample) -> bool:
        return {"billedcost", "chargeperiodstart", "servicename"} <= sample_keys(sample)

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        table = Table(stream, label=self.label)
        for key, name in (
            ("billedcost", "BilledCost"),
            ("chargeperiodstart", "ChargePeriodStart"),
            ("consumedquantity", "ConsumedQuantity"),
            ("consumedunit", "ConsumedUnit"),
        ):
            table.require(key, name=name)
        yield from table.each_row(lambda row: self._row(row, ctx))

    def _row(self, row: Row, ctx: ParseContext) -> ParsedItem:
        category = row.get("chargecategory")
        described = " ".join(row.get(key) for key in ("servicename", "skumeter", "chargedescription"))
        is_ai = row.get("servicecategory").lower() == "ai and machine learning" or any(
            word in described.lower() for word in AI_WORDS
        )
        unit = row.get("consumedunit")
        scale = token_unit_scale(unit) if "token" in unit.lower() else None
        if not is_ai or scale is None:
            return Skipped(row.line, "not AI token usage")
        if category and category.lower() != "usage":
            return Skipped(row.line, f"{category} charge")
        if row.get("chargeclass").lower() == "correction":
            # Corrections restate an earlier period (often with negative quantities); re-import that period's
            # file instead — token counts are never negative.
            return Skipped(row.line, "correction of an earlier charge period")
        start = parse_timestamp(row.get("chargeperiodstart"), "ChargePeriodStart")
        end_text = row.get("chargeperiodend")
        end = parse_timestamp(end_text, "ChargePeriodEnd") if end_text else None
        tokens = whole_tokens(to_decimal(row.get("consumedquantity"), "ConsumedQuantity") * scale, "ConsumedQuantity")
        direction = token_class(" ".join(row.get(key) for key in ("skumeter", "chargedescription", "skuid")))
        cost = ctx.to_usd(Decimal(to_decimal(row.get("billedcost"), "BilledCost")), row.get("billingcurrency") or "USD")
        tags = tags_as_dict(json_cell(row.get("tags"), "Tags"))
        tagged = tag_identity(tags, ctx)
        if tagged:
            kind, (value, email, label) = "tag", tagged
        else:
            kind, email = "project", ""
            value = row.get("resourceid") or row.get("subaccountid") or "(unattributed)"
            label = row.get("resourcename") or row.get("subaccountname")
        counts = {"input": 0, "cache_read": 0, "cache_write": 0, "output": 0}
        counts[direction] = tokens
        return UsageRow(
            line=row.line,
            day=bucket_day(start, end, ctx),
            provider=provider_of(row.get("providername") or described),
            identity_kind=kind,
            identity_value=value,
            model=text_model(row.get("skumeter"), row.get("chargedescription"), row.get("resourcename")),
            account=row.get("subaccountid"),
            usage_kind="tokens",
            input_tokens=counts["input"],
            cache_read_tokens=counts["cache_read"],
            cache_write_tokens=counts["cache_write"],
            output_tokens=counts["output"],
            cost_usd=cost,
            identity_email=email,
            identity_label=label[:200],
        )


FORMAT = Focus()
