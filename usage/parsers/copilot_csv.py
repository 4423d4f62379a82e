"""GitHub Copilot premium-request usage report (CSV), both header variants:
- current: `date,username,product,sku,model,quantity,unit_type,applied_cost_per_quantity,gross_amount,
  discount_amount,net_amount,exceeds_quota,total_monthly_quota,organization,cost_center_name` (the detailed
  metered-usage report shares these; its non-Copilot products are Skipped);
- older premium request analytics: `Timestamp,User,Model,Requests Used,Exceeds Monthly Quota,Total Monthly Quota`.

Copilot bills requests, not tokens: each row becomes requests only. `quantity` is fractional because of model
multipliers (0.33, 1.25…); requests = quantity rounded half-up per row — totals are request counts as GitHub
bills them, to the nearest whole request per user, day and model. Cost = `net_amount` dollars (gross − discount
when net is absent); the older variant has no cost. Identity: the GitHub login, lower-cased (logins are
case-insensitive), kind "user_id", provider github_copilot — an admin maps logins to people once.
Dates may be `2026-05-29`, `2026-05-29T00:00:00Z` or spreadsheet-mangled `5/29/26`; all UTC.
"""

from collections.abc import Iterator
from typing import IO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    Sample,
    Skipped,
    UsageRow,
    parse_day,
    to_decimal,
)
from .tabular import Row, Table, sample_keys, whole_tokens


class CopilotCSV(Format):
    name = "copilot_csv"
    label = "GitHub Copilot premium requests (CSV)"
    provider = "github_copilot"

    def detect(self, sample: Sample) -> bool:
        keys = sample_keys(sample)
        current = {"date", "username", "quantity"} <= keys and bool(keys & {"netamount", "grossamount"})
        older = {"timestamp", "user", "requestsused"} <= keys
        return current or older

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        table = Table(stream, label=self.label)
        table.require("date", "timestamp", name="date")
        table.require("username", "user", name="username")
        table.require("quantity", "requestsused", name="quantity")
        yield from table.each_row(lambda row: self._row(row))

    def _row(self, row: Row) -> ParsedItem:
        product = row.get("product")
        if product and "copilot" not in product.lower():
            return Skipped(row.line, f"not Copilot ({product})")
        login = row.get("username", "user")
        if not login:
            raise ValueError("username is empty")
        quantity = to_decimal(row.get("quantity", "requestsused"), "quantity")
        if row.get("netamount"):
            cost = to_decimal(row.get("netamount"), "net_amount")
        elif row.get("grossamount"):
            cost = to_decimal(row.get("grossamount"), "gross_amount") - to_decimal(
                row.get("discountamount"), "discount_amount"
            )
        else:
            cost = None
        return UsageRow(
            line=row.line,
            day=parse_day(row.get("date", "timestamp"), "date"),
            provider="github_copilot",
            identity_kind="user_id",
            identity_value=login.lower(),
            model=row.get("model"),
            usage_kind="premium_requests",
            requests=whole_tokens(quantity, "quantity"),
            cost_usd=cost,
            identity_label=login,
        )


FORMAT = CopilotCSV()
