"""OpenAI Admin API usage pages (/v1/organization/usage/*): a page, an array of pages, or JSON lines.

`input_tokens` includes cached and cache-write tokens, so plain input = input_tokens − input_cached_tokens −
input_cache_write_tokens. Hourly (or finer) buckets go to the org-local day; daily buckets keep their UTC day.
"""

from collections.abc import Iterator
from functools import lru_cache
from typing import IO, BinaryIO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    SummedBlock,
    UsageRow,
    check_day,
    load_json_documents,
    looks_like_json,
    parse_timestamp,
    to_int,
)

DAY_SECONDS = 86400


def usage_kind_of(result: dict) -> str:
    return _usage_kind_of_object(str(result.get("object", "")))


# The object names of the current API, looked up per result without a call (usage_kind_of reads any other).
_USAGE_KINDS = {
    f"organization.usage.{kind}.result": kind
    for kind in ("completions", "embeddings", "moderations", "images", "audio_speeches", "audio_transcriptions")
}
MAX_COUNT = 10**15  # to_int's limit: larger counts go through it and are refused there


@lru_cache(maxsize=256)  # a file names a handful of object types; splitting each result's string was measurable
def _usage_kind_of_object(name: str) -> str:
    # "organization.usage.completions.result" → "completions"
    parts = name.split(".")
    return parts[2] if len(parts) >= 4 else "completions"


def identity_of(result: dict) -> tuple[str, str]:
    if result.get("user_id"):
        return "user_id", str(result["user_id"])
    if result.get("api_key_id"):
        return "api_key", str(result["api_key_id"])
    if result.get("project_id"):
        return "project", str(result["project_id"])
    return "project", "(unattributed)"


# The same page → bucket → result walk as buckets.BucketPagesFormat, kept inline here: this is the hot path of
# the largest imports (a million results), where the per-result method call and keyword arguments show.
class OpenAIUsage(Format):
    name = "openai_usage"
    label = "OpenAI Usage API (JSON)"
    provider = "openai"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and "organization.usage." in sample.text

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, page in load_json_documents(stream):
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise ParseError("not an OpenAI usage page: expected an object with a 'data' list of buckets", line)
            for bucket in page["data"]:
                yield from self._bucket(bucket, line, ctx)

    def summed(self, binary: BinaryIO, ctx: ParseContext) -> Iterator[SummedBlock]:
        from .openai_summed import summed_blocks  # pyarrow: loaded by the imports that read this way only

        return summed_blocks(binary, ctx)

    def _bucket(self, bucket: object, line: int, ctx: ParseContext) -> Iterator[ParsedItem]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            yield RowError(line, "bucket without a 'results' list")
            return
        try:
            start = parse_timestamp(bucket.get("start_time"), "start_time")
            end = parse_timestamp(bucket.get("end_time", bucket.get("start_time")), "end_time")
            daily = (end - start).total_seconds() >= DAY_SECONDS
            day = check_day(start.date() if daily else ctx.local_day(start))
            hour = None if daily else ctx.local_hour(start)  # the hourly shape (usage.services.anomalies)
        except ValueError as error:
            yield RowError(line, str(error))
            return
        kinds = _USAGE_KINDS
        for result in bucket["results"]:
            if not isinstance(result, dict):
                yield RowError(line, "result is not an object")
                continue
            try:
                get = result.get
                # The counts' common case (a JSON int in range) inline; anything else through to_int and its checks.
                all_input = get("input_tokens")
                if type(all_input) is not int or not 0 <= all_input <= MAX_COUNT:
                    all_input = to_int(all_input, "input_tokens")
                cached = get("input_cached_tokens")
                if type(cached) is not int or not 0 <= cached <= MAX_COUNT:
                    cached = to_int(cached, "input_cached_tokens")
                cache_write = get("input_cache_write_tokens")
                if type(cache_write) is not int or not 0 <= cache_write <= MAX_COUNT:
                    cache_write = to_int(cache_write, "input_cache_write_tokens")
                if cached + cache_write > all_input:
                    raise ValueError(
                        f"input_cached_tokens + input_cache_write_tokens ({cached + cache_write}) exceed input_tokens ({all_input})"
                    )
                output = get("output_tokens")
                if type(output) is not int or not 0 <= output <= MAX_COUNT:
                    output = to_int(output, "output_tokens")
                requests = get("num_model_requests")
                if type(requests) is not int or not 0 <= requests <= MAX_COUNT:
                    requests = to_int(get("num_model_requests", get("num_requests")), "num_model_requests")
                user_id = get("user_id")
                if user_id and type(user_id) is str:
                    kind, value = "user_id", user_id
                else:
                    kind, value = identity_of(result)
                model = get("model")
                if type(model) is not str:
                    model = str(model or "")
                account = get("project_id")
                if type(account) is not str:
                    account = str(account or "")
                kind_name = get("object", "")
                usage_kind = kinds.get(kind_name) if type(kind_name) is str else None
                if usage_kind is None:
                    usage_kind = usage_kind_of(result)
                # Positional, in UsageRow's field order: keyword arguments made this call ~4× slower, and it
                # runs once per result (a million times in a large export).
                yield UsageRow(
                    line,
                    day,
                    "openai",
                    kind,
                    value,
                    model,
                    account,
                    usage_kind,
                    all_input - cached - cache_write,  # input_tokens (plain)
                    cache_write,  # cache_write_tokens
                    cached,  # cache_read_tokens
                    output,
                    requests,
                    None,  # cost_usd: estimated from the price table
                    "",  # identity_email
                    "",  # identity_label
                    False,  # cost_estimated
                    hour,
                )
            except ValueError as error:
                yield RowError(line, str(error))


FORMAT = OpenAIUsage()
