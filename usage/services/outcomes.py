"""What the imports store beside usage (issue 14): the hourly shape of usage where the source has hours
(UsageHour, read by the anomaly rules) and the outcomes a source reports (OutcomeRecord: commits, pull
requests, lines). Both are written in the import's transaction, keyed so a re-import replaces, never adds."""

from __future__ import annotations

import io
import tempfile
from array import array
from collections.abc import Callable, Collection, Iterable
from datetime import date
from typing import IO

from django.db import IntegrityError, connection, transaction
from psycopg import errors as psycopg_errors

from usage.models import Identity, ImportBatch, OutcomeRecord, UsageHour
from usage.parsers.base import SUMMED_HOURS, OutcomeRow, SummedBlock, UsageRow
from usage.services.bulk import BackgroundWrites, StagingTable, copy_csv, quote
from usage.services.identities import ResolvedIdentity

OUTCOME_FIGURES = ("commits", "pull_requests", "lines_added", "lines_accepted")
SOURCE_USAGE = ("tokens", "cost_usd")  # the source's own usage behind the outcomes, where it has one
BATCH = 2000


class HourSpool:
    """The import's hourly shape (UsageHour), summed per (identity, org-local day, hour, model).

    Memory stays flat however long the file is: sums are kept for at most BUFFER keys, then written out and the
    buffer starts again. Written out to a temporary CSV file, whose lines the database sums when the import is
    stored (usage_hours_upsert); or, once `merge_as_written` is called (PostgreSQL, the import's transaction
    already open), merged into UsageHour at once by a thread while the parse goes on. A file with hourly buckets
    has about one key per row (a million-row OpenAI export: a million hours), so holding them all, as objects,
    was most of such an import's memory and time."""

    BUFFER = 50_000

    def __init__(self) -> None:
        # (identity key, day, hour, model) → [requests, prompt tokens, output tokens, total tokens]
        self.buffer: dict[tuple, list[int]] = {}
        # identity key → its number in the spool file, or its Identity id when merging as written
        self.identity_numbers: dict[tuple, int] = {}
        self.file: IO[str] | None = None
        self.lines = 0
        self._day_text: dict = {}  # day → "YYYY-MM-DD"
        self._model_text: dict[str, str] = {}  # model → its CSV cell
        self._writes: BackgroundWrites | None = None
        self._identity_ids: Callable[[set], dict[tuple, int]] | None = None
        # When merging as written: the hours this import merged already, so a key written out again adds to what
        # the import stored rather than replacing it.
        self._merged: MergedHours | None = None

    def merge_as_written(self, writes: BackgroundWrites, identity_ids: Callable[[set], dict[tuple, int]]) -> None:
        """From now on each written-out buffer is sent to `writes` (whose work is a HoursMerge), not to
        the file. `identity_ids` gets or creates the identities of a set of keys, on the import's connection."""
        self._writes, self._identity_ids, self._merged = writes, identity_ids, MergedHours()

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
        """Write the buffer out as CSV lines (identity number or id, day, hour, model, the four figures) and empty
        it."""
        if not self.buffer:
            return
        numbers, days, models, merged = self.identity_numbers, self._day_text, self._model_text, self._merged
        self._number(key[0] for key in self.buffer)
        lines, again = [], []
        items = self.buffer.items()
        if merged is not None:  # to be copied: in the key's order (see add_summed)
            items = sorted(items, key=lambda item: (item[0][1], numbers[item[0][0]], *item[0][2:]))
        for (identity_key, day, hour, model), (requests, prompt, output, total) in items:
            number = numbers[identity_key]
            day_text = days.get(day)
            if day_text is None:
                day_text = days[day] = day.isoformat()
            model_text = models.get(model)
            if model_text is None:
                model_text = models[model] = csv_cell(model)
            line = f"{number},{day_text},{hour},{model_text},{requests},{prompt},{output},{total}\n"
            if merged is not None and merged.mark(number, day, model, 1 << hour):
                again.append(line)
            else:
                lines.append(line)
        self._write("".join(lines), "".join(again))
        self.lines += len(lines) + len(again)
        self.buffer.clear()

    def add_summed(self, block: SummedBlock) -> None:
        """A columnar reader's hours (SummedBlock.hours: already summed per key within the block), written out at
        once, as a full buffer is."""
        import pyarrow as pa

        self.flush()
        hours = block.hours
        if not hours.num_rows:
            return
        keys = block.identity_keys
        self._number(keys[code] for code in hours["identity"].unique().to_pylist())
        numbers = pa.array([self.identity_numbers.get(key, -1) for key in keys], pa.int64())
        hours = hours.set_column(0, "identity", numbers.take(hours["identity"]))
        if self._merged is None:  # spooled to a file, merged in the key's order at the end (usage_hours_upsert)
            first, again = hours, None
        else:
            first, again = self._split_merged(hours)
            # Copied straight into UsageHour (HoursMerge): in the key's order, each hour lands beside the one before
            # it in the index (a million hours in psql: 1.9 s copied in key order, 4.0 s in random order).
            first = first.sort_by([(name, "ascending") for name in HOUR_KEY_SUMMED])
        self._write(_csv_lines(first), _csv_lines(again) if again is not None else "")
        self.lines += hours.num_rows

    def settle(self) -> None:
        """Until the hours sent to be merged so far are written: the connection is the caller's again."""
        if self._writes is not None:
            self._writes.wait()

    def discard(self) -> None:
        """Forget everything spooled (the import reads its file again another way); the hours already merged are
        the caller's to roll back."""
        self.settle()
        self.buffer.clear()
        self.identity_numbers.clear()
        self.close()
        self.lines = 0
        if self._merged is not None:
            self._merged = MergedHours()

    def _number(self, identity_keys: Iterable[tuple]) -> None:
        """Give the identity keys not numbered yet their number: their Identity id when merging as written."""
        numbers = self.identity_numbers
        new = set(identity_keys).difference(numbers)
        if new and self._writes is not None:
            self._writes.wait()  # the connection is the thread's until then
            ids = self._identity_ids(new)
            hour_identities_lock(ids.values())
            numbers.update(ids)
        else:
            first = len(numbers)
            numbers.update((key, first + index) for index, key in enumerate(new))

    def _split_merged(self, hours):
        """The hours this import merges for the first time, and those it merged from an earlier block (added to
        what it stored): as `flush` tells them apart, a (identity, day, model) at a time."""
        import pyarrow as pa
        import pyarrow.compute as pc

        key = ["identity", "day", "model"]
        bit = pc.shift_left(pa.scalar(1, pa.int32()), hours["hour"].cast(pa.int32()))
        groups = (
            hours.select(key).append_column("bit", bit).group_by(key, use_threads=False).aggregate([("bit", "sum")])
        )
        merged, repeated = self._merged, []
        for number, day, model, bits in zip(*(groups[name].to_pylist() for name in (*key, "bit_sum")), strict=True):
            before = merged.mark(number, day, model, bits)
            if before:
                repeated.append((number, day, model, before))
        if not repeated:
            return hours, None
        numbers, days, models, bits = zip(*repeated, strict=True)
        again_bits = pa.table(
            {
                "identity": pa.array(numbers, pa.int64()),
                "day": pa.array(days, pa.date32()),
                "model": pa.array(models, pa.string()),
                "again": pa.array(bits, pa.int32()),
            }
        )
        joined = hours.join(again_bits, keys=key, join_type="left outer")
        shifted = pc.shift_right(pc.fill_null(joined["again"], 0), joined["hour"].cast(pa.int32()))
        again = pc.equal(pc.bit_wise_and(shifted, 1), 1)
        return joined.filter(pc.invert(again)), joined.filter(again)

    def _write(self, lines: str, again: str) -> None:
        if self._writes is not None:
            self._writes.send((lines, again))
        else:
            if self.file is None:
                self.file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
            self.file.write(lines + again)

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


class MergedHours:
    """The hours an import has merged, a bit per hour of each (identity, day, model). Kept as an array of day masks
    (4 bytes a day) per (identity, model), spanning the days it has: it grows like the import's identities and
    days, where a dict entry per (identity, day, model) took about 100 bytes (a 10M-row OpenAI export merges
    834,000 of them)."""

    def __init__(self) -> None:
        self._days: dict[tuple[int, str], tuple[int, array]] = {}  # (identity, model) → (first day's ordinal, masks)

    def mark(self, identity_id: int, day: date, model: str, hours: int) -> int:
        """Mark the `hours` (a bit each) of the identity's day and model merged; returns those merged before."""
        key, ordinal = (identity_id, model), day.toordinal()
        first, masks = self._days.get(key) or (ordinal, array("I"))
        if ordinal < first:
            masks = array("I", [0] * (first - ordinal)) + masks
            first = ordinal
        index = ordinal - first
        if index >= len(masks):
            masks.extend([0] * (index + 1 - len(masks)))
        before = masks[index]
        masks[index] = before | hours
        self._days[key] = first, masks
        return before & hours


def csv_cell(text: str) -> str:
    """Text as one CSV cell: quoted (quotes doubled) when it holds a delimiter, quote or line break."""
    if any(character in text for character in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_lines(hours) -> str:
    """A pyarrow table of hours as the spool's CSV lines (its columns in SUMMED_HOURS order; no header)."""
    import pyarrow.csv as pa_csv

    out = io.BytesIO()
    pa_csv.write_csv(hours.select(SUMMED_HOURS), out, write_options=pa_csv.WriteOptions(include_header=False))
    return out.getvalue().decode()


HOUR_FIGURES = ("requests", "input_tokens", "output_tokens", "total_tokens")


HOUR_STAGE = [("day", "date"), ("hour", "smallint"), ("model", "varchar(200)")] + [
    (name, "bigint") for name in HOUR_FIGURES
]
HOUR_KEY = ["day", "identity_id", "hour", "model"]  # the primary key's order: merged in it
HOUR_KEY_SUMMED = ["day", "identity", "hour", "model"]  # the same, in a columnar reader's hours (SUMMED_HOURS)


def usage_hours_upsert(hours: HourSpool, identities: dict[tuple, ResolvedIdentity]) -> int:
    """Write the spooled hours: one UsageHour per (identity, day, hour, model), replacing a stored one (a
    re-import restates its hours, never adds to them). Returns how many were written; none when the spool
    merged them as written. Call inside the import's transaction."""
    hours.flush()
    if hours.file is None:
        return 0
    numbers = StagingTable("usage_hour_identity", [("number", "integer"), ("identity_id", "bigint")])
    numbers.load_rows((number, identities[key].pk) for key, number in hours.identity_numbers.items())
    hour_identities_lock([identities[key].pk for key in hours.identity_numbers])
    stage = StagingTable("usage_hour_stage", [("number", "integer"), *HOUR_STAGE])
    stage.load_csv(hours.file, not_null_text=["model"])
    key = [f"{'i' if name == 'identity_id' else 's'}.{name}" for name in HOUR_KEY]
    written = stage.merge_into(
        UsageHour,
        [*HOUR_KEY, *HOUR_FIGURES],
        select=[*key, *(f"SUM(s.{name})" for name in HOUR_FIGURES)],
        joins=f"s JOIN {numbers.table} i ON i.number = s.number",
        group_by=key,
        unique=HOUR_KEY,
        updated=HOUR_FIGURES,
    )
    stage.drop()
    numbers.drop()
    return written


class HoursMerge:
    """The work of HourSpool.merge_as_written's thread: each written-out buffer (its keys unique, in key order) is
    written into UsageHour. A key the import writes for the first time replaces the stored hour (a re-import
    restates it); a key it merged before, from an earlier buffer, adds to it.

    Most of an import's hours are new, so a buffer of first-time keys is copied straight into the table, under a
    savepoint: a million hours take PostgreSQL less than half as long as through a staging table and
    `INSERT … ON CONFLICT` (docs/PERFORMANCE.md, Ingest). Where one of its keys is stored already, the copy fails
    on the primary key and the buffer is merged instead, and so are the import's later buffers: an import that
    meets stored hours is restating them (a re-import, a pull of days already pulled), and trying each buffer's
    copy first made a re-import of a million hours 1–2 s slower."""

    COLUMNS = [*HOUR_KEY, *HOUR_FIGURES]

    def __init__(self) -> None:
        self.stage = StagingTable("usage_hour_stage", [("identity_id", "bigint"), *HOUR_STAGE])
        self.copying = True  # until a copy meets a stored hour
        self.copied = self.merged = 0  # buffers

    def __call__(self, written: tuple[str, str]) -> None:
        first, adding = written
        if first and not (self.copying and self._copy(first)):
            self._merge(first, adding=False)
        if adding:
            self._merge(adding, adding=True)

    def _copy(self, lines: str) -> bool:
        """Copy the lines into UsageHour if none of their keys is stored; False (nothing written) if one is."""
        try:
            with transaction.atomic():
                copy_csv(
                    quote(UsageHour._meta.db_table), self.stage.columns, io.StringIO(lines), not_null_text=["model"]
                )
        except IntegrityError as error:
            if not isinstance(error.__cause__, psycopg_errors.UniqueViolation):
                raise
            self.copying = False
            return False
        self.copied += 1
        return True

    def _merge(self, lines: str, *, adding: bool) -> None:
        self.stage.load_csv(io.StringIO(lines), not_null_text=["model"])
        self.stage.merge_into(UsageHour, self.COLUMNS, unique=HOUR_KEY, updated=HOUR_FIGURES, adding=adding)
        self.stage.empty()
        self.merged += 1

    def drop(self) -> None:
        self.stage.drop()


def hour_identities_lock(identity_ids: Collection[int]) -> None:
    """What a foreign key's check of each hour would do, once per identity (UsageHour.identity has none in the
    database, for speed): the identities exist, and stay until the import commits (FOR KEY SHARE, as that check
    locks them)."""
    lock = " FOR KEY SHARE" if connection.vendor == "postgresql" else ""
    wanted = sorted(set(identity_ids))
    found: set[int] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(wanted), BATCH):
            part = wanted[start : start + BATCH]
            cursor.execute(
                f"SELECT id FROM {connection.ops.quote_name(Identity._meta.db_table)} "
                f"WHERE id IN ({', '.join(['%s'] * len(part))}){lock}",
                part,
            )
            found.update(row[0] for row in cursor.fetchall())
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise IntegrityError(
            f"usage hours name identities that do not exist: {missing[:10]} (deleted while the file was imported? "
            "import it again)"
        )


def outcome_key(identity_key: tuple, row: OutcomeRow) -> tuple:
    return (row.day, row.provider, row.source, identity_key)


def outcomes_upsert(outcomes: dict, identities: dict[tuple, ResolvedIdentity], batch: ImportBatch) -> int:
    """One OutcomeRecord per (day, provider, source, identity); a later import of the same key replaces it."""
    rows = [
        OutcomeRecord(
            day=day,
            provider=provider,
            source=source,
            identity_id=identities[identity_key].pk,
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
