"""What the imports store beside usage (issue 14): the hourly shape of usage where the source has hours
(UsageHour, read by the anomaly rules) and the outcomes a source reports (OutcomeRecord: commits, pull
requests, lines). Both are written in the import's transaction, keyed so a re-import replaces, never adds."""

from __future__ import annotations

from dataclasses import dataclass

from usage.models import Identity, ImportBatch, OutcomeRecord, UsageHour
from usage.parsers.base import OutcomeRow, UsageRow

OUTCOME_FIGURES = ("commits", "pull_requests", "lines_added", "lines_accepted")
SOURCE_USAGE = ("tokens", "cost_usd")  # the source's own usage behind the outcomes, where it has one
BATCH = 2000


@dataclass
class HourFigures:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


def hour_add(hours: dict, identity_key: tuple, row: UsageRow) -> None:
    """Count a row with an hour into the import's hourly shape."""
    figures = hours.get(key := (identity_key, row.day, row.hour, row.model))
    if figures is None:
        figures = hours[key] = HourFigures()
    figures.requests += row.requests or 0  # the hourly shape counts known requests (None: not reported)
    figures.input_tokens += row.input_tokens + row.cache_write_tokens + row.cache_read_tokens
    figures.output_tokens += row.output_tokens
    figures.total_tokens += row.input_tokens + row.cache_write_tokens + row.cache_read_tokens + row.output_tokens


def usage_hours_upsert(hours: dict, identities: dict[tuple, Identity]) -> int:
    rows = [
        UsageHour(identity=identities[identity_key], day=day, hour=hour, model=model, **vars(figures))
        for (identity_key, day, hour, model), figures in hours.items()
    ]
    for start in range(0, len(rows), BATCH):
        UsageHour.objects.bulk_create(
            rows[start : start + BATCH],
            update_conflicts=True,
            unique_fields=["identity", "day", "hour", "model"],
            update_fields=["requests", "input_tokens", "output_tokens", "total_tokens"],
        )
    return len(rows)


def outcome_key(identity_key: tuple, row: OutcomeRow) -> tuple:
    return (row.day, row.provider, row.source, identity_key)


def outcomes_upsert(outcomes: dict, identities: dict[tuple, Identity], batch: ImportBatch) -> int:
    """One OutcomeRecord per (day, provider, source, identity); a later import of the same key replaces it."""
    rows = [
        OutcomeRecord(
            day=day,
            provider=provider,
            source=source,
            identity=identities[identity_key],
            import_batch=batch,
            **{name: getattr(row, name) for name in (*OUTCOME_FIGURES, *SOURCE_USAGE)},
        )
        for (day, provider, source, identity_key), row in outcomes.items()
    ]
    for start in range(0, len(rows), BATCH):
        OutcomeRecord.objects.bulk_create(
            rows[start : start + BATCH],
            update_conflicts=True,
            unique_fields=["day", "provider", "source", "identity"],
            update_fields=[*OUTCOME_FIGURES, *SOURCE_USAGE, "import_batch", "updated_at"],
        )
    return len(rows)
