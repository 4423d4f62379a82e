"""OpenAI dashboard CSV export (usage page → Export): per-endpoint usage CSVs and cost CSVs.

Columns mirror the Admin API plus ISO copies of the bucket times, in varying sets, so they are found by name.
- Usage variant (`input_tokens`, `num_model_requests`…): `input_tokens` includes cached and cache-write tokens,
  as in the API, so plain input = input_tokens − input_cached_tokens − input_cache_write_tokens.
- Cost variant (`amount_value`, dollars with ~18 decimals): usage kind "cost", no tokens.
- Counts may be written as floats ("59200.0"); `batch` as "FALSE".
- Rows for empty days carry only the four time columns: they are Skipped (counted), not errors.
- A header-only export (`start_time,end_time,start_time_iso,end_time_iso`) yields nothing; the pipeline then
  reports "no usage rows found" and stores nothing.
"""

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    RowError,
    Sample,
    Skipped,
    UsageRow,
    parse_timestamp,
    to_decimal,
    to_int,
)
from .openai_costs import cost_identity, line_item_model
from .tabular import ROW_ERRORS, Row, Table, bucket_day, email_or_blank, sample_keys

TIME_KEYS = {"starttime", "endtime", "starttimeiso", "endtimeiso"}


def bucket_time(row: Row, iso_key: str, epoch_key: str, what: str) -> datetime | None:
    iso = row.get(iso_key)
    if iso:
        return parse_timestamp(iso, what)
    epoch = row.get(epoch_key)
    if not epoch:
        return None
    return parse_timestamp(int(to_decimal(epoch, what)), what)


class OpenAIDashboardCSV(Format):
    name = "openai_dashboard_csv"
    label = "OpenAI dashboard export (CSV)"
    provider = "openai"

    def detect(self, sample: Sample) -> bool:
        return TIME_KEYS <= sample_keys(sample)

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        table = Table(stream, label=self.label)
        table.require("starttime", "starttimeiso", name="start_time")
        is_cost = table.has("amountvalue")
        if table.has("outputtokens"):
            usage_kind = "completions"
        elif table.has("inputtokens"):
            usage_kind = "embeddings"
        else:
            usage_kind = "other"
        data_keys = [key for key in table.columns if key not in TIME_KEYS]
        for row in table.rows():
            if type(row) is RowError:
                yield row
                continue
            if not any(row.get(key) for key in data_keys):
                yield Skipped(row.line, "no usage in this bucket (only time columns filled)")
                continue
            try:
                start = bucket_time(row, "starttimeiso", "starttime", "start_time")
                if start is None:
                    raise ValueError("start_time is empty")
                end = bucket_time(row, "endtimeiso", "endtime", "end_time")
                day = bucket_day(start, end, ctx)
                yield self._cost(row, day, ctx) if is_cost else self._usage(row, day, usage_kind)
            except ROW_ERRORS as error:
                yield RowError(row.line, str(error))

    def _usage(self, row: Row, day, usage_kind: str) -> UsageRow:
        cached = to_int(row.get("inputcachedtokens"), "input_cached_tokens")
        cache_write = to_int(row.get("inputcachewritetokens"), "input_cache_write_tokens")
        if row.get("inputtokens"):
            all_input = to_int(row.get("inputtokens"), "input_tokens")
        else:
            all_input = to_int(row.get("inputuncachedtokens"), "input_uncached_tokens") + cached + cache_write
        if cached + cache_write > all_input:
            raise ValueError(
                f"input_cached_tokens + input_cache_write_tokens ({cached + cache_write}) exceed input_tokens ({all_input})"
            )
        kind, value = self._identity(row)
        return UsageRow(
            line=row.line,
            day=day,
            provider="openai",
            identity_kind=kind,
            identity_value=value,
            model=row.get("model"),
            account=row.get("projectid"),
            usage_kind=usage_kind,
            input_tokens=all_input - cached - cache_write,
            cache_read_tokens=cached,
            cache_write_tokens=cache_write,
            output_tokens=to_int(row.get("outputtokens"), "output_tokens"),
            requests=to_int(row.get("nummodelrequests", "numrequests"), "num_model_requests"),
            identity_email=email_or_blank(row.get("useremail")),
        )

    def _cost(self, row: Row, day, ctx: ParseContext) -> UsageRow:
        dollars = to_decimal(row.get("amountvalue"), "amount_value")
        kind, value = self._identity(row)
        return UsageRow(
            line=row.line,
            day=day,
            provider="openai",
            identity_kind=kind,
            identity_value=value,
            model=line_item_model(row.get("lineitem")),
            account=row.get("projectid"),
            usage_kind="cost",
            cost_usd=ctx.to_usd(Decimal(dollars), row.get("amountcurrency") or "usd"),
            identity_email=email_or_blank(row.get("useremail")),
        )

    @staticmethod
    def _identity(row: Row) -> tuple[str, str]:
        if row.get("userid"):
            return "user_id", row.get("userid")
        return cost_identity(row.get("apikeyid") or None, row.get("projectid") or None)


FORMAT = OpenAIDashboardCSV()
