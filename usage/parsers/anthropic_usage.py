"""Anthropic Admin API usage_report/messages pages. The four input counters are already disjoint:
uncached input, cache creation (5m + 1h writes) and cache reads. Hourly buckets → org-local day."""

from datetime import date

from .base import (
    ParseContext,
    ParsedItem,
    Sample,
    UsageRow,
    looks_like_json,
    to_int,
)
from .buckets import BucketPagesFormat


class AnthropicUsage(BucketPagesFormat):
    name = "anthropic_usage"
    label = "Anthropic usage report (messages, JSON)"
    provider = "anthropic"
    page_noun = "an Anthropic usage page"
    start_key = "starting_at"
    end_key = "ending_at"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and '"uncached_input_tokens"' in sample.text and '"starting_at"' in sample.text

    def result_row(self, result: dict, day: date, line: int, ctx: ParseContext) -> ParsedItem:
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
        return UsageRow(
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


FORMAT = AnthropicUsage()
