"""The shape the providers' admin APIs share: pages of time buckets, each with a list of results.

    {"data": [{<start key>: …, <end key>: …, "results": [{…}, …]}, …], "has_more": …}

A subclass names its keys and turns one result into one item; the walk, the bucket's day (org-local for
hourly buckets, the UTC date for daily ones) and the line-numbered errors are here, once.
"""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import IO, ClassVar

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    UsageRow,
    load_json_documents,
    parse_timestamp,
)
from .tabular import ROW_ERRORS, bucket_day

HOUR = timedelta(hours=1)  # a bucket this long or shorter gives the hourly shape


class BucketPagesFormat(Format):
    page_noun: ClassVar[str]  # "an OpenAI costs page", for the error naming what the file is not
    start_key: ClassVar[str]
    end_key: ClassVar[str]

    def result_row(self, result: dict, day: date, line: int, ctx: ParseContext) -> ParsedItem:
        raise NotImplementedError

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, page in load_json_documents(stream):
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise ParseError(f"not {self.page_noun}: expected an object with a 'data' list of buckets", line)
            for bucket in page["data"]:
                yield from self._bucket(bucket, line, ctx)

    def _bucket(self, bucket: object, line: int, ctx: ParseContext) -> Iterator[ParsedItem]:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            yield RowError(line, "bucket without a 'results' list")
            return
        try:
            start = parse_timestamp(bucket.get(self.start_key), self.start_key)
            end = parse_timestamp(bucket.get(self.end_key) or bucket.get(self.start_key), self.end_key)
            day = bucket_day(start, end, ctx)
            hour = ctx.local_hour(start) if end - start <= HOUR else None
        except ROW_ERRORS as error:
            yield RowError(line, str(error))
            return
        for result in bucket["results"]:
            if not isinstance(result, dict):
                yield RowError(line, "result is not an object")
                continue
            try:
                item = self.result_row(result, day, line, ctx)
                if isinstance(item, UsageRow):
                    item.hour = hour
                yield item
            except ROW_ERRORS as error:
                yield RowError(line, str(error))
