"""OpenAI Admin API costs pages (/v1/organization/costs): a page, an array of pages, or JSON lines.

`amount.value` is dollars as a JSON number (read through str() so 0.1 stays 0.1). Costs have no user: the
identity is the API key, else the project, else "(unattributed)". Rows carry cost only (usage kind "cost"),
never tokens, so importing costs beside the usage pages never counts a token twice.
"""

from datetime import date
from decimal import Decimal

from .base import (
    ParseContext,
    ParsedItem,
    Sample,
    UsageRow,
    is_null,
    looks_like_json,
    to_decimal,
)
from .buckets import BucketPagesFormat


def cost_identity(api_key_id: object, project_id: object) -> tuple[str, str]:
    if not is_null(api_key_id):
        return "api_key", str(api_key_id)
    if not is_null(project_id):
        return "project", str(project_id)
    return "project", "(unattributed)"


def line_item_model(line_item: object) -> str:
    """ "gpt-4o-2024-08-06, input" → "gpt-4o-2024-08-06": input and output costs of a model add up in one record."""
    if is_null(line_item):
        return ""
    text = str(line_item).strip()
    head, _, tail = text.rpartition(",")
    if head and tail.strip().lower() in {"input", "output", "cached input", "cached_input", "input cached"}:
        return head.strip()
    return text


class OpenAICosts(BucketPagesFormat):
    name = "openai_costs"
    label = "OpenAI Costs API (JSON)"
    provider = "openai"
    page_noun = "an OpenAI costs page"
    start_key = "start_time"
    end_key = "end_time"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and "organization.costs.result" in sample.text

    def result_row(self, result: dict, day: date, line: int, ctx: ParseContext) -> ParsedItem:
        amount = result.get("amount")
        if not isinstance(amount, dict):
            raise ValueError("amount is missing or not an object")
        value = amount.get("value")
        if isinstance(value, float):
            value = str(value)
        dollars = to_decimal(value, "amount.value")
        kind, identity = cost_identity(result.get("api_key_id"), result.get("project_id"))
        return UsageRow(
            line=line,
            day=day,
            provider="openai",
            identity_kind=kind,
            identity_value=identity,
            model=line_item_model(result.get("line_item")),
            account="" if is_null(result.get("project_id")) else str(result["project_id"]),
            usage_kind="cost",
            cost_usd=ctx.to_usd(Decimal(dollars), str(amount.get("currency") or "usd")),
        )


FORMAT = OpenAICosts()
