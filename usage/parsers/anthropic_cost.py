"""Anthropic Admin API cost_report pages (/v1/organizations/cost_report).

`amount` is a decimal string in the currency's lowest unit — cents for USD — with fractions allowed:
"123.78912" = $1.2378912. It is divided by 100 (the 100× bug the format doc warns about). Costs have no key or
user: the identity is the workspace, null = "(default workspace)". Rows carry cost only (usage kind "cost").
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
    is_null,
    load_json_documents,
    looks_like_json,
    parse_timestamp,
    to_decimal,
)
from .tabular import ROW_ERRORS, bucket_day


class AnthropicCost(Format):
    name = "anthropic_cost"
    label = "Anthropic cost report (JSON)"
    provider = "anthropic"

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

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, page in load_json_documents(stream):
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise ParseError("not an Anthropic cost page: expected an object with a 'data' list of buckets", line)
            for bucket in page["data"]:
                yield from self._bucket(bucket, line, ctx)

    def _bucket(self, bucket: object, line: int, ctx: ParseContext) -> Iterator[ParsedItem]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            yield RowError(line, "bucket without a 'results' list")
            return
        try:
            start = parse_timestamp(bucket.get("starting_at"), "starting_at")
            end = parse_timestamp(bucket.get("ending_at") or bucket.get("starting_at"), "ending_at")
            day = bucket_day(start, end, ctx)
        except ROW_ERRORS as error:
            yield RowError(line, str(error))
            return
        for result in bucket["results"]:
            if not isinstance(result, dict):
                yield RowError(line, "result is not an object")
                continue
            try:
                if is_null(result.get("amount")):
                    raise ValueError("amount is missing")
                cents = to_decimal(result.get("amount"), "amount")
                workspace = result.get("workspace_id")
                workspace = "" if is_null(workspace) else str(workspace)
                model = result.get("model")
                if is_null(model):
                    model = result.get("cost_type")
                yield UsageRow(
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
            except ROW_ERRORS as error:
                yield RowError(line, str(error))


FORMAT = AnthropicCost()
