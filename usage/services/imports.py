"""The import pipeline: store the raw export, queue it, then parse → resolve identities → upsert.

Guarantees (docs/architecture.md, Reliability rules): the raw bytes are stored before parsing; the database side of an
import is one transaction, so a failed or killed import leaves no partial totals; re-importing a file (or an
overlapping export) upserts on the natural key and never double counts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import IO
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from usage import queue
from usage.models import (
    CostSource,
    CurrencyRate,
    ImportBatch,
    ImportSource,
    ImportStatus,
    Person,
    ProviderConnection,
    UsageRecord,
)
from usage.parsers.base import (
    DirectoryEntry,
    OutcomeRow,
    ParseContext,
    ParseError,
    RowError,
    Sample,
    Skipped,
    UsageRow,
    looks_like_json,
)
from usage.parsers.payload import open_text, read_sample
from usage.parsers.registry import UnknownFormat, format_detect, format_get
from usage.services.identities import IdentityKey, identities_resolve
from usage.services.outcomes import hour_add, outcome_key, outcomes_upsert, usage_hours_upsert
from usage.services.pricing import PriceBook
from usage.services.standings import standings_mark_days

logger = logging.getLogger(__name__)

MAX_LISTED_ERRORS = 1000
PROGRESS_EVERY_ROWS = 50_000
UPSERT_BATCH = 2000


class ImportRejected(Exception):
    """The export cannot be stored at all (too large, empty, unknown requested format)."""


# --- storing -----------------------------------------------------------------------------------------------


def import_batch_create(
    *,
    file: IO[bytes],
    name: str,
    source: str = ImportSource.UPLOAD,
    user=None,
    requested_format: str = "",
    import_good_rows: bool = False,
    attribute_to: Person | None = None,
    connection=None,
    queue: bool = True,
) -> ImportBatch:
    """Store the raw export and (unless queue=False) queue it for the worker once the transaction commits."""
    if requested_format:
        try:
            format_get(requested_format)
        except UnknownFormat as error:
            raise ImportRejected(f"{name}: {error}") from None
    limit = settings.TOKENBOARD_UPLOAD_MAX_BYTES
    digest = hashlib.sha256()
    size = 0
    file.seek(0)
    for chunk in iter(lambda: file.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
        if size > limit:
            raise ImportRejected(
                f"{name}: the file is larger than the upload limit of {limit:,} bytes; export a shorter date range "
                "or compress it (gzip/zip), or raise TOKENBOARD_UPLOAD_MAX_BYTES"
            )
    if size == 0:
        raise ImportRejected(f"{name}: the file is empty")
    file.seek(0)
    batch = ImportBatch(
        source=source,
        original_name=os.path.basename(name)[:255],
        sha256=digest.hexdigest(),
        size_bytes=size,
        requested_format=requested_format,
        import_good_rows=import_good_rows,
        attribute_to=attribute_to,
        connection=connection,
        started_by=user if getattr(user, "is_authenticated", False) else None,
    )
    batch.raw_file.save(os.path.basename(name) or "export", File(file), save=False)
    batch.save()
    if queue:
        import_batch_queue(batch)
    return batch


def import_batch_queue(batch: ImportBatch) -> None:
    # The batch is stored and stays "queued" if the broker is down; `import_usage --requeue` re-sends it.
    queue.import_queue_on_commit(batch.pk)


def import_batch_retry(batch: ImportBatch) -> ImportBatch:
    """Run a finished import again from its stored raw file (after a fix, a price or time-zone change)."""
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.QUEUED, claim_id="")
    batch.refresh_from_db()
    import_batch_queue(batch)
    return batch


def imports_reprocess_all() -> int:
    """Re-queue every finished (succeeded or failed) import from its stored raw file, oldest first, after a
    price-table or time-zone change. Creation order matters: where two exports restate the same day, the
    newer one must be written last. Messages are sent in this order; workers running imports in
    parallel may still finish two of them out of order.
    Queued and running imports are left alone. Returns how many were re-queued."""
    finished = ImportBatch.objects.filter(status__in=[ImportStatus.SUCCEEDED, ImportStatus.FAILED]).exclude(raw_file="")
    count = 0
    for batch in finished.order_by("created_at", "pk"):
        import_batch_retry(batch)
        count += 1
    return count


def import_rows_estimate(path: str, sample: Sample) -> int | None:
    """About how many rows an export holds, cheaply, for the progress bar: a plain CSV's line count minus
    the header, a Parquet file's row count from its footer. None for JSON (one line may hold a whole page)
    and compressed files, where counting would cost a full read."""
    with open(path, "rb") as raw:
        magic = raw.read(4)
        if magic == b"PAR1":
            import pyarrow.parquet as pq

            try:
                return pq.ParquetFile(path).metadata.num_rows
            except (OSError, ValueError):  # unreadable (ArrowInvalid is a ValueError): the parser says so
                return None
        if magic[:2] == b"\x1f\x8b" or magic == b"PK\x03\x04" or looks_like_json(sample):
            return None
        raw.seek(0)
        lines, last = 0, b"\n"
        for chunk in iter(lambda: raw.read(1024 * 1024), b""):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1  # a last line without a newline
    return max(lines - 1, 0)


# --- processing --------------------------------------------------------------------------------------------


@dataclass(slots=True)  # one per record, updated for every row: slots make the updates cheaper
class Accumulated:
    input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    billed_cost: Decimal = Decimal(0)
    has_billed_cost: bool = False
    cost_estimated_by_vendor: bool = False
    has_unbilled_rows: bool = False


RecordKey = tuple  # (day, provider, account, identity_key, model, usage_kind)


def import_batch_process(batch_id: int, *, claim_id: str | None = None) -> ImportBatch | None:
    """Process a stored import. Safe to run twice: only the claimant runs it, and a redelivered message
    (same claim id) may resume a run whose worker died. Returns None if another run owns it."""
    claim_id = claim_id or f"local-{uuid.uuid4().hex}"
    claimed = ImportBatch.objects.filter(
        Q(status=ImportStatus.QUEUED) | Q(status=ImportStatus.RUNNING, claim_id=claim_id), pk=batch_id
    ).update(status=ImportStatus.RUNNING, claim_id=claim_id, started_at=timezone.now(), finished_at=None)
    if not claimed:
        logger.info("import %s is not queued for this run (claim %s); skipping", batch_id, claim_id)
        return None
    batch = ImportBatch.objects.get(pk=batch_id)
    try:
        outcome = _parse(batch)
        _store(batch, outcome, claim_id)
    except ParseError as error:
        where = f"line {error.line}: " if error.line else ""
        _fail(batch, f"{batch.original_name}: {where}{error.reason}", [{"line": error.line, "reason": error.reason}])
    except _RowsRejected as rejected:
        _fail(batch, rejected.summary, rejected.errors, counts=rejected.counts)
    except Exception as error:
        logger.exception("import %s failed unexpectedly", batch_id)
        _fail(batch, f"{batch.original_name}: internal error while importing ({type(error).__name__}: {error})", [])
        raise
    batch.refresh_from_db()
    return batch


@dataclass
class _Outcome:
    format_name: str
    records: dict[RecordKey, Accumulated] = field(default_factory=dict)
    directory: dict[IdentityKey, tuple[str, str]] = field(default_factory=dict)
    identity_emails: dict[IdentityKey, str] = field(default_factory=dict)
    identity_labels: dict[IdentityKey, str] = field(default_factory=dict)
    rows_read: int = 0
    rows_imported: int = 0
    rows_skipped: int = 0
    rows_rejected: int = 0
    errors: list[dict] = field(default_factory=list)
    hours: dict = field(default_factory=dict)  # usage.services.outcomes.hour_add
    outcomes: dict = field(default_factory=dict)  # outcome_key → OutcomeRow


class _RowsRejected(Exception):
    def __init__(self, summary: str, errors: list[dict], counts: dict):
        self.summary, self.errors, self.counts = summary, errors, counts


def parse_context() -> ParseContext:
    return ParseContext(
        tz=ZoneInfo(settings.TIME_ZONE),
        attribution_tag_keys=list(settings.TOKENBOARD_ATTRIBUTION_TAG_KEYS),
        usd_rates={r.currency.upper(): r.usd_per_unit for r in CurrencyRate.objects.all()},
    )


def _parse(batch: ImportBatch) -> _Outcome:
    path = batch.raw_file.path
    max_bytes = settings.TOKENBOARD_DECOMPRESSED_MAX_BYTES
    sample = Sample(batch.original_name, read_sample(path, max_decompressed=max_bytes))
    if not sample.text.strip():
        raise ParseError("the file is empty")
    try:
        fmt = format_get(batch.requested_format) if batch.requested_format else format_detect(sample)
    except UnknownFormat as error:
        raise ParseError(str(error)) from None
    # Progress: rows_read grows every PROGRESS_EVERY_ROWS rows; a cheap line count gives the bar its end.
    ImportBatch.objects.filter(pk=batch.pk).update(
        detected_format=fmt.name, rows_read=0, rows_total=import_rows_estimate(path, sample)
    )
    ctx = parse_context()
    if batch.attribute_to_id:
        ctx.attribute_to_email = batch.attribute_to.email
    elif batch.started_by_id and hasattr(batch.started_by, "person"):
        ctx.attribute_to_email = batch.started_by.person.email
    if batch.requested_format.startswith("generic_csv:"):
        ctx.column_mapping = _column_mapping(batch.requested_format.split(":", 1)[1])

    outcome = _Outcome(fmt.name)
    records = outcome.records
    # The two counters every row moves are locals (copied to the outcome below): this loop runs once per
    # row, and attribute updates on the outcome were a measurable share of a large import's time.
    rows_read = rows_imported = 0
    with open_text(path, max_decompressed=max_bytes) as (stream, _encoding):
        for item in _guarded(fmt.parse(stream, ctx)):
            if isinstance(item, UsageRow):
                rows_read += 1
                rows_imported += 1
                identity_key = (item.provider, item.identity_kind, item.identity_value)
                key = (item.day, item.provider, item.account, identity_key, item.model, item.usage_kind)
                acc = records.get(key)
                if acc is None:
                    oversized = _oversized_field(item)  # checked once per key, not per row
                    if oversized:
                        rows_imported -= 1
                        outcome.rows_rejected += 1
                        if len(outcome.errors) < MAX_LISTED_ERRORS:
                            outcome.errors.append({"line": item.line, "reason": oversized})
                        continue
                    acc = records[key] = Accumulated()
                acc.input_tokens += item.input_tokens
                acc.cache_write_tokens += item.cache_write_tokens
                acc.cache_read_tokens += item.cache_read_tokens
                acc.output_tokens += item.output_tokens
                acc.requests += item.requests
                if item.cost_usd is None:
                    acc.has_unbilled_rows = True
                else:
                    acc.billed_cost += item.cost_usd
                    acc.has_billed_cost = True
                    acc.cost_estimated_by_vendor |= item.cost_estimated
                if item.identity_email:
                    outcome.identity_emails[identity_key] = item.identity_email
                if item.identity_label:
                    outcome.identity_labels[identity_key] = item.identity_label
                if item.hour is not None:
                    hour_add(outcome.hours, identity_key, item)
            elif isinstance(item, OutcomeRow):
                rows_read += 1
                rows_imported += 1
                identity_key = (item.provider, item.identity_kind, item.identity_value)
                outcome.outcomes[outcome_key(identity_key, item)] = item
                if item.identity_email:
                    outcome.identity_emails[identity_key] = item.identity_email
            elif isinstance(item, DirectoryEntry):
                rows_read += 1
                rows_imported += 1
                outcome.directory[(item.provider, item.kind, item.value)] = (item.email, item.label)
            elif isinstance(item, Skipped):
                rows_read += 1
                outcome.rows_skipped += 1
            elif isinstance(item, RowError):
                rows_read += 1
                outcome.rows_rejected += 1
                if len(outcome.errors) < MAX_LISTED_ERRORS:
                    outcome.errors.append({"line": item.line, "reason": item.reason})
            if rows_read % PROGRESS_EVERY_ROWS == 0:
                ImportBatch.objects.filter(pk=batch.pk).update(rows_read=rows_read)
    outcome.rows_read, outcome.rows_imported = rows_read, rows_imported
    rejected = outcome.rows_rejected
    if rejected and not batch.import_good_rows:
        first = outcome.errors[0]
        raise _RowsRejected(
            f"{batch.original_name}: {rejected:,} bad row(s), file rejected whole (first: line {first['line']}: "
            f"{first['reason']}). Fix the file, or re-import choosing 'import the good rows'.",
            outcome.errors,
            {"rows_read": outcome.rows_read, "rows_rejected": rejected, "rows_skipped": outcome.rows_skipped},
        )
    if outcome.rows_imported == 0 and not rejected and outcome.rows_skipped == 0:
        raise ParseError(f"no usage rows found (read as {fmt.label})")
    return outcome


def _column_mapping(name: str) -> dict[str, str]:
    """A saved ColumnMapping's columns, with its provider as the default "provider" constant."""
    from usage.models import ColumnMapping

    mapping = ColumnMapping.objects.filter(name=name).first()
    if mapping is None:
        raise ParseError(f"no saved column mapping named {name!r}")
    return {"provider": mapping.provider, **(mapping.columns or {})}


FIELD_LIMITS = (("model", 200), ("account", 255), ("identity_value", 500), ("usage_kind", 50))


def _oversized_field(row: UsageRow) -> str | None:
    """The database's column limits, as a row error rather than a failed transaction."""
    for name, limit in FIELD_LIMITS:
        value = getattr(row, name)
        if len(value) > limit:
            return f"{name} is longer than {limit} characters ({value[:40]}…)"
    return None


def _guarded(items: Iterator) -> Iterator:
    """Turn a parser's stray exception into a clear ParseError rather than a crash with no line."""
    try:
        yield from items
    except ParseError:
        raise
    except UnicodeDecodeError as error:
        raise ParseError(f"text encoding changes part-way through the file ({error.reason})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ParseError(f"unreadable content ({type(error).__name__}: {error})") from None


def _store(batch: ImportBatch, outcome: _Outcome, claim_id: str) -> None:
    prices = PriceBook()
    with transaction.atomic():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != ImportStatus.RUNNING or locked.claim_id != claim_id:
            logger.warning("import %s was taken over by another run; dropping this run's results", batch.pk)
            return
        identity_keys = {key[3] for key in outcome.records} | set(outcome.directory)
        identity_keys |= {key[3] for key in outcome.outcomes}
        emails = dict(outcome.identity_emails)
        labels = dict(outcome.identity_labels)
        for key, (email, label) in outcome.directory.items():
            emails[key] = email
            if label:
                labels[key] = label
        identities = identities_resolve(identity_keys, emails=emails, labels=labels)

        now = timezone.now()

        def record_rows() -> Iterator[tuple]:
            # Generated one by one (in RECORD_FIELDS order) and streamed to the database: a large file's
            # records are never all held as model instances at once.
            for (day, provider, account, identity_key, model, usage_kind), acc in outcome.records.items():
                yield (
                    day,
                    provider,
                    account,
                    identities[identity_key].pk,
                    model,
                    usage_kind,
                    acc.input_tokens,
                    acc.cache_write_tokens,
                    acc.cache_read_tokens,
                    acc.output_tokens,
                    acc.input_tokens + acc.cache_write_tokens + acc.cache_read_tokens + acc.output_tokens,
                    acc.requests,
                    *_cost_of(prices, day, provider, model, acc),
                    batch.pk,
                    now,
                )

        records_written = usage_records_upsert(record_rows())
        usage_hours_upsert(outcome.hours, identities)
        records_written += outcomes_upsert(outcome.outcomes, identities, locked)
        # Outcome days too: titles read outcomes, and are cached until their window is recomputed.
        days = [key[0] for key in outcome.records] + [key[0] for key in outcome.outcomes]
        standings_mark_days(days)
        touched_people = {identities[key[3]].person_id for key in outcome.records} - {None}
        locked.detected_format = outcome.format_name
        locked.status = ImportStatus.SUCCEEDED
        locked.rows_read = outcome.rows_read
        locked.rows_total = outcome.rows_read
        locked.rows_imported = outcome.rows_imported
        locked.rows_skipped = outcome.rows_skipped
        locked.rows_rejected = outcome.rows_rejected
        locked.records_written = records_written
        locked.errors = outcome.errors
        locked.error_summary = ""
        locked.period_start = min(days) if days else None
        locked.period_end = max(days) if days else None
        locked.people_affected = len(touched_people)
        locked.finished_at = timezone.now()
        locked.save()


def _cost_of(prices: PriceBook, day, provider: str, model: str, acc: Accumulated) -> tuple[Decimal, str]:
    """Billed cost where the file has it, else the price table's estimate, else none."""
    if acc.has_billed_cost:
        return acc.billed_cost, CostSource.ESTIMATED if acc.cost_estimated_by_vendor else CostSource.BILLED
    estimate = prices.estimate(
        provider=provider,
        model=model,
        day=day,
        input_tokens=acc.input_tokens,
        cache_read_tokens=acc.cache_read_tokens,
        cache_write_tokens=acc.cache_write_tokens,
        output_tokens=acc.output_tokens,
    )
    return (estimate, CostSource.ESTIMATED) if estimate is not None else (Decimal(0), CostSource.NONE)


NATURAL_KEY = ("day", "provider", "account", "identity", "model", "usage_kind")
UPDATED_FIELDS = (
    "input_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "output_tokens",
    "total_tokens",
    "requests",
    "cost_usd",
    "cost_source",
    "import_batch",
    "updated_at",
)
RECORD_FIELDS = (*NATURAL_KEY, *UPDATED_FIELDS)


def usage_records_upsert(rows: Iterable[tuple]) -> int:
    """Insert or update UsageRecords on the natural key from tuples in RECORD_FIELDS order (foreign keys as
    ids); returns how many. Call inside the import's transaction.

    On PostgreSQL the rows are streamed with COPY into a temporary table, then merged with one
    INSERT … ON CONFLICT DO UPDATE: bulk_create spent ~150 µs per record preparing values in Python, which
    made the upsert, not the database, the slowest step of a large import (docs/PERFORMANCE.md).
    Elsewhere (SQLite) it is bulk_create in batches, with the same conflict handling."""
    fields = [UsageRecord._meta.get_field(name) for name in RECORD_FIELDS]
    if connection.vendor != "postgresql":
        written = 0
        names = [model_field.attname for model_field in fields]
        rows = iter(rows)
        while chunk := list(islice(rows, UPSERT_BATCH)):
            UsageRecord.objects.bulk_create(
                [UsageRecord(**dict(zip(names, row, strict=True))) for row in chunk],
                update_conflicts=True,
                unique_fields=list(NATURAL_KEY),
                update_fields=list(UPDATED_FIELDS),
            )
            written += len(chunk)
        return written
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model_field.column) for model_field in fields)
    key = ", ".join(quote(UsageRecord._meta.get_field(name).column) for name in NATURAL_KEY)
    updates = ", ".join(
        f"{quote(column)} = EXCLUDED.{quote(column)}"
        for column in (UsageRecord._meta.get_field(name).column for name in UPDATED_FIELDS)
    )
    table = quote(UsageRecord._meta.db_table)
    written = 0
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pg_temp.usage_upsert")
        cursor.execute(f"CREATE TEMPORARY TABLE usage_upsert AS SELECT {columns} FROM {table} WITH NO DATA")
        with cursor.cursor.copy(f"COPY usage_upsert ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM usage_upsert "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        cursor.execute("DROP TABLE usage_upsert")
    return written


def _fail(batch: ImportBatch, summary: str, errors: list[dict], counts: dict | None = None) -> None:
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportStatus.FAILED,
        error_summary=summary,
        errors=errors[:MAX_LISTED_ERRORS],
        finished_at=timezone.now(),
        **(counts or {}),
    )


def data_as_of():
    """When the newest data arrived: the last successful import, or the last successful provider pull (a pull
    that found nothing new creates no import but still proves the data is current)."""
    latest_import = ImportBatch.objects.filter(status=ImportStatus.SUCCEEDED).aggregate(latest=Max("finished_at"))[
        "latest"
    ]
    latest_pull = ProviderConnection.objects.aggregate(latest=Max("last_success_at"))["latest"]
    return max(filter(None, (latest_import, latest_pull)), default=None)


def import_summary(batch: ImportBatch) -> str:
    if batch.status == ImportStatus.SUCCEEDED:
        period = f"{batch.period_start} to {batch.period_end}" if batch.period_start else "no dated usage"
        return (
            f"import #{batch.pk} {batch.original_name}: succeeded as {batch.detected_format}; {period}; "
            f"rows read {batch.rows_read:,}, imported {batch.rows_imported:,}, skipped {batch.rows_skipped:,}, "
            f"rejected {batch.rows_rejected:,}; {batch.records_written:,} daily records; {batch.people_affected} people"
        )
    if batch.status == ImportStatus.FAILED:
        return f"import #{batch.pk} failed: {batch.error_summary}"
    return f"import #{batch.pk} {batch.original_name}: {batch.status}"
