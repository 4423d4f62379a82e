"""Anthropic Claude Code Analytics pages (/v1/organizations/usage_report/claude_code): one record per actor
per UTC day, with a `model_breakdown`.

- Identity: a `user_actor` is its email (kind "email", lower-cased, so it links to the person directly); an
  `api_actor` is its API key *name* (kind "api_key" — names, not the `apikey_…` ids of the usage report).
- Tokens: `tokens.input` is taken as uncached input (the docs do not say; consistent with the Messages API),
  `cache_read`, `cache_creation` → cache write, `output`.
- Usage kind: `claude_code` for `customer_type` "api" (org API keys: the Anthropic usage report meters the same
  tokens, and source precedence counts them once), `claude_code_subscription` for subscription seats (only
  here).
- Cost: `estimated_cost.amount` is **cents** → divided by 100. It is Anthropic's estimate; the pipeline stores
  any cost a file gives as billed.
- Outcomes (usage.models.OutcomeRecord): `core_metrics` commits, pull requests and lines added by Claude Code
  (its accepted edits, so also lines accepted).
"""

from collections.abc import Iterator
from decimal import Decimal
from typing import IO

from .base import (
    CENTS,
    Format,
    OutcomeRow,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    Skipped,
    UsageRow,
    is_null,
    load_json_documents,
    looks_like_json,
    parse_day,
    to_decimal,
    to_int,
)
from .tabular import ROW_ERRORS, email_or_blank


def records_of(document: object, line: int) -> list:
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        return document["data"]
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and "actor" in document:
        return [document]
    raise ParseError("not a Claude Code analytics page: expected an object with a 'data' list of records", line)


def actor_identity(actor: object) -> tuple[str, str, str]:
    """(kind, value, email) of a record's actor."""
    if not isinstance(actor, dict):
        raise ValueError("actor is missing or not an object")
    kind = actor.get("type")
    if kind == "user_actor":
        email = email_or_blank(str(actor.get("email_address") or ""))
        if not email:
            raise ValueError(f"user_actor without a valid email_address: {actor.get('email_address')!r}")
        return "email", email, email
    if kind == "api_actor":
        name = actor.get("api_key_name")
        if is_null(name) or isinstance(name, (dict, list)):
            raise ValueError("api_actor without an api_key_name")
        return "api_key", str(name), ""
    raise ValueError(f"unknown actor type {kind!r}")


class ClaudeCodeAnalytics(Format):
    name = "claude_code"
    label = "Claude Code analytics (JSON)"
    provider = "anthropic"

    def detect(self, sample: Sample) -> bool:
        return (
            looks_like_json(sample)
            and '"model_breakdown"' in sample.text
            and ('"user_actor"' in sample.text or '"api_actor"' in sample.text)
        )

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, document in load_json_documents(stream):
            for record in records_of(document, line):
                yield from self._record(record, line, ctx)

    def _record(self, record: object, line: int, ctx: ParseContext) -> Iterator[ParsedItem]:
        if not isinstance(record, dict):
            yield RowError(line, "record is not an object")
            return
        try:
            day = parse_day(record.get("date"), "date")
            kind, value, email = actor_identity(record.get("actor"))
            breakdown = record.get("model_breakdown") or []
            if not isinstance(breakdown, list):
                raise ValueError("model_breakdown is not a list")
        except ROW_ERRORS as error:
            yield RowError(line, str(error))
            return
        usage_kind = "claude_code_subscription" if record.get("customer_type") == "subscription" else "claude_code"
        try:
            outcome = self._outcome(record, line, day, kind, value, email)
        except ROW_ERRORS as error:
            yield RowError(line, str(error))
            return
        did_something = outcome is not None and any(
            (getattr(outcome, name) or 0) for name in ("commits", "pull_requests", "lines_added")
        )
        if not breakdown and not did_something:
            yield Skipped(line, f"{value} on {day}: no model usage")
            return
        rows = list(self._usage_rows(breakdown, line, day, kind, value, email, usage_kind, ctx))
        if outcome is not None:
            # The record's own usage, so its outcomes' ratios use exactly the tokens that produced them;
            # unknown when a model entry was bad.
            usage = [row for row in rows if isinstance(row, UsageRow)]
            if len(usage) == len(rows):
                outcome.tokens = sum(
                    r.input_tokens + r.cache_write_tokens + r.cache_read_tokens + r.output_tokens for r in usage
                )
                costs = [r.cost_usd for r in usage]
                outcome.cost_usd = sum(costs, Decimal(0)) if all(c is not None for c in costs) else None
            yield outcome
        yield from rows

    @staticmethod
    def _usage_rows(
        breakdown: list, line: int, day, kind: str, value: str, email: str, usage_kind: str, ctx: ParseContext
    ):
        for item in breakdown:
            try:
                if not isinstance(item, dict):
                    raise ValueError("model_breakdown entry is not an object")
                tokens = item.get("tokens") or {}
                if not isinstance(tokens, dict):
                    raise ValueError("tokens is not an object")
                estimated = item.get("estimated_cost")
                cost = None
                if isinstance(estimated, dict) and not is_null(estimated.get("amount")):
                    cents = to_decimal(estimated.get("amount"), "estimated_cost.amount")
                    cost = ctx.to_usd(cents / CENTS, str(estimated.get("currency") or "USD"))
                yield UsageRow(
                    line=line,
                    day=day,
                    provider="anthropic",
                    identity_kind=kind,
                    identity_value=value,
                    model="" if is_null(item.get("model")) else str(item.get("model")),
                    usage_kind=usage_kind,
                    input_tokens=to_int(tokens.get("input"), "tokens.input"),
                    cache_read_tokens=to_int(tokens.get("cache_read"), "tokens.cache_read"),
                    cache_write_tokens=to_int(tokens.get("cache_creation"), "tokens.cache_creation"),
                    output_tokens=to_int(tokens.get("output"), "tokens.output"),
                    cost_usd=cost,
                    cost_estimated=True,
                    identity_email=email,
                    identity_label="" if email else value,
                )
            except ROW_ERRORS as error:
                yield RowError(line, str(error))

    @staticmethod
    def _outcome(record: dict, line: int, day, kind: str, value: str, email: str) -> OutcomeRow | None:
        """Commits, pull requests and lines from `core_metrics`, where the record has them. Lines added by
        Claude Code are its accepted edits, so they count as lines accepted."""
        metrics = record.get("core_metrics")
        if metrics is None:
            return None
        if not isinstance(metrics, dict):
            raise ValueError("core_metrics is not an object")
        lines = metrics.get("lines_of_code") or {}
        if not isinstance(lines, dict):
            raise ValueError("core_metrics.lines_of_code is not an object")

        def optional(raw, what: str) -> int | None:
            return None if is_null(raw) else to_int(raw, what)

        added = optional(lines.get("added"), "core_metrics.lines_of_code.added")
        return OutcomeRow(
            line=line,
            day=day,
            provider="anthropic",
            source="claude_code",
            identity_kind=kind,
            identity_value=value,
            identity_email=email,
            commits=optional(metrics.get("commits_by_claude_code"), "core_metrics.commits_by_claude_code"),
            pull_requests=optional(
                metrics.get("pull_requests_by_claude_code"), "core_metrics.pull_requests_by_claude_code"
            ),
            lines_added=added,
            lines_accepted=added,
        )


FORMAT = ClaudeCodeAnalytics()
