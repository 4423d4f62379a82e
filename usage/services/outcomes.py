"""What the imports store beside usage (issue 14): the hourly shape of usage where the source has hours
(UsageHour, read by the anomaly rules) and the outcomes a source reports (OutcomeRecord: commits, pull
requests, lines). Both are written in the import's transaction, keyed so a re-import replaces, never adds."""

from __future__ import annotations

import tempfile
from typing import IO

from usage.models import Identity, ImportBatch, OutcomeRecord, UsageHour
from usage.parsers.base import OutcomeRow, UsageRow
from usage.services.bulk import StagingTable

OUTCOME_FIGURES = ("commits", "pull_requests", "lines_added", "lines_accepted")
SOURCE_USAGE = ("tokens", "cost_usd")  # the source's own usage behind the outcomes, where it has one
BATCH = 2000


class HourSpool:
    """The import's hourly shape (UsageHour), summed per (identity, org-local day, hour, model).

    Memory stays flat however long the file is: sums are kept for at most BUFFER keys, then written to a
    temporary CSV file and the buffer starts again; the database sums the file's lines when the import is
    stored (usage_hours_upsert). A file with hourly buckets has about one key per row (a million-row OpenAI
    export: a million hours), so holding them all, as objects, was most of such an import's memory and time."""

    BUFFER = 50_000

    def __init__(self) -> None:
        # (identity key, day, hour, model) → [requests, prompt tokens, output tokens, total tokens]
        self.buffer: dict[tuple, list[int]] = {}
        self.identity_numbers: dict[tuple, int] = {}  # identity key → its number in the spool file
        self.file: IO[str] | None = None
        self.lines = 0
        self._day_text: dict = {}  # day → "YYYY-MM-DD"
        self._model_text: dict[str, str] = {}  # model → its CSV cell

    def add(self, identity_key: tuple, row: UsageRow) -> None:
        """Count a row with an hour: its known requests (None: not reported), prompt tokens (input of all three
        kinds), output and total tokens."""
        prompt = row.input_tokens + row.cache_write_tokens + row.cache_read_tokens
        key = (identity_key, row.day, row.hour, row.model)
        figures = self.buffer.get(key)
        if figures is None:
            self.buffer[key] = [row.requests or 0, prompt, row.output_tokens, prompt + row.output_tokens]
            if len(self.buffer) >= self.BUFFER:
                self.flush()
        else:
            figures[0] += row.requests or 0
            figures[1] += prompt
            figures[2] += row.output_tokens
            figures[3] += prompt + row.output_tokens

    def flush(self) -> None:
        """Write the buffer out as CSV lines (identity number, day, hour, model, the four figures) and empty it."""
        if not self.buffer:
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
        numbers, days, models = self.identity_numbers, self._day_text, self._model_text
        lines = []
        for (identity_key, day, hour, model), (requests, prompt, output, total) in self.buffer.items():
            number = numbers.get(identity_key)
            if number is None:
                number = numbers[identity_key] = len(numbers)
            day_text = days.get(day)
            if day_text is None:
                day_text = days[day] = day.isoformat()
            model_text = models.get(model)
            if model_text is None:
                model_text = models[model] = csv_cell(model)
            lines.append(f"{number},{day_text},{hour},{model_text},{requests},{prompt},{output},{total}\n")
        self.file.write("".join(lines))
        self.lines += len(lines)
        self.buffer.clear()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def __enter__(self) -> HourSpool:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def __bool__(self) -> bool:
        return bool(self.buffer) or self.lines > 0


def csv_cell(text: str) -> str:
    """Text as one CSV cell: quoted (quotes doubled) when it holds a delimiter, quote or line break."""
    if any(character in text for character in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


HOUR_FIGURES = ("requests", "input_tokens", "output_tokens", "total_tokens")


def usage_hours_upsert(hours: HourSpool, identities: dict[tuple, Identity]) -> int:
    """Write the spooled hours: one UsageHour per (identity, day, hour, model), replacing a stored one (a
    re-import restates its hours, never adds to them). Returns how many were written. Call inside the
    import's transaction."""
    if not hours:
        return 0
    hours.flush()
    numbers = StagingTable("usage_hour_identity", [("number", "integer"), ("identity_id", "bigint")])
    numbers.load_rows((number, identities[key].pk) for key, number in hours.identity_numbers.items())
    stage = StagingTable(
        "usage_hour_stage",
        [("number", "integer"), ("day", "date"), ("hour", "smallint"), ("model", "varchar(200)")]
        + [(name, "bigint") for name in HOUR_FIGURES],
    )
    stage.load_csv(hours.file, not_null_text=["model"])
    columns = ["identity_id", "day", "hour", "model", *HOUR_FIGURES]
    written = stage.merge_into(
        UsageHour,
        columns,
        select=["i.identity_id", "s.day", "s.hour", "s.model", *(f"SUM(s.{name})" for name in HOUR_FIGURES)],
        joins=f"s JOIN {numbers.table} i ON i.number = s.number",
        group_by=["i.identity_id", "s.day", "s.hour", "s.model"],
        unique=["identity_id", "day", "hour", "model"],
        updated=HOUR_FIGURES,
    )
    stage.drop()
    numbers.drop()
    return written


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
