"""OpenAI usage pages written as JSON lines (a page a line), read by pyarrow about CHUNK_BYTES of pages at a time and
summed there: the fast path of a large import. Read one by one in Python, a million results cost 11.5 s of CPU
(docs/PERFORMANCE.md, Ingest).

It reads a file as OpenAIUsage.parse does, or not at all: at the first value it cannot take exactly as that parser
would (an array of pages, a count written as text or as a float or out of range, times as text or in milliseconds,
a bucket without an end time, a null request count, cached tokens above the input…) it raises NotColumnar, and the
import reads the file row by row, naming each bad line and its reason.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from .base import NotColumnar, ParseContext, SummedBlock
from .columnar import Keys, all_true, arrow_refusals, checked, coded, line_chunks, local_day_and_hour, summed_block
from .openai_usage import DAY_SECONDS, MAX_COUNT, usage_kind_of

# Whole lines are gathered up to this size and read as one block; a longer line (a page of the largest exports is
# 9 MB) is a block alone. A block's arrays and records grow with its rows: gathering a large org's daily pages
# (10,000 results, 3.9 MB) three at a time, as 8 MB did, raised its import's peak memory by 88 MB.
CHUNK_BYTES = 2 * 1024 * 1024
_COUNTS = ("input_tokens", "input_cached_tokens", "input_cache_write_tokens", "output_tokens", "num_model_requests")
_RESULT = pa.struct(
    [
        ("object", pa.string()),
        *((name, pa.int64()) for name in _COUNTS),
        ("project_id", pa.string()),
        ("user_id", pa.string()),
        ("api_key_id", pa.string()),
        ("model", pa.string()),
    ]
)
_BUCKET = pa.struct([("start_time", pa.int64()), ("end_time", pa.int64()), ("results", pa.list_(_RESULT))])
PAGES = pa.schema([("data", pa.list_(_BUCKET))])
_OPENS_OBJECT = re.compile(rb"\s*\{")  # as lstrip().startswith(b"{"), without copying the chunk
_LATEST_SECONDS = 10**12  # parse_timestamp reads larger numbers as milliseconds


def summed_blocks(binary: BinaryIO, ctx: ParseContext) -> Iterator[SummedBlock]:
    tz = getattr(ctx.tz, "key", None)
    if not tz:
        raise NotColumnar("the org's time zone has no name")
    keys = Keys()
    for chunk in line_chunks(binary, CHUNK_BYTES):
        if not _OPENS_OBJECT.match(chunk):
            raise NotColumnar("not a page a line")
        with arrow_refusals():
            pages = pa_json.read_json(
                io.BytesIO(chunk),
                read_options=pa_json.ReadOptions(block_size=len(chunk) + 1, use_threads=False),
                parse_options=pa_json.ParseOptions(explicit_schema=PAGES, unexpected_field_behavior="ignore"),
            )
            block = _summed(pages, tz, keys) if pages.num_rows else None
        if block is not None:
            yield block


def _summed(pages: pa.Table, tz: str, keys: Keys) -> SummedBlock | None:
    data = pages.column("data").combine_chunks()
    if data.null_count:
        raise NotColumnar("a page without a 'data' list")
    buckets = data.flatten()
    if buckets.null_count or buckets.field("results").null_count:
        raise NotColumnar("a bucket that is not an object with a 'results' list")
    results = buckets.field("results")
    of_bucket = pc.list_parent_indices(results)
    results = results.flatten()
    if results.null_count:
        raise NotColumnar("a result that is not an object")
    if not len(results):
        return None
    start, end = buckets.field("start_time"), buckets.field("end_time")
    if start.null_count or end.null_count:
        raise NotColumnar("a bucket without its start_time or end_time")
    if not all_true(pc.and_(pc.greater_equal(start, 0), pc.less(start, _LATEST_SECONDS))):
        raise NotColumnar("a start_time that is not epoch seconds")
    daily = pc.greater_equal(pc.subtract(end, start), DAY_SECONDS)
    moments = pc.assume_timezone(start.cast(pa.timestamp("s")), "UTC")
    local_day, local_hour = local_day_and_hour(moments, tz)
    utc_day = moments.cast(pa.timestamp("s")).cast(pa.date32())
    checked(utc_day)
    # A daily bucket keeps its UTC day and has no hour; an hourly one goes to the org-local day and hour.
    day = pc.if_else(daily, utc_day, local_day).take(of_bucket)
    hour = pc.if_else(daily, pa.scalar(None, pa.int8()), local_hour).take(of_bucket)

    counts = {name: results.field(name) for name in _COUNTS}
    if counts["num_model_requests"].null_count:
        raise NotColumnar("a null num_model_requests")
    counts = {name: pc.fill_null(values, 0) for name, values in counts.items()}
    for values in counts.values():
        if not all_true(pc.and_(pc.greater_equal(values, 0), pc.less_equal(values, MAX_COUNT))):
            raise NotColumnar("a count out of range")
    cached, cache_write = counts["input_cached_tokens"], counts["input_cache_write_tokens"]
    plain = pc.subtract(pc.subtract(counts["input_tokens"], cached), cache_write)
    if not all_true(pc.greater_equal(plain, 0)):
        raise NotColumnar("input_cached_tokens + input_cache_write_tokens above input_tokens")

    user, key, project = (_blank_as_null(results.field(name)) for name in ("user_id", "api_key_id", "project_id"))
    kind = pc.if_else(
        pc.is_valid(user),
        "user_id",
        pc.if_else(pc.is_valid(key), "api_key", "project"),
    )
    value = pc.coalesce(user, key, project, pa.scalar("(unattributed)"))
    events = {
        "identity": coded(pc.binary_join_element_wise(kind, value, "\x1f"), keys.identities, _identity_key),
        "day": day,
        "hour": hour,
        "model": coded(pc.fill_null(results.field("model"), ""), keys.models),
        "account": coded(pc.fill_null(results.field("project_id"), ""), keys.accounts),
        "usage_kind": coded(results.field("object"), keys.kinds, lambda name: usage_kind_of({"object": name})),
        "input_tokens": plain,
        "cache_write_tokens": cache_write,
        "cache_read_tokens": cached,
        "output_tokens": counts["output_tokens"],
        "requests": counts["num_model_requests"],
    }
    return summed_block(pa.table(events), keys, provider="openai", emails=False, has_cost=False)


def _blank_as_null(values):
    """An id as the row parser tests it: an empty string is no id."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _identity_key(joined: str) -> tuple[str, str, str]:
    kind, value = joined.split("\x1f", 1)
    return ("openai", kind, value)
