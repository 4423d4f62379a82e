"""AWS Cost and Usage Report rows for Amazon Bedrock: CUR 2.0 (Data Exports, snake_case columns, map columns
as JSON) and legacy CUR (`lineItem/UsageType`-style headers, or Athena `line_item_usage_type` names), as CSV or
Parquet (the payload opener reads Parquet as CSV text).

- Only `Usage` line items of Bedrock (product code AmazonBedrock, or a product name mentioning Bedrock —
  Marketplace models) are usage; Credit / Refund / Tax / other services and non-token usage types are Skipped.
- Token class from the usage type: `cache-read-input-token-count`, `cache-write-input-token-count`,
  `output-tokens` / Marketplace `OutputTokenCount`, `input-tokens` / `InputTokenCount` (checked in that order).
- Units: `line_item_usage_amount` is in `pricing_unit` units; "1K tokens" → × 1,000 ("1M" → × 1,000,000).
  A row whose usage × rate differs from its cost by more than a cent and 2 % is rejected: the unit is unclear.
- Identity: the IAM principal's name — an assumed role's session name or an IAM user's name (kind "user_id";
  an email-looking name also fills the identity's email) — else the first attribution tag, else the resource,
  else the usage account (kind "project", unassigned until mapped).
- Cost: `line_item_unblended_cost` in `line_item_currency_code`. Hourly rows → org-local day, daily → UTC day.
- Model: the product name without " (Amazon Bedrock Edition)", or from the usage type
  ("USE1-Claude4.6Sonnet-input-tokens" → "Claude4.6Sonnet") when the product name is plain "Amazon Bedrock".
"""

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import IO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    Sample,
    Skipped,
    UsageRow,
    parse_timestamp,
    to_decimal,
)
from .tabular import (
    Row,
    Table,
    bucket_day,
    email_or_blank,
    header_key,
    json_cell,
    sample_keys,
    tag_identity,
    tags_as_dict,
    token_unit_scale,
    whole_tokens,
)

USAGE_TYPES = {"usage", "discountedusage", "savingsplancoveredusage"}
TOKEN_CLASSES = (
    ("cache-read-input-token", "cache_read"),
    ("cacheread", "cache_read"),
    ("cache-write-input-token", "cache_write"),
    ("cachewrite", "cache_write"),
    ("output-token", "output"),
    ("outputtokencount", "output"),
    ("output_tokens", "output"),
    ("input-token", "input"),
    ("inputtokencount", "input"),
    ("input_tokens", "input"),
)
_TOKEN_SUFFIX = re.compile(
    r"-(mantle-)?(cache-read-input-token-count|cache-write-input-token-count|input-tokens|output-tokens).*$",
    re.IGNORECASE,
)
_REGION = re.compile(r"^[A-Z]{2,4}\d?-")


def token_class(usage_type: str) -> str | None:
    text = usage_type.lower()
    for needle, direction in TOKEN_CLASSES:
        if needle in text:
            return direction
    return None


def principal_name(arn: str) -> str:
    """ "…:assumed-role/Role/alice@acme.example" → the session name; "…:user/path/alice" → "alice"."""
    resource = arn.split(":", 5)[-1] if arn.startswith("arn:") else arn
    parts = [part for part in resource.split("/") if part]
    if not parts or parts[0] in {"root"}:
        return ""
    if parts[0] in {"assumed-role", "user", "federated-user"} and len(parts) >= 2:
        return parts[-1]
    return resource if "/" not in resource else parts[-1]


def usage_type_model(usage_type: str) -> str:
    model = _TOKEN_SUFFIX.sub("", _REGION.sub("", usage_type, count=1))
    return "" if model.upper().startswith("MP:") else model


class AWSCur(Format):
    name = "aws_cur"
    label = "AWS Cost and Usage Report, Bedrock rows (CSV / Parquet)"
    provider = "aws_bedrock"

    def detect(self, sample: Sample) -> bool:
        keys = sample_keys(sample)
        return "lineitemusagetype" in keys and ("lineitemunblendedcost" in keys or "lineitemusageamount" in keys)

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        table = Table(stream, label=self.label)
        for key, name in (
            ("lineitemusagetype", "line_item_usage_type"),
            ("lineitemusageamount", "line_item_usage_amount"),
            ("lineitemunblendedcost", "line_item_unblended_cost"),
        ):
            table.require(key, name=name)
        tag_columns = {
            key: header
            for key, header in ((header_key(h), h) for h in table.headers)
            if header.lower().startswith(("resourcetags/", "resource_tags_", "iamprincipal/"))
        }
        yield from table.each_row(lambda row: self._row(row, ctx, tag_columns))

    def _row(self, row: Row, ctx: ParseContext, tag_columns: dict[str, str]) -> ParsedItem:
        item_type = row.get("lineitemlineitemtype")
        if item_type and item_type.lower() not in USAGE_TYPES:
            return Skipped(row.line, f"{item_type} line item")
        code = row.get("lineitemproductcode")
        product_cell = row.get("product")
        # A whole cloud bill is mostly other services: rule them out before reading the product map's JSON.
        if "bedrock" not in f"{code} {row.get('productproductname', 'productname')} {product_cell}".lower():
            return Skipped(row.line, f"not Amazon Bedrock ({code or 'no product code'})")
        product = json_cell(product_cell, "product") if product_cell.startswith("{") else None
        product_name = row.get("productproductname", "productname") or (
            str(product.get("product_name") or "") if isinstance(product, dict) else ""
        )
        if "bedrock" not in f"{code} {product_name}".lower():
            return Skipped(row.line, f"not Amazon Bedrock ({code or product_name or 'no product'})")
        usage_type = row.get("lineitemusagetype")
        direction = token_class(usage_type)
        unit = row.get("pricingunit")
        scale = token_unit_scale(unit)
        if direction is None or scale is None:
            return Skipped(row.line, f"not a token usage type ({usage_type}, unit {unit or 'none'})")
        amount = to_decimal(row.get("lineitemusageamount"), "line_item_usage_amount")
        cost = to_decimal(row.get("lineitemunblendedcost"), "line_item_unblended_cost")
        rate = row.get("lineitemunblendedrate")
        if rate:
            expected = amount * to_decimal(rate, "line_item_unblended_rate")
            if abs(expected - cost) > Decimal("0.01") + abs(cost) * Decimal("0.02"):
                raise ValueError(
                    f"usage {amount} × rate {rate} = {expected}, not the cost {cost}: the pricing unit {unit!r} is unclear"
                )
        start = parse_timestamp(row.get("lineitemusagestartdate"), "line_item_usage_start_date")
        end_text = row.get("lineitemusageenddate")
        end = parse_timestamp(end_text, "line_item_usage_end_date") if end_text else None
        kind, value, email, label = self._identity(row, ctx, tag_columns)
        counts = {"input": 0, "cache_read": 0, "cache_write": 0, "output": 0}
        counts[direction] = whole_tokens(amount * scale, "line_item_usage_amount")
        model = re.sub(r"\s*\(Amazon Bedrock Edition\)\s*$", "", product_name, flags=re.IGNORECASE)
        if not model or model.lower().startswith("amazon bedrock"):
            model = usage_type_model(usage_type)
        return UsageRow(
            line=row.line,
            day=bucket_day(start, end, ctx),
            provider="aws_bedrock",
            identity_kind=kind,
            identity_value=value,
            model=model,
            account=row.get("lineitemusageaccountid"),
            usage_kind="tokens",
            input_tokens=counts["input"],
            cache_read_tokens=counts["cache_read"],
            cache_write_tokens=counts["cache_write"],
            output_tokens=counts["output"],
            cost_usd=ctx.to_usd(cost, row.get("lineitemcurrencycode") or "USD"),
            identity_email=email,
            identity_label=label,
        )

    @staticmethod
    def _identity(row: Row, ctx: ParseContext, tag_columns: dict[str, str]) -> tuple[str, str, str, str]:
        arn = row.get("lineitemiamprincipal")
        name = principal_name(arn) if arn else ""
        if name:
            return "user_id", name, email_or_blank(name), arn[:200]
        tags: dict[str, str] = {}
        for column in ("resourcetags", "tags"):
            cell = row.get(column)
            if cell.startswith("{"):
                tags.update(tags_as_dict(json_cell(cell, column)))
        for key, header in tag_columns.items():
            value = row.get(key)
            if value:
                # "resourceTags/user:owner" → "user:owner"; Athena "resource_tags_user_owner" → "user_owner"
                tag = header.split("/", 1)[1] if "/" in header else header[len("resource_tags_") :]
                tags[tag] = value
        tagged = tag_identity(tags, ctx)
        if tagged:
            value, email, label = tagged
            return "tag", value, email, label
        resource = row.get("lineitemresourceid")
        if resource:
            return "project", resource, "", ""
        account = row.get("lineitemusageaccountid")
        return "project", account or "(unattributed)", "", ""


FORMAT = AWSCur()
