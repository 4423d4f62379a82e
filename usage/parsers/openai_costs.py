"""OpenAI Admin API costs pages (/v1/organization/costs): a page, an array of pages, or JSON lines.

`amount.value` is dollars as a JSON number (read through str() so 0.1 stays 0.1). Costs have no user: the
identity is the API key, else the project, else "(unattributed)". Rows carry cost only (usage kind "cost"),
never tokens, so importing costs beside the usage pages never counts a token twice.
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
    UsageRow,
    is_null,
    load_json_documents,
    looks_like_json,
    parse_timestamp,
    to_decimal,
)
from .tabular import ROW_ERRORS, bucket_day


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


class OpenAICosts(Format):
    name = "openai_costs"
    label = "OpenAI Costs API (JSON)"
    provider = "openai"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and "organization.costs.result" in sample.text

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, page in load_json_documents(stream):
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise ParseError("not an OpenAI costs page: expected an object with a 'data' list of buckets", line)
            for bucket in page["data"]:
                yield from self._bucket(bucket, line, ctx)

    def _bucket(self, bucket: object, line: int, ctx: ParseContext) -> Iterator[ParsedItem]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            yield RowError(line, "bucket without a 'results' list")
            return
        try:
            start = parse_timestamp(bucket.get("start_time"), "start_time")
            end = parse_timestamp(bucket.get("end_time", bucket.get("start_time")), "end_time")
            day = bucket_day(start, end, ctx)
        except ROW_ERRORS as error:
            yield RowError(line, str(error))
            return
        for result in bucket["results"]:
            if not isinstance(result, dict):
                yield RowError(line, "result is not an object")
                continue
            try:
                amount = result.get("amount")
                if not isinstance(amount, dict):
                    raise ValueError("amount is missing or not an object")
                value = amount.get("value")
                if isinstance(value, float):
                    value = str(value)
                dollars = to_decimal(value, "amount.value")
                kind, identity = cost_identity(result.get("api_key_id"), result.get("project_id"))
                yield UsageRow(
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
            except ROW_ERRORS as error:
                yield RowError(line, str(error))


FORMAT = OpenAICosts()
