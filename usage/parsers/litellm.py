"""LiteLLM proxy spend logs (`LiteLLM_SpendLogs` rows, `GET /spend/logs`): a CSV export of the table, a JSON
list, a `{"data": [...]}` page, or JSON lines. One row per request (`request_id`).

- Day: `startTime` → org-local day. Failed requests (`status` "failure") are Skipped.
- Tokens: `prompt_tokens` → input, `completion_tokens` → output. Whether prompt tokens include cached tokens
  depends on LiteLLM's provider adapter, so no cache split is attempted.
- Cost: `spend` (dollars, float → Decimal).
- Identity, first found: `user` if it is an email; the key owner's email `metadata.user_api_key_user_email`;
  `user` (kind "user_id"); `metadata.user_api_key_user_id`; the key alias `metadata.user_api_key_alias`
  (kind "api_key"); the hashed `api_key`; else "(unattributed)".
- Provider: `custom_llm_provider` mapped to ours (openai, anthropic, azure → azure_openai, bedrock →
  aws_bedrock, vertex_ai / gemini → google), else "other". Rows go to account "litellm", apart from the
  same provider's direct imports (which would count the same requests once more if both are imported).
"""

import json
from collections.abc import Iterator
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
    parse_timestamp,
    to_decimal,
    to_int,
)
from .tabular import ROW_ERRORS, Table, email_or_blank, header_key, provider_of, sample_keys

CSV_KEYS = {"requestid", "spend", "starttime"}


def identity_of(record: dict, metadata: dict) -> tuple[str, str, str]:
    user = "" if is_null(record.get("user")) else str(record.get("user")).strip()
    if email_or_blank(user):
        return "email", email_or_blank(user), email_or_blank(user)
    owner_email = email_or_blank(str(metadata.get("user_api_key_user_email") or ""))
    if owner_email:
        return "email", owner_email, owner_email
    if user:
        return "user_id", user, ""
    for key, kind in (("user_api_key_user_id", "user_id"), ("user_api_key_alias", "api_key")):
        if not is_null(metadata.get(key)) and not isinstance(metadata.get(key), (dict, list)):
            return kind, str(metadata[key]), ""
    if not is_null(record.get("apikey")) and not isinstance(record.get("apikey"), (dict, list)):
        return "api_key", str(record["apikey"]), ""
    return "project", "(unattributed)", ""


class LiteLLMSpendLogs(Format):
    name = "litellm"
    label = "LiteLLM spend logs (CSV / JSON)"
    provider = "other"

    def detect(self, sample: Sample) -> bool:
        if looks_like_json(sample):
            return '"request_id"' in sample.text and '"spend"' in sample.text
        keys = sample_keys(sample)
        return CSV_KEYS <= keys or {"requestid", "spend", "prompttokens"} <= keys

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        first = stream.read(1)
        while first and first in "\ufeff \r\n\t":
            first = stream.read(1)
        if first in ("{", "["):
            yield from self._json(first + stream.read(), ctx)
            return
        table = Table(_Prefixed(first, stream), label=self.label)
        table.require("requestid", name="request_id")
        table.require("starttime", name="startTime")
        yield from table.each_row(lambda row: self._record(dict(row.items()), row.line, ctx))

    def _json(self, text: str, ctx: ParseContext) -> Iterator[ParsedItem]:
        import io

        for line, document in load_json_documents(io.StringIO(text)):
            if isinstance(document, dict) and isinstance(document.get("data"), list):
                records = document["data"]
            elif isinstance(document, list):
                records = document
            elif isinstance(document, dict):
                records = [document]
            else:
                raise ParseError("not LiteLLM spend logs: expected a list of log rows", line)
            for record in records:
                try:
                    if not isinstance(record, dict):
                        raise ValueError("log row is not an object")
                    yield self._record(record, line, ctx)
                except ROW_ERRORS as error:
                    yield RowError(line, str(error))

    def _record(self, raw: dict, line: int, ctx: ParseContext) -> ParsedItem:
        # CSV headers and JSON keys alike are read by header key ("startTime" → "starttime").
        record = {header_key(str(key)): value for key, value in raw.items()}
        if str(record.get("status") or "").strip().lower() == "failure":
            return Skipped(line, "failed request")
        metadata = record.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata) if metadata.strip() else {}
            except (json.JSONDecodeError, RecursionError):
                raise ValueError("metadata is not valid JSON") from None
        if not isinstance(metadata, dict):
            metadata = {}
        kind, value, email = identity_of(record, metadata)
        if len(value) > 500:
            raise ValueError(f"identity {value[:40]!r}… is longer than 500 characters")
        spend = record.get("spend")
        model = record.get("model")
        if is_null(model) or isinstance(model, (dict, list)):
            model = record.get("modelgroup")
        started = parse_timestamp(record.get("starttime"), "startTime")
        return UsageRow(
            line=line,
            day=check_day(ctx.local_day(started)),
            hour=ctx.local_hour(started),
            provider=provider_of(str(record.get("customllmprovider") or "")),
            identity_kind=kind,
            identity_value=value,
            model="" if is_null(model) or isinstance(model, (dict, list)) else str(model)[:200],
            account="litellm",
            usage_kind="tokens",
            input_tokens=to_int(record.get("prompttokens"), "prompt_tokens"),
            output_tokens=to_int(record.get("completiontokens"), "completion_tokens"),
            requests=1,
            cost_usd=None if is_null(spend) else to_decimal(str(spend) if isinstance(spend, float) else spend, "spend"),
            identity_email=email,
        )


class _Prefixed:
    """A text stream with characters already read put back in front, for csv.reader."""

    def __init__(self, prefix: str, stream: IO[str]):
        self.prefix, self.stream = prefix, stream

    def __iter__(self):
        first = self.stream.readline()
        yield self.prefix + first
        yield from self.stream


FORMAT = LiteLLMSpendLogs()
