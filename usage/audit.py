"""What the audit trail records on its own: django-auditlog's model registrations, the names of model-change
events, who the actor is, and the events of signing in and exporting. Wired up in UsageConfig.ready().

The library records changes of these models (create, update, delete as registered), into usage.AuditEntry:
identities (assignment, kind), column mappings, provider connections (never the key: only that it changed),
users' roles, teams' managers and parents, memberships, people's ranking switches, prices and currency rates
(they change what is ranked by cost). Deleted imports and everything else is an explicit event
(usage.services.audit.audit_record) at the service that does it.
"""

from __future__ import annotations

from auditlog.cid import set_cid
from auditlog.context import set_extra_data
from auditlog.middleware import AuditlogMiddleware
from auditlog.registry import auditlog
from auditlog.signals import pre_log
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.functional import SimpleLazyObject

from usage.models import AuditEntry, ImportBatch

# Created in numbers by imports (which are recorded as one event each): only their changes and deletions are.
CHANGES_ONLY = ("person", "identity", "membership")

KEY_CHANGED = "(changed; never recorded)"

# A model change is named "<model>.<create|update|delete>", except changes of these fields, named for what they
# mean (a team's managers change by an "update" of the team).
MEANINGFUL_FIELDS = {
    ("user", "is_staff"): "role.change",
    ("user", "is_superuser"): "role.change",
    ("team", "managers"): "role.change",
    ("identity", "person"): "identity.assign",
}
ACTION_NAMES = {0: "create", 1: "update", 2: "delete", 3: "access"}


def hide_key(_value) -> str:
    """auditlog's mask for the encrypted provider key: record that it changed, never any of it."""
    return KEY_CHANGED


def register_models() -> None:
    from usage import models

    user_fields = ["username", "email", "is_active", "is_staff", "is_superuser"]
    auditlog.register(get_user_model(), include_fields=user_fields)
    auditlog.register(models.Team, include_fields=["name", "parent"], m2m_fields={"managers"})
    auditlog.register(models.Membership)
    auditlog.register(models.Person, include_fields=["email", "display_name", "active", "show_name", "user"])
    auditlog.register(models.Identity, include_fields=["provider", "kind", "value", "person", "owner_email"])
    auditlog.register(models.ColumnMapping)
    auditlog.register(
        models.ProviderConnection,
        include_fields=["provider", "name", "encrypted_api_key", "base_url", "schedule", "restatement_days", "enabled"],
        mask_fields=["encrypted_api_key"],
        mask_callable="usage.audit.hide_key",
    )
    auditlog.register(models.ModelPrice)
    auditlog.register(models.CurrencyRate)


@receiver(pre_log, dispatch_uid="audit_skip_bulk_creations")
def _skip_bulk_creations(sender, instance, action, **kwargs):
    if action == AuditEntry.Action.CREATE and sender._meta.model_name in CHANGES_ONLY:
        return False
    return None


@receiver(post_delete, sender=ImportBatch, dispatch_uid="audit_import_deleted")
def _import_deleted(sender, instance, **kwargs):
    # Imports change on every progress step, so only their deletion is recorded here (uploads and retries are
    # explicit events of usage.services.imports).
    from usage.services.audit import audit_record

    audit_record(
        "import.delete", summary=str(instance), data={"file": instance.original_name, "sha256": instance.sha256}
    )


def model_event(entry) -> str:
    """The event name of a change auditlog recorded."""
    model = entry.content_type.model if entry.content_type_id else "object"
    if entry.action == AuditEntry.Action.UPDATE:
        for field in entry.changes or {}:
            meaning = MEANINGFUL_FIELDS.get((model, field))
            if meaning:
                return meaning
    return f"{model}.{ACTION_NAMES.get(entry.action, 'change')}"


class AuditMiddleware(AuditlogMiddleware):
    """auditlog's middleware (actor, address), with the actor read when an entry is written rather than when
    the request arrives: an API request is authenticated by its Bearer token only inside the view."""

    @staticmethod
    def _get_actor(request):
        return SimpleLazyObject(lambda: getattr(request, "user", None))

    def __call__(self, request):
        set_cid(request)
        with set_extra_data(context_data=self.get_extra_data(request)):
            response = self.get_response(request)
            export = getattr(response, "tokenboard_export", None)
            if export is not None:  # set by usage.csv_export.csv_response, the one way CSV leaves
                from usage.services.audit import audit_export

                audit_export(request, **export)
            return response


# --- signing in ------------------------------------------------------------------------------------------------


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender, request, user, **kwargs):
    from usage.services.audit import audit_record

    method = "sso" if getattr(user, "backend", "").endswith("SsoBackend") else "password"
    audit_record("login", target=user, actor=user, data={"method": method})


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs):
    from usage.services.audit import audit_record

    if user is not None:
        audit_record("logout", target=user, actor=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    from usage.services.audit import audit_record

    sso = getattr(request, "sso_failure", None)
    if sso is not None:
        audit_record("login.failed", summary=sso["email"], data={"method": "sso", "reason": sso["reason"]})
    else:
        username = str(credentials.get("username", ""))[:150]
        audit_record("login.failed", summary=username, data={"method": "password"})
