"""The import pipeline: store the raw export, queue it, then parse → resolve identities → upsert.

Guarantees (docs/architecture.md, Reliability rules): the raw bytes are stored before parsing; the database side of an
import is one transaction, so a failed or killed import leaves no partial totals; a newer export of a scope
(provider, account, day, format) replaces what older exports said about it, and an older one never undoes it;
a running import beats, so one whose worker died is requeued by the sweep.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import chain
from typing import IO
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files import File
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Max, Q, QuerySet
from django.db.models.functions import Coalesce
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
    Format,
    NotColumnar,
    OutcomeRow,
    ParseContext,
    ParseError,
    RowError,
    Sample,
    Skipped,
    SummedBlock,
    UsageRow,
    looks_like_json,
)
from usage.parsers.columnar import read_ahead
from usage.parsers.payload import open_guarded, open_text, read_sample
from usage.parsers.registry import UnknownFormat, format_detect, format_get
from usage.services.audit import audit_record
from usage.services.bulk import BackgroundWrites, staged_upsert
from usage.services.identities import IdentityKey, identities_get_or_create, identities_resolve
from usage.services.outcomes import HoursMerge, HourSpool, outcome_key, outcomes_upsert, usage_hours_upsert
from usage.services.pricing import PriceBook
from usage.services.records import Accumulated, RecordKey, RecordPair, RecordSpool
from usage.services.standings import standings_mark_usage

logger = logging.getLogger(__name__)

MAX_LISTED_ERRORS = 1000
PROGRESS_EVERY_ROWS = 50_000


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
        format_limit = ImportBatch._meta.get_field("requested_format").max_length
        if len(requested_format) > format_limit:
            raise ImportRejected(f"{name}: the format name is longer than {format_limit} characters")
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
    batch.raw_file.save(stored_file_name(name), File(file), save=False)
    try:
        batch.save()
    except Exception:
        batch.raw_file.delete(save=False)  # no stored file without the import that names it
        raise
    if source != ImportSource.API:  # scheduled pulls are the connection's, not someone's upload
        audit_record("import.upload", target=batch, data={"source": source, "bytes": size, "format": requested_format})
    if queue:
        import_batch_queue(batch)
        if not transaction.get_connection().in_atomic_block:  # sent already (on commit): did it reach the broker?
            batch.refresh_from_db(fields=["dispatched_at"])
    return batch


STORED_NAME_CHARS = 100


def stored_file_name(name: str) -> str:
    """The raw file's name on disk: the upload's name cut to STORED_NAME_CHARS (keeping its extensions), so a
    long name plus the storage's prefix and collision suffix stays under the file system's 255 bytes. The
    full name is kept in original_name."""
    base = os.path.basename(name) or "export"
    if len(base) <= STORED_NAME_CHARS:
        return base
    stem, dot, extensions = base.partition(".")
    extensions = (dot + extensions)[-20:]
    return stem[: STORED_NAME_CHARS - len(extensions)] + extensions


def import_batch_queue(batch: ImportBatch) -> None:
    # The batch is stored and stays "queued" if the broker is down; the sweep re-sends it (dispatched_at).
    queue.import_queue_on_commit(batch.pk)


def import_batch_retry(batch: ImportBatch) -> ImportBatch:
    """Run an import again from its stored raw file (after a fix, a price or time-zone change, or when it is
    stuck running). Safe while a run is still going: the new claim makes that run drop its results."""
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportStatus.QUEUED, claim_id="", dispatched_at=None, attempts=0
    )
    batch.refresh_from_db()
    audit_record("import.retry", target=batch)
    import_batch_queue(batch)
    return batch


def imports_reprocess_all() -> int:
    """Re-queue every import that has a stored raw file (finished, failed or stuck running) after a
    price-table or time-zone change. Order does not matter: where two exports restate the same scope, the
    newer export wins whichever runs last. Queued imports are left alone. Returns how many were re-queued."""
    batches = ImportBatch.objects.exclude(status=ImportStatus.QUEUED).exclude(raw_file="")
    count = 0
    for batch in batches.order_by("created_at", "pk"):
        import_batch_retry(batch)
        count += 1
    audit_record("import.reprocess_all", summary=f"{count} imports", data={"imports": count})
    return count


def imports_release_stuck() -> list[ImportBatch]:
    """Running imports whose heartbeat stopped for TOKENBOARD_IMPORT_STALE_SECONDS (their worker was killed)
    go back to queued; one that has used TOKENBOARD_IMPORT_MAX_ATTEMPTS runs fails with a message instead.
    Returns the batches released (queued again, not yet sent)."""
    stale_before = timezone.now() - timedelta(seconds=settings.TOKENBOARD_IMPORT_STALE_SECONDS)
    released = []
    with transaction.atomic():
        # A batch being stored holds its row lock: its worker is alive, so it is skipped.
        stale = (
            ImportBatch.objects.select_for_update(skip_locked=True)
            .filter(status=ImportStatus.RUNNING)
            .filter(Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at=None, started_at__lt=stale_before))
        )
        for batch in stale.order_by("created_at", "pk"):
            if batch.attempts >= settings.TOKENBOARD_IMPORT_MAX_ATTEMPTS:
                logger.error("import %s stopped %s times without finishing; failing it", batch.pk, batch.attempts)
                summary = (
                    f"{batch.original_name}: the import stopped {batch.attempts} times without finishing (its "
                    "worker was killed or lost, e.g. out of memory); check the worker's log, then retry it"
                )
                _fail(batch, summary, [], claim_id=batch.claim_id)
                continue
            logger.warning("import %s: no heartbeat since %s; queuing it again", batch.pk, batch.heartbeat_at)
            ImportBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.QUEUED, claim_id="", dispatched_at=None)
            released.append(batch)
    return released


def imports_sweep() -> tuple[int, int]:
    """What beat runs every minute (usage.sweep_imports): release stuck running imports, and send every queued
    import whose message never reached the broker (it was down at upload, or the import was just released).
    Returns (released, sent)."""
    released = imports_release_stuck()
    grace = timezone.now() - timedelta(seconds=settings.TOKENBOARD_IMPORT_HEARTBEAT_SECONDS)
    # Not the last few seconds' uploads: their own on-commit send may still be on its way.
    undispatched = ImportBatch.objects.filter(status=ImportStatus.QUEUED, dispatched_at=None).filter(
        Q(created_at__lt=grace) | Q(pk__in=[batch.pk for batch in released])
    )
    sent = 0
    for batch in undispatched.order_by("created_at", "pk"):
        import_batch_queue(batch)
        sent += 1
    return len(released), sent


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


def import_batch_process(batch_id: int, *, claim_id: str | None = None) -> ImportBatch | None:
    """Process a stored import. Safe to run twice: only the claimant runs it, and a redelivered message
    (same claim id) may resume a run whose worker died. Returns None if another run owns it."""
    claim_id = claim_id or f"local-{uuid.uuid4().hex}"
    now = timezone.now()
    claimed = ImportBatch.objects.filter(
        Q(status=ImportStatus.QUEUED) | Q(status=ImportStatus.RUNNING, claim_id=claim_id), pk=batch_id
    ).update(
        status=ImportStatus.RUNNING,
        claim_id=claim_id,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        logger.info("import %s is not queued for this run (claim %s); skipping", batch_id, claim_id)
        return None
    batch = ImportBatch.objects.get(pk=batch_id)
    try:
        with (
            _Heartbeat(batch_id, claim_id) as heartbeat,
            HourSpool() as hours,
            RecordSpool() as records,
        ):  # the spools' files go whatever happens
            reading = _reading(batch)
            if _pipelined():
                _parse_and_store(batch, reading, claim_id, records, hours, heartbeat)
            else:
                _parse_then_store(batch, reading, claim_id, records, hours)
    except ParseError as error:
        where = f"line {error.line}: " if error.line else ""
        errors = [{"line": error.line, "reason": error.reason}]
        _fail(batch, f"{batch.original_name}: {where}{error.reason}", errors, claim_id=claim_id)
    except _RowsRejected as rejected:
        _fail(batch, rejected.summary, rejected.errors, counts=rejected.counts, claim_id=claim_id)
    except (OperationalError, InterfaceError) as error:
        # The database connection broke (restart, failover, pg_terminate_backend): nothing was stored (one
        # transaction), the file is fine, so run it again on a fresh connection rather than fail it.
        _drop_broken_connection()
        logger.warning("import %s lost its database connection (%s); requeuing it", batch_id, error)
        _requeue_after_lost_connection(batch, claim_id, error)
        return None
    except Exception as error:
        logger.exception("import %s failed unexpectedly", batch_id)
        _drop_broken_connection()
        summary = f"{batch.original_name}: internal error while importing ({type(error).__name__}: {error})"
        _fail(batch, summary, [], claim_id=claim_id)
        raise
    batch.refresh_from_db()
    return batch


def _drop_broken_connection() -> None:
    """After a database error, close the connection if it is dead so the next query opens a fresh one (the
    error handler must not fail again on the connection that just broke). Not inside an outer transaction,
    which owns the connection."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def _requeue_after_lost_connection(batch: ImportBatch, claim_id: str, error: Exception) -> None:
    """Queue the import again for another run, or fail it once it has used its attempts."""
    attempts = ImportBatch.objects.filter(pk=batch.pk).values_list("attempts", flat=True).first() or 0
    if attempts >= settings.TOKENBOARD_IMPORT_MAX_ATTEMPTS:
        summary = (
            f"{batch.original_name}: the database connection was lost {attempts} times while importing "
            f"({type(error).__name__}); nothing was stored. Retry once the database is stable."
        )
        _fail(batch, summary, [], claim_id=claim_id)
        return
    requeued = ImportBatch.objects.filter(pk=batch.pk, claim_id=claim_id).update(
        status=ImportStatus.QUEUED, claim_id="", dispatched_at=None
    )
    if requeued:
        import_batch_queue(batch)


class _Heartbeat:
    """Marks a running import alive every TOKENBOARD_IMPORT_HEARTBEAT_SECONDS from a thread (with its own
    database connection), for as long as the worker process lives: the sweep requeues an import whose
    heartbeat stopped, so a killed worker's import resumes in minutes, not after the broker's timeout.
    It also writes the progress of a pipelined import (`progress`), whose own connection is in its transaction,
    where the progress would be seen by no one."""

    def __init__(self, batch_id: int, claim_id: str):
        self.batch_id, self.claim_id = batch_id, claim_id
        self.stopped = threading.Event()
        self.woken = threading.Event()  # set to stop, or to write new progress now
        self.rows_read: int | None = None
        self.thread = threading.Thread(target=self._beat, name=f"import-{batch_id}-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.woken.set()
        self.thread.join()

    def progress(self, rows_read: int) -> None:
        self.rows_read = rows_read
        self.woken.set()

    def _beat(self) -> None:
        try:
            while True:
                self.woken.wait(settings.TOKENBOARD_IMPORT_HEARTBEAT_SECONDS)
                self.woken.clear()
                if self.stopped.is_set():
                    break
                progress = {} if self.rows_read is None else {"rows_read": self.rows_read}
                try:
                    with transaction.atomic():
                        # skip_locked: while the import is being stored its row is locked, and it is alive.
                        running = ImportBatch.objects.select_for_update(skip_locked=True).filter(
                            pk=self.batch_id, claim_id=self.claim_id, status=ImportStatus.RUNNING
                        )
                        if running.exists():
                            running.update(heartbeat_at=timezone.now(), **progress)
                except (OperationalError, InterfaceError):
                    logger.warning("import %s: heartbeat failed; trying again", self.batch_id, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection


@dataclass
class _Outcome:
    format_name: str
    records: RecordSpool
    hours: HourSpool
    directory: dict[IdentityKey, tuple[str, str, str]] = field(default_factory=dict)  # (email, label, owner)
    identity_emails: dict[IdentityKey, str] = field(default_factory=dict)
    identity_labels: dict[IdentityKey, str] = field(default_factory=dict)
    rows_read: int = 0
    rows_imported: int = 0
    rows_skipped: int = 0
    rows_rejected: int = 0
    errors: list[dict] = field(default_factory=list)
    exported_at: datetime | None = None
    personal: bool = False
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


@dataclass
class _Reading:
    """How a stored export is read: decided (and its format shown on the import's page) before the parse."""

    path: str
    format: Format
    ctx: ParseContext
    limits: dict


def _reading(batch: ImportBatch) -> _Reading:
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
    limits = {
        "max_decompressed": max_bytes,
        "max_line": settings.TOKENBOARD_MAX_LINE_BYTES,
        "max_blank": settings.TOKENBOARD_MAX_BLANK_LINES,
    }
    return _Reading(path, fmt, ctx, limits)


def _parse(
    batch: ImportBatch, reading: _Reading, records: RecordSpool, hours: HourSpool, progress: Callable[[int], None]
) -> _Outcome:
    """Read every row into the outcome (daily records and hours into their spools); `progress` is given the rows
    read as the parse goes. Makes no query of its own (the spool's thread may, _parse_and_store)."""
    outcome = _parse_summed(batch, reading, records, hours, progress) or _parse_rows(reading, records, hours, progress)
    fmt, ctx = reading.format, reading.ctx
    outcome.exported_at, outcome.personal = ctx.exported_at, ctx.personal
    rejected = outcome.rows_rejected
    if rejected and not batch.import_good_rows:
        first = outcome.errors[0]
        raise _RowsRejected(
            f"{batch.original_name}: {rejected:,} bad row(s), file rejected whole (first: {import_error_text(first)}). "
            "Fix the file, or re-import choosing 'import the good rows'.",
            outcome.errors,
            {"rows_read": outcome.rows_read, "rows_rejected": rejected, "rows_skipped": outcome.rows_skipped},
        )
    if outcome.rows_imported == 0 and not rejected and outcome.rows_skipped == 0:
        raise ParseError(f"no usage rows found (read as {fmt.label})")
    return outcome


def _parse_summed(
    batch: ImportBatch,
    reading: _Reading,
    records: RecordSpool,
    hours: HourSpool,
    progress: Callable[[int], None],
) -> _Outcome | None:
    """The outcome from the format's columnar reader (Format.summed: a block of rows summed at a time), or None
    where it has none or the file is not for it (NotColumnar): then nothing of this attempt is kept, and the file is
    read row by row. The hours it merged already (_parse_and_store) are rolled back to a savepoint."""
    if not settings.TOKENBOARD_IMPORT_COLUMNAR:
        return None
    fmt = reading.format
    outcome = _Outcome(fmt.name, records, hours)
    with open_guarded(reading.path, **reading.limits) as (binary, encoding):
        blocks = fmt.summed(binary, reading.ctx) if encoding in ("utf-8", "utf-8-sig") else None
        if blocks is None:
            return None
        savepoint = transaction.savepoint() if connection.in_atomic_block else None
        try:
            with closing(read_ahead(blocks)) as read:  # closed before the file is, however the loop ends
                for block in read:
                    _records_add_summed(records, block)
                    outcome.identity_emails.update(block.emails)
                    hours.add_summed(block)
                    outcome.rows_read += block.rows
                    outcome.rows_imported += block.rows
                    progress(outcome.rows_read)
        except NotColumnar as reason:
            records.discard()
            hours.discard()
            if savepoint is not None:
                transaction.savepoint_rollback(savepoint)
            logger.info("import %s: read row by row (%s)", batch.pk, reason)
            return None
    if savepoint is not None:
        hours.settle()  # the merges' own savepoints are inside this one
        transaction.savepoint_commit(savepoint)
    return outcome


def _records_add_summed(records: RecordSpool, block: SummedBlock) -> None:
    """Add a columnar reader's block of records, summed per key, to the import's."""
    for key, (*counts, requests, cost) in block.records:
        acc = records.get(key)
        if acc is None:
            oversized = _oversized_field(key)
            if oversized:
                raise NotColumnar(oversized)
            acc = records.new(key)
        acc.add(
            Accumulated(
                *counts,
                requests=requests,
                billed_cost=cost or Decimal(0),
                has_billed_cost=cost is not None,
                has_unbilled_rows=cost is None,
            )
        )


def _parse_rows(reading: _Reading, records: RecordSpool, hours: HourSpool, progress: Callable[[int], None]) -> _Outcome:
    """The outcome from the format's parser, a row at a time; `progress` is given the rows read every
    PROGRESS_EVERY_ROWS rows."""
    fmt, ctx = reading.format, reading.ctx
    outcome = _Outcome(fmt.name, records, hours)
    # The two counters every row moves are locals (copied to the outcome below): this loop runs once per
    # row, and attribute updates on the outcome were a measurable share of a large import's time.
    rows_read = rows_imported = 0
    hours_add = outcome.hours.add
    with open_text(reading.path, **reading.limits) as (stream, _encoding):
        for item in _guarded(fmt.parse(stream, ctx)):
            if isinstance(item, UsageRow):
                rows_read += 1
                rows_imported += 1
                identity_key = (item.provider, item.identity_kind, item.identity_value)
                key = (item.day, item.provider, item.account, identity_key, item.model, item.usage_kind)
                acc = records.get(key)
                if acc is None:
                    oversized = _oversized_field(key)  # checked once per key, not per row
                    if oversized:
                        rows_imported -= 1
                        outcome.rows_rejected += 1
                        if len(outcome.errors) < MAX_LISTED_ERRORS:
                            outcome.errors.append({"line": item.line, "reason": oversized})
                        continue
                    acc = records.new(key)
                acc.input_tokens += item.input_tokens
                acc.cache_write_tokens += item.cache_write_tokens
                acc.cache_read_tokens += item.cache_read_tokens
                acc.output_tokens += item.output_tokens
                if item.requests is not None:
                    acc.requests = (acc.requests or 0) + item.requests
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
                    hours_add(identity_key, item)
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
                outcome.directory[(item.provider, item.kind, item.value)] = (
                    item.email,
                    item.label,
                    item.owner_user_id,
                )
            elif isinstance(item, Skipped):
                rows_read += 1
                outcome.rows_skipped += 1
            elif isinstance(item, RowError):
                rows_read += 1
                outcome.rows_rejected += 1
                if len(outcome.errors) < MAX_LISTED_ERRORS:
                    outcome.errors.append({"line": item.line, "reason": item.reason})
            if rows_read % PROGRESS_EVERY_ROWS == 0:
                progress(rows_read)
    outcome.rows_read, outcome.rows_imported = rows_read, rows_imported
    return outcome


def import_error_text(error: dict) -> str:
    """One listed error as text: "line 12: reason", or the reason alone for a file-level error (no line)."""
    return f"line {error['line']}: {error['reason']}" if error.get("line") else error["reason"]


def _column_mapping(name: str) -> dict[str, str]:
    """A saved ColumnMapping's columns, with its provider as the default "provider" constant."""
    from usage.models import ColumnMapping

    mapping = ColumnMapping.objects.filter(name=name).first()
    if mapping is None:
        raise ParseError(f"no saved column mapping named {name!r}")
    return {"provider": mapping.provider, **(mapping.columns or {})}


FIELD_LIMITS = (("model", 200), ("account", 255), ("identity_value", 500), ("usage_kind", 50))


def _oversized_field(key: RecordKey) -> str | None:
    """The database's column limits, as a row error rather than a failed transaction."""
    _day, _provider, account, (_, _, identity_value), model, usage_kind = key
    values = {"model": model, "account": account, "identity_value": identity_value, "usage_kind": usage_kind}
    for name, limit in FIELD_LIMITS:
        if len(values[name]) > limit:
            return f"{name} is longer than {limit} characters ({values[name][:40]}…)"
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


# Stores run one at a time (PostgreSQL advisory lock): which export of a scope is newer is decided and
# written without another import changing the scope in between.
STORE_LOCK_KEY = 0x7B0A_11B0


def _pipelined() -> bool:
    """Parse and write at once (PostgreSQL; _parse_and_store), or parse, then store (SQLite: a transaction open
    for the whole parse would lock the database file against every other writer)."""
    return connection.vendor == "postgresql" and settings.TOKENBOARD_IMPORT_PIPELINE


def _parse_then_store(
    batch: ImportBatch, reading: _Reading, claim_id: str, records: RecordSpool, hours: HourSpool
) -> None:
    def progress(rows_read: int) -> None:
        ImportBatch.objects.filter(pk=batch.pk, claim_id=claim_id).update(rows_read=rows_read)

    outcome = _parse(batch, reading, records, hours, progress)
    with transaction.atomic():
        _store_begin()
        _store_outcome(batch, outcome, claim_id)


def _parse_and_store(
    batch: ImportBatch,
    reading: _Reading,
    claim_id: str,
    records: RecordSpool,
    hours: HourSpool,
    heartbeat: _Heartbeat,
) -> None:
    """The import with both cores (PostgreSQL): its transaction opens before the parse, and each buffer of hours
    the parse writes out is merged into UsageHour by a thread on the same connection while the parse goes on
    (usage.services.bulk.BackgroundWrites), instead of all of them after it. The rest is stored after the parse,
    as in _parse_then_store. Stores still run one at a time (the store lock is taken first), and a failure
    anywhere rolls back everything, hours included. The import's row is not locked until the end, so the
    heartbeat thread writes its progress."""
    with transaction.atomic():
        _store_begin()
        merge = HoursMerge()
        with BackgroundWrites(merge, name=f"import-{batch.pk}-hours") as writes:

            def identity_ids(keys: set) -> dict:
                return {key: identity.pk for key, identity in identities_get_or_create(keys).items()}

            hours.merge_as_written(writes, identity_ids)
            outcome = _parse(batch, reading, records, hours, heartbeat.progress)
            hours.flush()
            writes.wait()
        merge.drop()
        _store_outcome(batch, outcome, claim_id)


def _store_begin() -> None:
    """The store's transaction (PostgreSQL): the store lock, then its settings."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STORE_LOCK_KEY])
            _merge_settings(cursor)


def _store_outcome(batch: ImportBatch, outcome: _Outcome, claim_id: str) -> None:
    prices = PriceBook()
    locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
    if locked.status != ImportStatus.RUNNING or locked.claim_id != claim_id:
        logger.warning("import %s was taken over by another run; dropping this run's results", batch.pk)
        transaction.set_rollback(True)  # the hours a pipelined import merged already
        return
    locked.detected_format = outcome.format_name
    if outcome.exported_at:
        locked.exported_at = outcome.exported_at
    records = outcome.records
    identity_keys = records.identity_keys() | set(outcome.directory)
    identity_keys |= {key[3] for key in outcome.outcomes}
    emails = dict(outcome.identity_emails)
    labels = dict(outcome.identity_labels)
    owners = {key: owner for key, (_email, _label, owner) in outcome.directory.items() if owner}
    for key, (email, label, _owner) in outcome.directory.items():
        emails[key] = email
        if label:
            labels[key] = label
    identities = identities_resolve(identity_keys, emails=emails, labels=labels, owners=owners)

    def scope_of(key: RecordKey | RecordPair) -> Scope:
        day, provider, account, identity_key = key[:4]
        return provider, account, day, identities[identity_key].pk if outcome.personal else None

    scopes = {scope_of(pair) for pair in records.pairs()}
    superseded = _scopes_with_newer_exports(locked, scopes)

    def kept_pairs() -> Iterator[RecordPair]:
        return (pair for pair in records.pairs() if not superseded or scope_of(pair) not in superseded)

    now = timezone.now()

    def record_rows() -> Iterator[tuple]:
        # Generated one by one (in RECORD_FIELDS order) and streamed to the database: a large file's
        # records are never all held as model instances at once.
        for key, acc in records.items():
            if superseded and scope_of(key) in superseded:
                continue
            day, provider, account, identity_key, model, usage_kind = key
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
    records_replaced, replaced_imports, replaced_usage = _scopes_replace(locked, scopes - superseded)
    usage_hours_upsert(outcome.hours, identities)
    records_written += outcomes_upsert(outcome.outcomes, identities, locked)
    # Outcome days too: titles read outcomes, and are cached until their window is recomputed.
    days, kept_identities = {key[0] for key in outcome.outcomes}, set()
    for day, _provider, _account, identity_key in kept_pairs():
        days.add(day)
        kept_identities.add(identity_key)
    # Streamed: a month of a large org's daily usage has millions of (day, identity) pairs.
    changed = ((key[0], identities[key[3]].pk) for key in chain(kept_pairs(), outcome.outcomes))
    standings_mark_usage(chain(changed, replaced_usage))
    touched_people = {identities[identity_key].person_id for identity_key in kept_identities} - {None}
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
    locked.scopes_superseded = len(superseded)
    locked.records_replaced, locked.replaced_imports = records_replaced, replaced_imports
    locked.finished_at = timezone.now()
    locked.save()


def _merge_settings(cursor) -> None:
    """This store's transaction (PostgreSQL): sort memory for merging up to a million staged hours and records
    in key order (with the server's default 4 MB the sorts spill to disk). The app's connections compile no
    query (leaderboard/settings.py): here the staging tables have no statistics, so the planner guesses their
    size, and compiling took longer than it saved."""
    if settings.TOKENBOARD_IMPORT_WORK_MEM:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.TOKENBOARD_IMPORT_WORK_MEM])


# (provider, account, day, identity id): the identity only for a personal export (one person's own file, e.g.
# ccusage or a Cursor export without a User column), which states that person's usage and no one else's.
Scope = tuple


def _scope_filter(batch: ImportBatch, scopes: Iterable[Scope]) -> Q:
    """Records of these scopes written by an export of the same format (another format of the same provider,
    such as a cost report beside a usage export, says different things about the day and is not replaced)."""
    days_by_group: dict[tuple, set] = {}
    for provider, account, day, identity_id in scopes:
        days_by_group.setdefault((provider, account, identity_id), set()).add(day)
    match = Q(pk__in=[])
    for (provider, account, identity_id), days in days_by_group.items():
        group = Q(provider=provider, account=account, day__in=sorted(days))
        match |= group & Q(identity_id=identity_id) if identity_id is not None else group
    return match & Q(import_batch__detected_format=batch.detected_format)


def export_stated_at(batch: ImportBatch):
    """When an export states its figures, for "which is newer": the export time the file carries, else when it
    was uploaded (or pulled). A retried import keeps its place: it is as old as it was."""
    return batch.exported_at or batch.created_at


def _scopes_with_newer_exports(batch: ImportBatch, scopes: set[Scope]) -> set[Scope]:
    """The file's scopes whose stored figures come from a newer export: this file must not undo them."""
    if not scopes:
        return set()
    personal = any(scope[3] is not None for scope in scopes)
    grouped_by = ["provider", "account", "day", *(["identity"] if personal else [])]
    stated = (
        UsageRecord.objects.filter(_scope_filter(batch, scopes))
        .exclude(import_batch=batch)
        .values(*grouped_by)
        .annotate(newest=Max(Coalesce("import_batch__exported_at", "import_batch__created_at")))
        .filter(newest__gt=export_stated_at(batch))
    )
    return {(row["provider"], row["account"], row["day"], row.get("identity")) for row in stated}


def _scopes_replace(batch: ImportBatch, scopes: set[Scope]) -> tuple[int, list[int], set[tuple[date, int]]]:
    """This export now states its scopes whole: records of them that it no longer has (a row removed, a model
    renamed) are deleted. The import just upserted every record it has, so those are the ones from other
    imports. Returns how many were deleted and from which imports, for the import's page, and the (day, identity)
    of each, whose standings change."""
    if not scopes:
        return 0, [], set()
    replaced = UsageRecord.objects.filter(_scope_filter(batch, scopes)).exclude(import_batch=batch)
    imports = sorted(set(replaced.values_list("import_batch_id", flat=True)))
    usage = set(replaced.values_list("day", "identity_id").distinct())
    deleted, _by_model = replaced.delete()
    return deleted, imports, usage


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

    The rows are streamed into a temporary table (COPY on PostgreSQL) and merged with one
    INSERT … ON CONFLICT DO UPDATE (usage.services.bulk): bulk_create spent ~150 µs per record preparing values
    in Python, which made the upsert, not the database, the slowest step of a large import
    (docs/PERFORMANCE.md)."""
    return staged_upsert(UsageRecord, RECORD_FIELDS, rows, unique=NATURAL_KEY, updated=UPDATED_FIELDS)


def _fail(batch: ImportBatch, summary: str, errors: list[dict], *, claim_id: str, counts: dict | None = None) -> None:
    """Fail the import for this run only: a run whose claim was taken over (retried) changes nothing."""
    ImportBatch.objects.filter(pk=batch.pk, claim_id=claim_id).update(
        status=ImportStatus.FAILED,
        error_summary=summary,
        errors=errors[:MAX_LISTED_ERRORS],
        finished_at=timezone.now(),
        **(counts or {}),
    )


def latest_data() -> dict[str, QuerySet]:
    """The last successful import and the last successful provider pull (a pull that found nothing new creates no
    import but still proves the data is current), each a one-value query (a Subquery of another query, or read
    alone): the newer of the two is when the newest data arrived (data_as_of)."""
    return {
        "latest_import": ImportBatch.objects.filter(status=ImportStatus.SUCCEEDED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)[:1],
        "latest_pull": ProviderConnection.objects.filter(last_success_at__isnull=False)
        .order_by("-last_success_at")
        .values_list("last_success_at", flat=True)[:1],
    }


def data_as_of(latest: dict | None = None):
    """When the newest data arrived, from latest_data()'s values (`latest`, when already read with another query)."""
    if latest is None:
        latest = {name: next(iter(query), None) for name, query in latest_data().items()}
    return max(filter(None, latest.values()), default=None)


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
    if batch.status == ImportStatus.QUEUED and batch.dispatched_at is None:
        return f"import #{batch.pk} {batch.original_name}: {WAITING_FOR_BROKER}"
    return f"import #{batch.pk} {batch.original_name}: {batch.status}"


WAITING_FOR_BROKER = (
    "stored, but the task queue could not be reached; it is sent automatically once the queue is back "
    "(checked every minute)"
)
