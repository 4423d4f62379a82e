"""Any CSV, read through a saved column mapping (admin → Column mappings). Never auto-detected: choose the
format "generic_csv:<mapping name>" at upload or with `--format`; the pipeline loads that mapping into
`ctx.column_mapping`.

The mapping is {normalized field: column name} for the fields `day` (required), `identity` (required),
`model`, `account`, `input_tokens`, `cache_write_tokens`, `cache_read_tokens`, `output_tokens`, `requests`,
`cost_usd` (the file's tokens must already be disjoint), plus constants: `identity_kind` (default "email"),
`provider` (default "other"), `usage_kind` (default "tokens") and `currency` (default USD; others use the
admin-set rate). Without a cost column, cost is estimated from the price table. Columns are found
case-insensitively. A `day` cell with a time goes to the org-local day.
"""

from collections.abc import Iterator
from typing import IO

from .base import (
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    Sample,
    UsageRow,
    check_day,
    parse_day,
    parse_timestamp,
    to_decimal,
    to_int,
)
from .tabular import Row, Table, email_or_blank, header_key

COLUMN_FIELDS = (
    "day",
    "identity",
    "model",
    "account",
    "input_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "output_tokens",
    "requests",
    "cost_usd",
)
TOKEN_FIELDS = ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens")
IDENTITY_KINDS = {"api_key", "user_id", "email", "project", "workspace", "tag"}
PROVIDERS = {"openai", "anthropic", "cursor", "google", "aws_bedrock", "azure_openai", "github_copilot", "other"}


class GenericCSV(Format):
    name = "generic_csv"
    label = "CSV with a saved column mapping"
    provider = "other"

    def detect(self, sample: Sample) -> bool:
        return False  # only ever chosen explicitly, with a mapping

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        mapping = ctx.column_mapping
        if not mapping:
            raise ParseError(
                "a generic CSV needs a saved column mapping: choose the format 'generic_csv:<mapping name>'"
            )
        unknown = set(mapping) - set(COLUMN_FIELDS) - {"identity_kind", "provider", "usage_kind", "currency"}
        if unknown:
            raise ParseError(f"the column mapping has unknown fields: {', '.join(sorted(unknown))}")
        kind = str(mapping.get("identity_kind") or "email")
        provider = str(mapping.get("provider") or "other")
        if kind not in IDENTITY_KINDS:
            raise ParseError(
                f"the column mapping's identity_kind {kind!r} is not one of {', '.join(sorted(IDENTITY_KINDS))}"
            )
        if provider not in PROVIDERS:
            raise ParseError(f"the column mapping's provider {provider!r} is not one of {', '.join(sorted(PROVIDERS))}")
        for required in ("day", "identity"):
            if not mapping.get(required):
                raise ParseError(f"the column mapping has no column for {required!r}")
        table = Table(stream, label=f"{self.label}")
        columns = {field: header_key(str(mapping[field])) for field in COLUMN_FIELDS if mapping.get(field)}
        for field, key in columns.items():
            table.require(key, name=str(mapping[field]))
        yield from table.each_row(lambda row: self._row(row, columns, kind, provider, mapping, ctx))

    def _row(self, row: Row, columns: dict, kind: str, provider: str, mapping: dict, ctx: ParseContext) -> UsageRow:
        def cell(field: str) -> str:
            return row.get(columns[field]) if field in columns else ""

        day_text = cell("day")
        if len(day_text) > 10 and ("T" in day_text or ":" in day_text):
            day = check_day(ctx.local_day(parse_timestamp(day_text, mapping["day"])))
        else:
            day = parse_day(day_text, mapping["day"])
        identity = cell("identity")
        if not identity:
            raise ValueError(f"{mapping['identity']} is empty")
        email = email_or_blank(identity)
        if kind == "email":
            if not email:
                raise ValueError(f"{mapping['identity']} is not an email: {identity!r}")
            identity = email
        for field, limit in (("identity", 500), ("model", 200), ("account", 255)):
            if len(cell(field)) > limit:
                raise ValueError(f"{mapping[field]} is longer than {limit} characters")
        tokens = {field: to_int(cell(field), str(mapping.get(field, field))) for field in TOKEN_FIELDS}
        cost = None
        if cell("cost_usd"):  # an empty cost cell is "unknown": the price table estimates it
            cost = ctx.to_usd(
                to_decimal(cell("cost_usd"), str(mapping["cost_usd"])), str(mapping.get("currency") or "USD")
            )
        return UsageRow(
            line=row.line,
            day=day,
            provider=provider,
            identity_kind=kind,
            identity_value=identity,
            model=cell("model"),
            account=cell("account"),
            usage_kind=str(mapping.get("usage_kind") or "tokens"),
            requests=to_int(cell("requests"), str(mapping["requests"])) if cell("requests") else None,
            cost_usd=cost,
            identity_email=email,
            **tokens,
        )


FORMAT = GenericCSV()
