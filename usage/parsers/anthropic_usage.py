"""Anthropic Admin API usage_report/messages pages. The four input counters are already disjoint:
uncached input, cache creation (5m + 1h writes) and cache reads. Hourly buckets → org-local day."""

from collections.abc import Iterator
from typing import IO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    UsageRow,
    check_day,
    load_json_documents,
    looks_like_json,
    parse_timestamp,
    to_int,
)

DAY_SECONDS = 86400


class AnthropicUsage(Format):
    name = "anthropic_usage"
    label = "Anthropic usage report (messages, JSON)"
    provider = "anthropic"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and '"uncached_input_tokens"' in sample.text and '"starting_at"' in sample.text

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, page in load_json_documents(stream):
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise ParseError("not an Anthropic usage page: expected an object with a 'data' list of buckets", line)
            for bucket in page["data"]:
                yield from self._bucket(bucket, line, ctx)

    def _bucket(self, bucket: object, line: int, ctx: ParseContext) -> Iterator[ParsedItem]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            yield RowError(line, "bucket without a 'results' list")
            return
        try:
            start = parse_timestamp(bucket.get("starting_at"), "starting_at")
            end = parse_timestamp(bucket.get("ending_at") or bucket.get("starting_at"), "ending_at")
            daily = (end - start).total_seconds() >= DAY_SECONDS
            day = check_day(start.date() if daily else ctx.local_day(start))
        except ValueError as error:
            yield RowError(line, str(error))
            return
        for result in bucket["results"]:
            if not isinstance(result, dict):
                yield RowError(line, "result is not an object")
                continue
            try:
                creation = result.get("cache_creation") or {}
                if not isinstance(creation, dict):
                    raise ValueError("cache_creation is not an object")
                if result.get("api_key_id"):
                    kind, value = "api_key", str(result["api_key_id"])
                elif result.get("workspace_id"):
                    kind, value = "workspace", str(result["workspace_id"])
                else:
                    # Null key and workspace = Console/Workbench usage in the default workspace.
                    kind, value = "workspace", "(default workspace)"
                yield UsageRow(
                    line=line,
                    day=day,
                    provider="anthropic",
                    identity_kind=kind,
                    identity_value=value,
                    model=str(result.get("model") or ""),
                    account=str(result.get("workspace_id") or ""),
                    usage_kind="messages",
                    input_tokens=to_int(result.get("uncached_input_tokens"), "uncached_input_tokens"),
                    cache_write_tokens=to_int(creation.get("ephemeral_5m_input_tokens"), "ephemeral_5m_input_tokens")
                    + to_int(creation.get("ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens"),
                    cache_read_tokens=to_int(result.get("cache_read_input_tokens"), "cache_read_input_tokens"),
                    output_tokens=to_int(result.get("output_tokens"), "output_tokens"),
                )
            except ValueError as error:
                yield RowError(line, str(error))


FORMAT = AnthropicUsage()
