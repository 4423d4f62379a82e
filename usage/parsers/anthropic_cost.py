"""Anthropic Admin API cost_report pages (/v1/organizations/cost_report).

`amount` is a decimal string in the currency's lowest unit — cents for USD — with fractions allowed:
"123.78912" = $1.2378912. It is divided by 100 (the 100× bug the format doc warns about). Costs have no key or
user: the identity is the workspace, null = "(default workspace)". Rows carry cost only (usage kind "cost").
"""

from datetime import date

from .base import (
    CENTS,
    ParseContext,
    ParsedItem,
    Sample,
    UsageRow,
    is_null,
    looks_like_json,
    to_decimal,
)
from .buckets import BucketPagesFormat


class AnthropicCost(BucketPagesFormat):
    name = "anthropic_cost"
    label = "Anthropic cost report (JSON)"
    provider = "anthropic"
    page_noun = "an Anthropic cost page"
    start_key = "starting_at"
    end_key = "ending_at"

    def detect(self, sample: Sample) -> bool:
        text = sample.text
        return (
            looks_like_json(sample)
            and '"starting_at"' in text
            and '"amount"' in text
            and '"currency"' in text
            and '"cache_read_input_tokens"' not in text  # a usage page's counter, never a cost row's
            and '"model_breakdown"' not in text
        )

    def result_row(self, result: dict, day: date, line: int, ctx: ParseContext) -> ParsedItem:
        if is_null(result.get("amount")):
            raise ValueError("amount is missing")
        cents = to_decimal(result.get("amount"), "amount")
        workspace = result.get("workspace_id")
        workspace = "" if is_null(workspace) else str(workspace)
        model = result.get("model")
        if is_null(model):
            model = result.get("cost_type")
        return UsageRow(
            line=line,
            day=day,
            provider="anthropic",
            identity_kind="workspace",
            identity_value=workspace or "(default workspace)",
            model="" if is_null(model) else str(model),
            account=workspace,
            usage_kind="cost",
            cost_usd=ctx.to_usd(cents / CENTS, str(result.get("currency") or "USD")),
        )


FORMAT = AnthropicCost()
