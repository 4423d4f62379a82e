"""Azure Cost Management cost-details export (CSV), Azure OpenAI / Foundry Models token meters. EA headers
(`Date`, `MeterName`, `Cost`, `BillingCurrency`…) and MCA headers (`date`, `meterName`,
`costInBillingCurrency`, `costInUsd`, `billingCurrency`…) are both read, case-insensitively.

- Rows: daily per meter per resource; dates `MM/DD/YYYY` (ISO also accepted). Only Azure OpenAI meters with a
  token unit are usage; everything else is Skipped (counted).
- Direction from `meterName`: output ("Outp", "Output") first, then cached ("cached Inp" is cache read), then
  input ("Inp", "Input", "Inpt"). Model = the meter name without direction / deployment words
  ("gpt 4.1 mini cached Inp glbl" → "gpt-4.1-mini").
- Units: `unitOfMeasure` "1K" → quantity × 1,000, "1M" → × 1,000,000.
- Identity: resource tags (`Tags` is brace-less JSON, `"k": "v","k2": "v2"`, wrapped in {} before parsing) by
  the attribution keys → kind "tag"; else the resource id (lower-cased: Azure ids vary in case) → "project".
- Cost: `costInUsd` when present, else `Cost` / `costInBillingCurrency` in the billing currency → USD with the
  admin-set rate.
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
    parse_day,
    to_decimal,
)
from .tabular import (
    Row,
    Table,
    json_cell,
    sample_keys,
    tag_identity,
    tags_as_dict,
    token_unit_scale,
    whole_tokens,
)

OUTPUT_WORDS = {"outp", "output", "outpt", "out"}
CACHED_WORDS = {"cached", "cache", "cchd"}
INPUT_WORDS = {"inp", "input", "inpt", "in"}
NOISE_WORDS = (
    OUTPUT_WORDS
    | CACHED_WORDS
    | INPUT_WORDS
    | {"glbl", "global", "regnl", "regional", "dzone", "datazone", "data", "zone", "batch", "tokens", "token", "tkns"}
    | {"ptu", "standard", "std", "aoai"}
)


def meter_words(meter: str) -> list[str]:
    return [word for word in re.split(r"[\s\-_]+", meter.lower()) if word]


def token_class(meter: str) -> str | None:
    words = set(meter_words(meter))
    if words & OUTPUT_WORDS:
        return "output"
    if words & CACHED_WORDS:
        return "cache_read"
    if words & INPUT_WORDS or "embedding" in words or "embeddings" in words:
        return "input"  # embedding meters name no direction: all their tokens are input
    return None


def meter_model(meter: str) -> str:
    return "-".join(word for word in meter_words(meter) if word not in NOISE_WORDS)


def parse_tags(text: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        return {}
    if not text.startswith("{"):
        text = "{" + text + "}"
    return tags_as_dict(json_cell(text, "Tags"))


class AzureCost(Format):
    name = "azure_cost"
    label = "Azure Cost Management export (CSV)"
    provider = "azure_openai"

    def detect(self, sample: Sample) -> bool:
        keys = sample_keys(sample)
        return (
            "metername" in keys
            and "unitofmeasure" in keys
            and bool(keys & {"cost", "costinbillingcurrency", "costinusd", "pretaxcost"})
        )

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        table = Table(stream, label=self.label)
        table.require("date", "usagedatetime", name="Date")
        table.require("metername", name="MeterName")
        table.require("quantity", "consumedquantity", name="Quantity")
        table.require("cost", "costinbillingcurrency", "costinusd", "pretaxcost", name="Cost")
        yield from table.each_row(lambda row: self._row(row, ctx))

    def _row(self, row: Row, ctx: ParseContext) -> ParsedItem:
        meter = row.get("metername")
        family = f"{row.get('metersubcategory')} {row.get('productname', 'product')} {row.get('metercategory')}"
        if "openai" not in family.lower().replace(" ", "") and "foundry" not in family.lower():
            return Skipped(row.line, f"not an Azure OpenAI meter ({meter})")
        direction = token_class(meter)
        scale = token_unit_scale(row.get("unitofmeasure"))
        if direction is None or scale is None:
            return Skipped(row.line, f"not a token meter ({meter}, unit {row.get('unitofmeasure') or 'none'})")
        day = parse_day(row.get("date", "usagedatetime"), "Date")
        tokens = whole_tokens(to_decimal(row.get("quantity", "consumedquantity"), "Quantity") * scale, "Quantity")
        if row.get("costinusd"):
            cost = to_decimal(row.get("costinusd"), "costInUsd")
        else:
            amount = to_decimal(row.get("cost", "costinbillingcurrency", "pretaxcost"), "Cost")
            cost = ctx.to_usd(Decimal(amount), row.get("billingcurrency", "billingcurrencycode", "currency") or "USD")
        resource = row.get("resourceid", "instanceid").lower()
        tagged = tag_identity(parse_tags(row.get("tags")), ctx)
        if tagged:
            kind, (value, email, label) = "tag", tagged
        else:
            kind, value, email = "project", resource or "(unattributed)", ""
            label = resource.rsplit("/", 1)[-1] if resource else ""
        counts = {"input": 0, "cache_read": 0, "output": 0}
        counts[direction] = tokens
        return UsageRow(
            line=row.line,
            day=day,
            provider="azure_openai",
            identity_kind=kind,
            identity_value=value,
            model=meter_model(meter),
            account=row.get("subscriptionid", "subscriptionguid"),
            usage_kind="tokens",
            input_tokens=counts["input"],
            cache_read_tokens=counts["cache_read"],
            output_tokens=counts["output"],
            cost_usd=cost,
            identity_email=email,
            identity_label=label,
        )


FORMAT = AzureCost()
