"""Provider connections: admin API keys stored encrypted, one beat schedule per enabled connection, and the
pull that turns a provider's pages into imports.

A pull (connection_sync) is all-or-nothing towards the database: it first fetches every page of every
dataset (usage, costs, users, keys…) for the window, and only when all are in does it create the imports,
one ImportBatch per dataset with source "api", stored like an upload so it can be re-processed. A provider
error half-way stores nothing; the connection is marked failing and the next run re-pulls the window.
Re-pulling is harmless: the pipeline upserts each (day, provider, account, identity, model, kind), so a
restated day's totals replace the old ones instead of adding to them.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from celery.schedules import crontab as celery_crontab
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from usage import queue
from usage.collectors import SUPPORTED_PROVIDERS, ProviderError, collector_class
from usage.collectors.http import ProviderAuthError, ProviderRequestError, ProviderUnavailable
from usage.crypto import KeyDecryptionError, api_key_decrypt, api_key_encrypt
from usage.models import ImportBatch, ImportSource, ImportStatus, ProviderConnection
from usage.parsers.registry import FORMATS
from usage.services.imports import ImportRejected, import_batch_create, import_batch_process

logger = logging.getLogger(__name__)

PULL_TASK = "usage.pull_provider_usage"
FIRST_PULL_DAYS = 30  # a connection's first run (no success yet, no --since) starts this many days back
LOCK_SECONDS = 2 * 3600  # longer than any sane pull; a run killed without redelivery blocks at most this long
TEST_CLIENT_OPTIONS = {"timeout": 15.0, "max_attempts": 2, "backoff_base": 0.5}
# Directory lists first, so the usage imports that follow already find the id → email links.
DATASET_ORDER = {"directory": 0}


# --- saving ------------------------------------------------------------------------------------------------


def schedule_validate(cron: str) -> str:
    fields = cron.split()
    if len(fields) != 5:
        raise ValidationError({"schedule": f"{cron!r} is not a cron expression: expected 5 fields (m h dom mon dow)"})
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        celery_crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except (ValueError, TypeError) as error:
        raise ValidationError({"schedule": f"{cron!r} is not a valid cron expression ({error})"}) from None
    return " ".join(fields)


def connection_save(connection: ProviderConnection, *, api_key: str | None = None) -> ProviderConnection:
    """Validate and save a connection (new or changed) and bring its beat schedule in line.

    `api_key`: a new plaintext key to encrypt and store; None or "" keeps the stored one. The key is
    write-only: nothing returns it, and it never reaches a log line."""
    errors: dict[str, str] = {}
    if connection.provider not in SUPPORTED_PROVIDERS:
        errors["provider"] = (
            f"no API collector for {connection.provider!r}; supported: {', '.join(SUPPORTED_PROVIDERS)}"
        )
    api_key = (api_key or "").strip()
    if not api_key and not connection.encrypted_api_key:
        errors["api_key"] = "an admin API key is required"
    elif not api_key and _destination_changed(connection):
        errors["api_key"] = (
            "the base URL or provider changed: enter the API key again (a stored key is never sent to a new host)"
        )
    try:
        connection.schedule = schedule_validate(connection.schedule or "")
    except ValidationError as error:
        errors.update({key: value[0] for key, value in error.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    if api_key:
        connection.encrypted_api_key = api_key_encrypt(api_key)
    connection.full_clean(exclude=["encrypted_api_key"])
    with transaction.atomic():
        connection.save()
        connection_schedule_sync(connection)
    return connection


def _destination_changed(connection: ProviderConnection) -> bool:
    """Whether a saved connection's key would now go somewhere else (another base URL or provider's API)."""
    if connection.pk is None:
        return False
    stored = ProviderConnection.objects.filter(pk=connection.pk).values("base_url", "provider").first()
    return stored is not None and (stored["base_url"], stored["provider"]) != (connection.base_url, connection.provider)


def connection_create(
    *,
    provider: str,
    name: str,
    api_key: str,
    base_url: str = "",
    schedule: str = "0 * * * *",
    restatement_days: int = 3,
    enabled: bool = True,
) -> ProviderConnection:
    connection = ProviderConnection(
        provider=provider,
        name=name,
        base_url=base_url,
        schedule=schedule,
        restatement_days=restatement_days,
        enabled=enabled,
    )
    return connection_save(connection, api_key=api_key)


EDITABLE_FIELDS = ("provider", "name", "base_url", "schedule", "restatement_days", "enabled")


def connection_update(
    *, connection: ProviderConnection, api_key: str | None = None, **changes: object
) -> ProviderConnection:
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(connection, name, value)
    return connection_save(connection, api_key=api_key)


def connection_delete(connection: ProviderConnection) -> None:
    with transaction.atomic():
        _schedule_tasks_of(connection.pk).delete()
        connection.delete()


# --- the beat schedule -------------------------------------------------------------------------------------


def schedule_task_name(connection: ProviderConnection) -> str:
    return f"connection:{connection.name}"


def _schedule_kwargs(connection_id: int) -> str:
    return json.dumps({"connection_id": connection_id})


def _schedule_tasks_of(connection_id: int):
    return PeriodicTask.objects.filter(task=PULL_TASK, kwargs=_schedule_kwargs(connection_id))


def crontab_for(cron: str) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    return schedule


def connection_schedule_sync(connection: ProviderConnection) -> PeriodicTask | None:
    """One django-celery-beat PeriodicTask per enabled connection, named "connection:<name>", running
    usage.pull_provider_usage(connection_id=…) on the connection's cron. A disabled connection has none; a
    renamed one loses the task under its old name. Admins may edit the task in the Django admin; saving the
    connection again re-applies its own schedule."""
    stale = _schedule_tasks_of(connection.pk).exclude(name=schedule_task_name(connection))
    stale.delete()
    if not connection.enabled:
        PeriodicTask.objects.filter(name=schedule_task_name(connection)).delete()
        return None
    task, _ = PeriodicTask.objects.update_or_create(
        name=schedule_task_name(connection),
        defaults={
            "task": PULL_TASK,
            "crontab": crontab_for(connection.schedule),
            "interval": None,
            "kwargs": _schedule_kwargs(connection.pk),
            "enabled": True,
            "description": f"Pull usage from the {connection.get_provider_display()} admin API (Connections page).",
        },
    )
    return task


def connection_schedules_ensure() -> list[str]:
    """Repair the beat tasks after a restore or a hand deletion: create the missing task of each enabled
    connection and remove pull tasks whose connection is gone or disabled. An existing task is left as it
    is, so an admin's edit of its crontab survives. For deploy scripts (e.g. setup_periodic_tasks).
    Returns a line per change."""
    changes = []
    with transaction.atomic():
        wanted: dict[str, ProviderConnection] = {
            schedule_task_name(c): c for c in ProviderConnection.objects.filter(enabled=True)
        }
        for task in PeriodicTask.objects.filter(task=PULL_TASK):
            connection = wanted.get(task.name)
            if connection is None or task.kwargs != _schedule_kwargs(connection.pk):
                task.delete()
                changes.append(f"removed periodic task {task.name!r} (no enabled connection of that name)")
        existing = set(PeriodicTask.objects.filter(task=PULL_TASK).values_list("name", flat=True))
        for name, connection in wanted.items():
            if name not in existing:
                connection_schedule_sync(connection)
                changes.append(f"created periodic task {name!r} ({connection.schedule})")
    return changes


def connection_next_run(connection: ProviderConnection, *, task: PeriodicTask | None = None) -> datetime | None:
    """When beat will next start this connection's pull, per its PeriodicTask (None: not scheduled)."""
    if task is None:
        task = (
            PeriodicTask.objects.filter(name=schedule_task_name(connection), enabled=True)
            .select_related("crontab")
            .first()
        )
    if task is None or not task.enabled or task.crontab is None:
        return None
    schedule = task.crontab.schedule
    now = schedule.now()
    remaining = schedule.remaining_estimate(task.last_run_at or now)
    return max(now, now + remaining)


# --- testing a key -----------------------------------------------------------------------------------------


@dataclass
class ConnectionCheck:
    ok: bool
    message: str


def connection_test(
    connection: ProviderConnection | None = None,
    *,
    provider: str = "",
    api_key: str = "",
    base_url: str = "",
) -> ConnectionCheck:
    """One cheap authenticated call; says plainly what is wrong (bad key, missing admin scope, unreachable).
    Test a saved connection, or a provider + key + base URL that is not saved yet."""
    if connection is not None:
        provider = provider or connection.provider
        base_url = base_url or connection.base_url
        if not api_key and (provider, base_url) != (connection.provider, connection.base_url):
            return ConnectionCheck(False, "enter the API key to test another base URL or provider")
        if not api_key:
            try:
                api_key = api_key_decrypt(connection.encrypted_api_key)
            except KeyDecryptionError as error:
                return ConnectionCheck(False, str(error))
    try:
        collector = collector_class(provider)(api_key=api_key, base_url=base_url, client_options=TEST_CLIENT_OPTIONS)
    except ProviderError as error:
        return ConnectionCheck(False, error.message)
    label = collector.label
    try:
        return ConnectionCheck(True, collector.test())
    except ProviderAuthError as error:
        detail = _scrub(error.message, api_key)
        if error.status == 401:
            return ConnectionCheck(False, f"{label} refused the key: it is wrong, revoked or expired. ({detail})")
        return ConnectionCheck(
            False,
            f"{label} accepted the key but it lacks admin access: use an organization/team Admin key. ({detail})",
        )
    except ProviderUnavailable as error:
        where = base_url or collector.default_base_url
        return ConnectionCheck(
            False, f"{label} could not be reached (or kept failing) at {where}: {_scrub(error.message, api_key)}"
        )
    except ProviderRequestError as error:
        return ConnectionCheck(
            False,
            f"{label} answered, but not like its admin API (is the base URL right?): {_scrub(error.message, api_key)}",
        )


def _scrub(message: str, api_key: str) -> str:
    # Defence in depth: a provider that echoes the key back must not get it into our messages or logs.
    return message.replace(api_key, "[api key]") if api_key and len(api_key) >= 4 else message


# --- pulling -----------------------------------------------------------------------------------------------


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def pull_window(
    connection: ProviderConnection, *, since: date | datetime | None = None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end) of a pull, in UTC. From `since` (a backfill) or the last success — or FIRST_PULL_DAYS
    back on a first run — minus the restatement days, to now. The start is moved back to the start of its
    org-local day (then to the hour boundary that starts it), because each import replaces whole days:
    a half day in the window would overwrite that day's totals with half of them."""
    now = (now or timezone.now()).astimezone(UTC).replace(microsecond=0)
    tz = ZoneInfo(settings.TIME_ZONE)
    if isinstance(since, datetime):
        first_day = (since.astimezone(tz) - timedelta(days=connection.restatement_days)).date()
    elif isinstance(since, date):
        first_day = since - timedelta(days=connection.restatement_days)
    elif connection.last_success_at:
        first_day = (connection.last_success_at.astimezone(tz) - timedelta(days=connection.restatement_days)).date()
    else:
        first_day = now.astimezone(tz).date() - timedelta(days=FIRST_PULL_DAYS)
    local_midnight = datetime.combine(first_day, time(0), tzinfo=tz)
    # Hourly buckets go to the local day their start falls on: the first bucket of the day starts at the
    # first hour boundary at or after local midnight (they differ in zones with :30 offsets).
    start = _ceil_hour(local_midnight.astimezone(UTC))
    return min(start, now), now


@dataclass
class SyncResult:
    ok: bool
    message: str
    start: datetime | None = None
    end: datetime | None = None
    batches: list[ImportBatch] = field(default_factory=list)
    rows: int = 0
    requests: int = 0


def connection_sync(
    connection: ProviderConnection,
    *,
    since: date | datetime | None = None,
    now: datetime | None = None,
    client_options: dict | None = None,
) -> SyncResult:
    """Pull the connection's window and import it (see the module docstring). Records the outcome on the
    connection: last_success_at / last_rows_pulled / failing=False, or failing / last_error / last_error_at.
    Provider errors are recorded and returned (ok=False); anything unexpected is recorded and re-raised."""
    started = timezone.now()
    start, end = pull_window(connection, since=since, now=now or started)
    where = (
        f"connection {connection.name!r} ({connection.provider}, {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC)"
    )
    api_key = ""
    collector = None
    try:
        api_key = api_key_decrypt(connection.encrypted_api_key)
        collector = collector_class(connection.provider)(
            api_key=api_key, base_url=connection.base_url, client_options=client_options
        )
        datasets = collector.collect(start, end, formats=set(FORMATS))
    except (ProviderError, KeyDecryptionError) as error:
        message = _scrub(getattr(error, "message", str(error)), api_key)
        logger.warning("%s: pull failed, nothing stored: %s", where, message)
        _record_failure(connection, message)
        return SyncResult(False, message, start, end, requests=collector.client.requests_made if collector else 0)
    except Exception as error:
        _record_failure(
            connection, f"internal error while pulling ({type(error).__name__}: {_scrub(str(error), api_key)})"
        )
        raise
    requests = collector.client.requests_made

    # Every page is in: only now does anything reach the database.
    try:
        return _import_datasets(connection, datasets, start, end, requests, where)
    except Exception as error:
        _record_failure(connection, f"internal error while importing ({type(error).__name__}: {error})")
        raise


def _import_datasets(
    connection: ProviderConnection, datasets: list, start: datetime, end: datetime, requests: int, where: str
) -> SyncResult:
    datasets.sort(key=lambda dataset: DATASET_ORDER.get(dataset.kind, 9))
    batches: list[ImportBatch] = []
    problems: list[str] = []
    rows = 0
    stamp = f"{start:%Y%m%dT%H%MZ}-{end:%Y%m%dT%H%MZ}"
    for dataset in datasets:
        if not dataset.records:
            continue  # an empty window is not an error (and an empty import would be rejected)
        name = f"{slugify(connection.name) or 'connection'}-{dataset.kind}-{stamp}.jsonl"
        try:
            batch = import_batch_create(
                file=io.BytesIO(dataset.as_json_lines()),
                name=name,
                source=ImportSource.API,
                requested_format=dataset.format_name,
                connection=connection,
                queue=False,
            )
        except ImportRejected as error:
            problems.append(str(error))
            continue
        processed = import_batch_process(batch.pk) or ImportBatch.objects.get(pk=batch.pk)
        batches.append(processed)
        if processed.status == ImportStatus.SUCCEEDED:
            rows += processed.rows_imported
        else:
            problems.append(processed.error_summary or f"import #{processed.pk} {processed.status}")
    if problems:
        message = "; ".join(problems)
        logger.warning("%s: %d import(s) failed: %s", where, len(problems), message)
        _record_failure(connection, message)
        return SyncResult(False, message, start, end, batches, rows, requests)
    connection.last_success_at = end
    connection.last_rows_pulled = rows
    connection.failing = False
    connection.save(update_fields=["last_success_at", "last_rows_pulled", "failing"])
    kinds = ", ".join(f"{b.detected_format or b.requested_format} #{b.pk}" for b in batches) or "no usage in the window"
    message = f"pulled {rows:,} rows in {requests} requests ({kinds})"
    logger.info("%s: %s", where, message)
    return SyncResult(True, message, start, end, batches, rows, requests)


def _record_failure(connection: ProviderConnection, message: str) -> None:
    connection.failing = True
    connection.last_error = message[:5000]
    connection.last_error_at = timezone.now()
    connection.save(update_fields=["failing", "last_error", "last_error_at"])


def connection_lock_key(connection_id: int) -> str:
    return f"tokenboard:connection-pull:{connection_id}"


def connection_run(
    connection_id: int,
    *,
    since: date | datetime | None = None,
    run_id: str | None = None,
    manual: bool = False,
    client_options: dict | None = None,
) -> SyncResult | None:
    """A pull under a per-connection lock, so two runs of one connection never overlap. Returns None when
    it did not run: another run holds the lock, the connection is gone, or it is disabled (unless manual).

    The lock is a cache entry holding the run id (the Celery task id). A message redelivered after its
    worker died carries the same id and takes the lock over instead of waiting for it to expire."""
    run_id = run_id or f"local-{uuid.uuid4().hex}"
    key = connection_lock_key(connection_id)
    if not cache.add(key, run_id, LOCK_SECONDS):
        holder = cache.get(key)
        if holder != run_id:
            logger.info("connection %s: skipping: previous run still going (run %s)", connection_id, holder)
            return None
        logger.info("connection %s: run %s was redelivered; taking its lock over", connection_id, run_id)
        cache.set(key, run_id, LOCK_SECONDS)
    try:
        connection = ProviderConnection.objects.filter(pk=connection_id).first()
        if connection is None:
            logger.warning("connection %s no longer exists; skipping", connection_id)
            return None
        if not connection.enabled and not manual:
            logger.info("connection %r is disabled; skipping the scheduled pull", connection.name)
            return None
        return connection_sync(connection, since=since, client_options=client_options)
    finally:
        if cache.get(key) == run_id:
            cache.delete(key)


class QueueUnavailable(Exception):
    """The broker did not take the message (Redis down, queue folder missing)."""


def connection_sync_queue(connection: ProviderConnection, *, since: date | None = None) -> None:
    """Send a manual pull ("sync now", sync_connection without --wait) to the worker. Nothing is written
    first, so it is sent at once; a broker that is down raises QueueUnavailable with a plain message."""
    kwargs: dict[str, object] = {"connection_id": connection.pk, "manual": True}
    if since:
        kwargs["since"] = since.isoformat()
    try:
        queue.send("usage.pull_provider_usage", **kwargs)
    except Exception as error:
        logger.exception("could not queue a pull of connection %r", connection.name)
        raise QueueUnavailable(
            f"could not queue the pull: the task broker is unavailable ({type(error).__name__}); "
            "is the worker's Redis running?"
        ) from None
