"""The audit trail: what is recorded (who, what, from where), that nothing can change or delete it, the audit page
with its filters and CSV, /api/v1/audit/ (admins only), and retention."""

import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import IdentityFactory, ImportBatchFactory
from usage.audit import KEY_CHANGED
from usage.auth import api_token_create
from usage.models import AuditEntry, ImportBatch, ModelPrice
from usage.services.audit import audit_purge, audit_record
from usage.services.connections import connection_create

SECRET_KEY_OF_PROVIDER = "sk-admin-abcdefghijklmnopqrstuvwxyz0123456789"
OPENAI_USAGE = b"""{"object": "page", "data": [], "has_more": false}"""


def entries(event: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(event=event).select_related("actor").order_by("pk"))


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- what is recorded ----------------------------------------------------------------------------------------


def test_logins_and_failed_logins_are_recorded_with_who_and_where(org):
    Client().post("/accounts/login/", {"username": "admin", "password": "wrong"})
    Client().post("/accounts/login/", {"username": "admin", "password": "pw"})
    (failed,) = entries("login.failed")
    assert failed.object_repr == "admin" and failed.actor is None and failed.remote_addr == "127.0.0.1"
    login = entries("login")[-1]
    assert login.actor == org["admin"] and login.additional_data == {"method": "password"}
    assert "wrong" not in json.dumps([e.additional_data for e in AuditEntry.objects.all()])


def test_uploads_retries_reprocessing_and_deletions_of_imports_are_recorded(org, django_capture_on_commit_callbacks):
    admin = logged_in(org["admin"])
    upload = SimpleUploadedFile("usage.json", OPENAI_USAGE)
    assert admin.post(reverse("imports-upload"), {"files": upload}).status_code == 302
    batch = ImportBatch.objects.get()
    (uploaded,) = entries("import.upload")
    assert uploaded.actor == org["admin"] and uploaded.object_pk == str(batch.pk)
    assert uploaded.additional_data["bytes"] == len(OPENAI_USAGE)

    ImportBatch.objects.filter(pk=batch.pk).update(status="failed")
    admin.post(reverse("import-retry", args=[batch.pk]))
    admin.post(reverse("imports-reprocess"))
    assert [e.object_pk for e in entries("import.retry")][0] == str(batch.pk)
    assert entries("import.reprocess_all")[0].actor == org["admin"]

    spare = ImportBatchFactory(original_name="old.csv")
    spare.delete()
    (deleted,) = entries("import.delete")
    assert deleted.additional_data["file"] == "old.csv"


def test_identity_assignments_and_kind_changes_are_recorded_with_before_and_after(org):
    identity = IdentityFactory(value="u-42")
    admin = logged_in(org["admin"])
    admin.post(reverse("identity-assign", args=[identity.pk]), {"person_id": org["infra_engineer"].pk})
    (assigned,) = entries("identity.assign")
    assert assigned.actor == org["admin"]
    assert assigned.changes["person"] == [None, org["infra_engineer"].display_name]
    identity.refresh_from_db()
    identity.kind = "api_key"
    identity.save()
    changed = entries("identity.update")[-1]
    assert changed.changes == {"kind": ["user_id", "api_key"]}


def test_column_mappings_are_recorded(org):
    admin = logged_in(org["admin"])
    form = {
        "step": "save",
        "headers": json.dumps(["When", "Who", "Prompt tokens"]),
        "name": "proxy",
        "column_day": "When",
        "column_identity": "Who",
        "column_input_tokens": "Prompt tokens",
        "identity_kind": "email",
        "provider": "other",
        "currency": "USD",
    }
    assert admin.post("/imports/mappings/", form).status_code == 302
    (created,) = entries("columnmapping.create")
    assert created.actor == org["admin"] and created.object_repr == "proxy"


def test_connection_changes_are_recorded_but_never_the_key(org):
    connection = connection_create(provider="openai", name="org", api_key=SECRET_KEY_OF_PROVIDER)
    api = APIClient()
    api.force_authenticate(org["admin"])
    api.patch(f"/api/v1/connections/{connection.pk}/", {"schedule": "5 * * * *"}, format="json")
    api.patch(f"/api/v1/connections/{connection.pk}/", {"api_key": "sk-admin-another-key-0123456789"}, format="json")
    changes = [e.changes for e in entries("providerconnection.update")]
    assert changes[0] == {"schedule": ["0 * * * *", "5 * * * *"]}
    assert changes[1] == {"encrypted_api_key": [KEY_CHANGED, KEY_CHANGED]}
    connection.refresh_from_db()
    everything = json.dumps([[e.changes, e.additional_data, e.object_repr] for e in AuditEntry.objects.all()])
    assert "sk-admin" not in everything
    assert bytes(connection.encrypted_api_key).decode() not in everything


def test_exports_record_who_which_page_and_which_filters(org):
    client = logged_in(org["product_manager"].user)
    response = client.get("/?format=csv&period=week&date=2026-09-15&provider=openai")
    assert response.status_code == 200
    (export,) = entries("export")
    assert export.actor == org["product_manager"].user
    assert export.additional_data["page"] == "people-ranking"
    assert export.additional_data["filters"] == {
        "format": "csv",
        "period": "week",
        "date": "2026-09-15",
        "provider": "openai",
    }
    assert export.object_repr.startswith("tokenboard-people-")
    client.get(f"/teams/{org['product'].pk}/members.csv?period=month")
    assert entries("export")[-1].additional_data["page"] == "team-members-csv"


def test_watermarked_exports_in_share_safe_mode_are_recorded_too(org, settings):
    settings.TOKENBOARD_SHARE_SAFE = True  # on in production: the watermark must not bypass the audit trail
    client = logged_in(org["product_manager"].user)
    response = client.get("/?format=csv&period=week&date=2026-09-15")
    assert response.status_code == 200 and "watermark" in response.content.decode()
    (export,) = entries("export")
    assert export.actor == org["product_manager"].user
    assert export.additional_data["page"] == "people-ranking"


def test_api_token_creation_and_revocation_are_recorded(org):
    client = logged_in(org["infra_engineer"].user)
    client.post("/profile/", {"action": "create_token", "name": "laptop"})
    (created,) = entries("api_token.create")
    assert created.actor == org["infra_engineer"].user and "laptop" not in json.dumps(created.additional_data or {})
    token_id = created.object_pk
    client.post("/profile/", {"action": "revoke_token", "token": token_id})
    (revoked,) = entries("api_token.revoke")
    assert revoked.object_pk == token_id and revoked.actor == org["infra_engineer"].user


def test_role_changes_and_price_changes_are_recorded(org):
    admin = logged_in(org["admin"])
    user = org["infra_engineer"].user
    form = {"username": user.username, "is_active": "on", "is_staff": "on", "date_joined_0": "2026-01-01"}
    form |= {"date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"}
    assert admin.post(f"/admin/auth/user/{user.pk}/change/", form).status_code == 302
    role = [e for e in entries("role.change") if "is_staff" in (e.changes or {})][-1]
    assert role.actor == org["admin"] and role.changes["is_staff"] == [False, True]
    org["platform"].managers.remove(org["platform_manager"])
    manager_change = entries("role.change")[-1]
    assert manager_change.changes["managers"]["operation"] == "delete"

    price = ModelPrice.objects.create(
        provider="openai",
        model_pattern="audit-test-*",
        input_per_mtok=Decimal("1.25"),
        cache_read_per_mtok=Decimal("0.125"),
        cache_write_per_mtok=Decimal("0"),
        output_per_mtok=Decimal("10"),
    )
    price.output_per_mtok = Decimal("12")
    price.save()
    old, new = entries("modelprice.update")[-1].changes["output_per_mtok"]
    assert Decimal(old) == 10 and Decimal(new) == 12


def test_an_api_request_names_the_token_owner_as_the_actor(org):
    identity = IdentityFactory(value="u-7")
    _, token = api_token_create(user=org["admin"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (
        api.patch(f"/api/v1/identities/{identity.pk}/", {"person": org["infra_engineer"].pk}, format="json").status_code
        == 200
    )
    assert entries("identity.assign")[-1].actor == org["admin"]


# --- append-only ---------------------------------------------------------------------------------------------


def test_entries_cannot_be_changed_or_deleted_through_the_orm(db):
    entry = audit_record("export", summary="x.csv")
    entry.object_repr = "forged"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(object_repr="forged")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).object_repr == "x.csv"


def test_the_django_admin_shows_entries_but_cannot_add_change_or_delete_them(org):
    entry = audit_record("export", summary="x.csv")
    admin = logged_in(org["admin"])
    assert admin.get("/admin/usage/auditentry/").status_code == 200
    assert admin.get("/admin/usage/auditentry/add/").status_code == 403
    assert admin.post(f"/admin/usage/auditentry/{entry.pk}/change/", {"object_repr": "forged"}).status_code == 403
    assert admin.post(f"/admin/usage/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    admin.post("/admin/usage/auditentry/", bulk)
    assert AuditEntry.objects.filter(pk=entry.pk, object_repr="x.csv").exists()


# --- the page, its CSV and the API ---------------------------------------------------------------------------


@pytest.fixture
def some_entries(org):
    Client().post("/accounts/login/", {"username": "infra_engineer", "password": "wrong"})
    Client().post("/accounts/login/", {"username": "admin", "password": "pw"})
    logged_in(org["product_manager"].user).get("/?format=csv&period=month")
    return org


def test_only_admins_see_the_audit_page_and_api(some_entries):
    org = some_entries
    for person in ("infra_engineer", "product_manager"):
        client = logged_in(org[person].user)
        assert client.get("/audit/").status_code == 403
        assert client.get("/audit/?format=csv").status_code == 403
        assert client.get("/api/v1/audit/").status_code == 403
    assert Client().get("/api/v1/audit/").status_code == 401
    assert Client().get("/audit/").status_code == 302


def test_the_page_filters_and_its_csv_and_the_api_list_the_same_entries(some_entries):
    admin = logged_in(some_entries["admin"])
    page = admin.get("/audit/?event=login.failed").content.decode()
    assert "infra_engineer" in page and "people-ranking" not in page
    exported = admin.get("/audit/?event=login&format=csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    api = admin.get("/api/v1/audit/?event=login").json()
    expected = list(AuditEntry.objects.filter(event__startswith="login").order_by("-timestamp", "-pk"))
    assert [r["event"] for r in rows] == [e["event"] for e in api["results"]] == [e.event for e in expected]
    assert [r["actor"] for r in rows] == [e["actor"] for e in api["results"]]
    assert {"login", "login.failed"} <= {r["event"] for r in rows} and "export" not in {r["event"] for r in rows}
    assert admin.get("/api/v1/audit/?actor=product_manager").json()["results"][0]["event"] == "export"
    assert admin.get("/api/v1/audit/?since=not-a-date").status_code == 400
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert admin.get(f"/api/v1/audit/?since={tomorrow}").json()["results"] == []


def test_exporting_the_audit_trail_is_itself_recorded(some_entries):
    admin = logged_in(some_entries["admin"])
    admin.get("/audit/?event=export&format=csv")
    last = entries("export")[-1]
    assert last.additional_data["page"] == "audit-log" and last.additional_data["filters"]["event"] == "export"


# --- retention -----------------------------------------------------------------------------------------------


def test_the_purge_deletes_only_entries_past_the_retention_and_says_so(db, settings):
    settings.TOKENBOARD_AUDIT_RETENTION_DAYS = 30
    now = timezone.now()
    old = AuditEntry.objects.create(event="export", action=3, object_repr="old", timestamp=now - timedelta(days=31))
    recent = AuditEntry.objects.create(event="export", action=3, object_repr="new", timestamp=now - timedelta(days=29))
    assert audit_purge(now=now) == 1
    assert not AuditEntry.objects.filter(pk=old.pk).exists() and AuditEntry.objects.filter(pk=recent.pk).exists()
    assert entries("audit.purge")[0].additional_data["days"] == 30
    settings.TOKENBOARD_AUDIT_RETENTION_DAYS = 0
    assert audit_purge(now=now + timedelta(days=400)) == 0
    assert AuditEntry.objects.filter(pk=recent.pk).exists()


def test_the_purge_runs_daily_from_beat(db):
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    call_command("setup_periodic_tasks", stdout=io.StringIO())
    assert PeriodicTask.objects.get(task="usage.purge_audit").crontab.hour == "3"
