"""REST API routes: v1 under /api/v1/, the OpenAPI schema and its interactive docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from . import audit, budgets, catalog, connections, views

router = SimpleRouter()
router.register("imports", views.ImportViewSet, basename="import")
router.register("identities", views.IdentityViewSet, basename="identity")
router.register("allowances", budgets.AllowanceViewSet, basename="allowance")
router.register("budgets", budgets.TeamBudgetViewSet, basename="budget")

# Routes of /api/v1/ (URL names are namespaced "api-v1:").
v1_patterns = [
    path("leaderboard/people/", views.PeopleRankingView.as_view(), name="leaderboard-people"),
    path("leaderboard/teams/", views.TeamsRankingView.as_view(), name="leaderboard-teams"),
    path("people/<int:pk>/", views.PersonDetailView.as_view(), name="person-detail"),
    path("people/<int:pk>/usage/", views.PersonUsageView.as_view(), name="person-usage"),
    path("people/<int:pk>/allowance/", budgets.PersonAllowanceView.as_view(), name="person-allowance"),
    path("teams/<int:pk>/", views.TeamDetailView.as_view(), name="team-detail"),
    path("teams/<int:pk>/usage/", views.TeamUsageView.as_view(), name="team-usage"),
    path("usage/", views.UsageListView.as_view(), name="usage-list"),
    path("connections/", connections.ConnectionListView.as_view(), name="connection-list"),
    path("connections/<int:pk>/", connections.ConnectionDetailView.as_view(), name="connection-detail"),
    path("connections/<int:pk>/sync/", connections.ConnectionSyncView.as_view(), name="connection-sync"),
    path("connections/<int:pk>/test/", connections.ConnectionTestView.as_view(), name="connection-test"),
    path("audit/", audit.AuditListView.as_view(), name="audit-list"),
    path("models/", catalog.CatalogModelListView.as_view(), name="model-list"),
    path("models/unmapped/", catalog.UnmappedModelListView.as_view(), name="model-unmapped"),
    *router.urls,
]

urlpatterns: list = [
    path("v1/", include((v1_patterns, "api-v1"))),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file (?script), so the page needs no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
