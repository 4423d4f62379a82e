"""Admin pages of the write side: uploads, imports, identities, provider connections."""

from django.urls import path

from usage import views as usage_views
from usage import views_audit, views_catalog, views_connections, views_mappings, views_review, views_sources

urlpatterns: list = [
    # Imports and identities (admins): the upload page, progress, results, history, identity mapping.
    path("imports/", usage_views.imports_list_page, name="imports-list"),
    path("imports/upload/", usage_views.imports_upload_page, name="imports-upload"),
    path("imports/progress/", usage_views.imports_progress_page, name="imports-progress"),
    path("imports/reprocess/", usage_views.imports_reprocess, name="imports-reprocess"),
    path("imports/<int:pk>/", usage_views.import_detail_page, name="import-detail"),
    path("imports/<int:pk>/errors.csv", usage_views.import_errors_csv, name="import-errors-csv"),
    path("imports/<int:pk>/retry/", usage_views.import_retry, name="import-retry"),
    path("imports/mappings/", views_mappings.column_mappings_page, name="column-mappings"),
    path("identities/", usage_views.identities_page, name="identities-list"),
    path("identities/people/", usage_views.people_search, name="identities-people-search"),
    path("identities/bulk/", usage_views.identities_bulk_assign, name="identities-bulk"),
    path("identities/<int:pk>/assign/", usage_views.identity_assign_view, name="identity-assign"),
    # Source precedence (admins): which source counts where two report the same use.
    path("sources/", views_sources.source_precedence_page, name="source-precedence"),
    path("sources/<int:pk>/delete/", views_sources.source_precedence_delete, name="source-precedence-delete"),
    path("reconciliation/", views_sources.reconciliation_page, name="reconciliation"),
    path("identities/<int:pk>/attribution/", usage_views.identity_attribution_view, name="identity-attribution"),
    # Model catalog (admins): canonical models, families, the spellings sources use, unknown names to map.
    path("models/", views_catalog.model_catalog_page, name="model-catalog"),
    path("models/new/", views_catalog.catalog_model_save_view, name="catalog-model-create"),
    path("models/<int:pk>/edit/", views_catalog.catalog_model_save_view, name="catalog-model-edit"),
    path("models/<int:pk>/delete/", views_catalog.catalog_model_delete_view, name="catalog-model-delete"),
    path("models/aliases/", views_catalog.model_alias_save_view, name="model-alias-save"),
    path("models/aliases/<int:pk>/delete/", views_catalog.model_alias_delete_view, name="model-alias-delete"),
    # Provider connections (admins): health, sync now, test, create/edit.
    path("connections/", views_connections.connections_page, name="connections-list"),
    path("connections/new/", views_connections.connection_edit_page, name="connection-create"),
    path("connections/<int:pk>/edit/", views_connections.connection_edit_page, name="connection-edit"),
    path("connections/<int:pk>/sync/", views_connections.connection_sync_view, name="connection-sync"),
    path("connections/<int:pk>/test/", views_connections.connection_test_view, name="connection-test"),
    path("connections/<int:pk>/delete/", views_connections.connection_delete_view, name="connection-delete"),
    # Audit trail (admins): filters and CSV export (?format=csv).
    path("audit/", views_audit.audit_page, name="audit-log"),
    # Anomaly review (admins decide; the held person adds a note from their page).
    path("review/", views_review.review_page, name="review"),
    path("review/<int:pk>/decide/", views_review.review_decide, name="review-decide"),
    path("review/<int:pk>/note/", views_review.review_note, name="review-note"),
]
