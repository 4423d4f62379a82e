from django.contrib import admin

from usage import models
from usage.connection_forms import ProviderConnectionForm
from usage.services.connections import connection_delete, connection_save
from usage.services.standings import standings_mark_all, standings_mark_identities, standings_mark_people


class MarksPeopleDirty:
    """Edits here change who or which team usage counts for: the standings of those people's days are
    refreshed (usage.services.standings)."""

    @staticmethod
    def person_id_of(obj) -> int:
        return obj.pk

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        standings_mark_people([self.person_id_of(form.instance)])

    # Marked before the delete: once a person is gone, their identities name nobody and no day would be found.
    def delete_model(self, request, obj):
        standings_mark_people([self.person_id_of(obj)])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        standings_mark_people([self.person_id_of(obj) for obj in queryset])
        super().delete_queryset(request, queryset)


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    autocomplete_fields = ["team"]


@admin.register(models.Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "parent"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent", "managers"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "parent" in form.changed_data:
            standings_mark_all()  # every subtree above the team changes


@admin.register(models.Person)
class PersonAdmin(MarksPeopleDirty, admin.ModelAdmin):
    list_display = ["display_name", "email", "active", "show_name", "user"]
    list_filter = ["active", "show_name"]
    search_fields = ["display_name", "email"]
    readonly_fields = ["pseudonym"]
    autocomplete_fields = ["user"]
    inlines = [MembershipInline]


@admin.register(models.Membership)
class MembershipAdmin(MarksPeopleDirty, admin.ModelAdmin):
    list_display = ["person", "team", "start", "end"]
    list_filter = ["team"]
    search_fields = ["person__display_name", "person__email"]
    autocomplete_fields = ["person", "team"]

    @staticmethod
    def person_id_of(obj) -> int:
        return obj.person_id


@admin.register(models.Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["provider", "kind", "value", "person", "attribution", "shared_team", "owner_email", "label"]
    list_filter = ["provider", "kind", "attribution", ("person", admin.EmptyFieldListFilter)]
    search_fields = ["value", "owner_email", "label", "person__display_name", "person__email"]
    autocomplete_fields = ["person"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        standings_mark_identities([obj.pk])


@admin.register(models.ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "original_name",
        "source",
        "detected_format",
        "status",
        "rows_read",
        "rows_imported",
        "rows_rejected",
        "period_start",
        "period_end",
        "created_at",
    ]
    list_filter = ["status", "source", "detected_format"]
    search_fields = ["original_name", "sha256"]
    readonly_fields = [f.name for f in models.ImportBatch._meta.fields]


@admin.register(models.UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "day",
        "provider",
        "account",
        "identity",
        "model",
        "usage_kind",
        "total_tokens",
        "cost_usd",
        "cost_source",
    ]
    list_filter = ["provider", "usage_kind", "cost_source"]
    search_fields = ["model", "identity__value", "account"]
    date_hierarchy = "day"
    list_select_related = ["identity"]
    readonly_fields = [f.name for f in models.UsageRecord._meta.fields]


@admin.register(models.ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "provider",
        "model_pattern",
        "effective_from",
        "input_per_mtok",
        "cache_read_per_mtok",
        "cache_write_per_mtok",
        "output_per_mtok",
    ]
    list_filter = ["provider"]
    search_fields = ["model_pattern"]


@admin.register(models.CurrencyRate)
class CurrencyRateAdmin(admin.ModelAdmin):
    list_display = ["currency", "usd_per_unit"]


@admin.register(models.ColumnMapping)
class ColumnMappingAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "created_at"]


@admin.register(models.ProviderConnection)
class ProviderConnectionAdmin(admin.ModelAdmin):
    """Saves go through the connections service: the key is encrypted (write-only) and the beat task synced."""

    form = ProviderConnectionForm
    list_display = ["name", "provider", "enabled", "schedule", "last_success_at", "last_rows_pulled", "failing"]
    list_filter = ["provider", "enabled", "failing"]
    readonly_fields = ["last_success_at", "last_error", "last_error_at", "last_rows_pulled", "failing", "created_at"]

    def save_model(self, request, obj, form, change):
        connection_save(obj, api_key=form.cleaned_data.get("api_key"))

    def delete_model(self, request, obj):
        connection_delete(obj)

    def delete_queryset(self, request, queryset):
        for connection in queryset:
            connection_delete(connection)


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = ["digest", "prefix"]


# --- Audit trail (issue 11): read-only; django-auditlog's own admin for it is replaced ------------------------
if admin.site.is_registered(models.AuditEntry):
    admin.site.unregister(models.AuditEntry)


@admin.register(models.AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Append-only: nobody adds, changes or deletes entries here (the audit page has filters and the CSV)."""

    list_display = ["timestamp", "event", "actor", "remote_addr", "object_repr"]
    list_filter = ["event"]
    search_fields = ["object_repr", "actor__username", "actor_email"]
    date_hierarchy = "timestamp"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
