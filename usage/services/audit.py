"""The audit trail: recording the events that are no model change, listing entries for the audit page, its CSV
and the API (one filter, so the three agree), and the retention purge.

Model changes are recorded by django-auditlog (usage.audit); both land in usage.AuditEntry. Inside a request
the actor and address are filled in by usage.audit.AuditMiddleware; elsewhere (commands, the worker) an
entry has no actor unless one is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from usage.models import AuditEntry

ACTIONS = AuditEntry.Action
# Event names of explicit events, with the auditlog action they are filed under.
EVENT_ACTIONS = {
    "login": ACTIONS.ACCESS,
    "login.failed": ACTIONS.ACCESS,
    "logout": ACTIONS.ACCESS,
    "export": ACTIONS.ACCESS,
    "import.upload": ACTIONS.CREATE,
    "import.retry": ACTIONS.UPDATE,
    "import.reprocess_all": ACTIONS.UPDATE,
    "api_token.create": ACTIONS.CREATE,
    "api_token.revoke": ACTIONS.DELETE,
    "role.change": ACTIONS.UPDATE,
    "org.import": ACTIONS.UPDATE,
    "audit.purge": ACTIONS.DELETE,
}
# What the page's event filter offers: explicit events and the model changes' prefixes.
EVENT_GROUPS = [
    ("login", "Logins (all)"),
    ("login.failed", "Failed logins"),
    ("export", "Exports"),
    ("import", "Imports"),
    ("identity", "Identities"),
    ("columnmapping", "Column mappings"),
    ("providerconnection", "Connections"),
    ("api_token", "API tokens"),
    ("role", "Role changes"),
    ("modelprice", "Prices"),
    ("currencyrate", "Currency rates"),
    ("membership", "Memberships"),
    ("team", "Teams"),
    ("person", "People"),
    ("user", "Users"),
    ("org", "Org imports"),
    ("audit", "Audit purges"),
]


def audit_record(event: str, *, target=None, summary: str = "", data: dict | None = None, actor=None) -> AuditEntry:
    """Record one event. `target` is the model instance it is about (if any), `summary` a text naming it when
    there is none (the username a failed login tried), `data` its details (never a secret)."""
    entry = AuditEntry(
        event=event,
        action=EVENT_ACTIONS.get(event, ACTIONS.ACCESS),
        object_repr=str(target) if target is not None else summary,
        additional_data=data or None,
    )
    if target is not None:
        from django.contrib.contenttypes.models import ContentType

        entry.content_type = ContentType.objects.get_for_model(target)
        entry.object_pk = str(target.pk)
        entry.object_id = target.pk if isinstance(target.pk, int) else None
    if actor is not None and getattr(actor, "is_authenticated", False):
        entry.actor = actor
        entry.actor_email = actor.email or None
    entry.save()
    return entry


def audit_export(request, *, filename: str, rows: int) -> AuditEntry:
    """An export: who, which page (URL name and path) and which filters (the query string's parameters)."""
    match = getattr(request, "resolver_match", None)
    # As typed, less NUL characters (no text column, PostgreSQL's JSON included, can store them).
    filters = {
        key.replace("\x00", ""): [v.replace("\x00", "") for v in values]
        if len(values) > 1
        else values[0].replace("\x00", "")
        for key, values in request.GET.lists()
    }
    return audit_record(
        "export",
        summary=filename,
        data={"page": match.view_name if match else "", "path": request.path, "filters": filters, "rows": rows},
    )


# --- listing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    event: str = ""  # an event name or its prefix ("import" matches "import.upload", "import.retry"...)
    actor: str = ""  # part of the actor's username or email
    text: str = ""  # part of what it is about
    since: date | None = None
    until: date | None = None


def audit_entries(wanted: AuditFilter) -> QuerySet[AuditEntry]:
    """Entries matching the filter, newest first: what the audit page, its CSV and /api/v1/audit/ list."""
    entries = AuditEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-pk")
    if wanted.event:
        entries = entries.filter(Q(event=wanted.event) | Q(event__startswith=f"{wanted.event}."))
    if wanted.actor:
        entries = entries.filter(Q(actor__username__icontains=wanted.actor) | Q(actor_email__icontains=wanted.actor))
    if wanted.text:
        entries = entries.filter(object_repr__icontains=wanted.text)
    zone = timezone.get_current_timezone()
    if wanted.since:
        entries = entries.filter(timestamp__gte=datetime.combine(wanted.since, time.min, tzinfo=zone))
    if wanted.until:
        entries = entries.filter(
            timestamp__lt=datetime.combine(wanted.until + timedelta(days=1), time.min, tzinfo=zone)
        )
    return entries


def entry_actor(entry: AuditEntry) -> str:
    if entry.actor is not None:
        return entry.actor.get_username()
    return entry.actor_email or ""


def entry_details(entry: AuditEntry) -> dict:
    """A model change's fields ({field: [old, new]}) or an event's details."""
    return entry.changes or entry.additional_data or {}


def entry_details_text(entry: AuditEntry) -> str:
    """The details in one line for people: "field: old → new" per changed field, "key: value" per detail."""
    parts = []
    for key, value in entry_details(entry).items():
        if value in ("", None, [], {}) and not entry.changes:
            continue
        if isinstance(value, list | tuple) and len(value) == 2 and entry.changes:
            parts.append(f"{key}: {value[0]} → {value[1]}")
        elif isinstance(value, dict) and value.get("type") == "m2m":
            parts.append(f"{key}: {value.get('operation')} {', '.join(map(str, value.get('objects', [])))}")
        else:
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


CSV_HEADER = ["time", "event", "actor", "address", "object_type", "object_id", "object", "details"]


def entry_csv_row(entry: AuditEntry) -> list:
    import json

    return [
        entry.timestamp.isoformat(),
        entry.event,
        entry_actor(entry),
        entry.remote_addr or "",
        entry.content_type.model if entry.content_type_id else "",
        entry.object_pk,
        entry.object_repr,
        json.dumps(entry_details(entry), sort_keys=True, default=str),
    ]


# --- retention ---------------------------------------------------------------------------------------------


def audit_purge(*, now: datetime | None = None) -> int:
    """Delete entries older than TOKENBOARD_AUDIT_RETENTION_DAYS (0 keeps everything); the purge itself is
    recorded. Returns how many entries went."""
    days = settings.TOKENBOARD_AUDIT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = AuditEntry.objects.filter(timestamp__lt=cutoff).purge()
    if deleted:
        audit_record("audit.purge", summary=f"{deleted} entries", data={"before": cutoff.isoformat(), "days": days})
    return deleted
