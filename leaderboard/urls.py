from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from usage import login, sso

from . import views, views_budgets

urlpatterns = [
    path("", views.people_ranking_page, name="people-ranking"),
    path("overview/", views.overview_page, name="overview"),
    path("teams/", views.teams_ranking_page, name="teams-ranking"),
    path("teams/<int:team_id>/", views.team_page, name="team"),
    path("teams/<int:team_id>/members.csv", views.team_members_csv, name="team-members-csv"),
    path("people/<int:person_id>/", views.person_page, name="person"),
    path("movers/", views.movers_page, name="movers"),
    # Allowances, budgets and notifications (issue 13).
    path("teams/<int:team_id>/budget/", views_budgets.team_budget_page, name="team-budget"),
    path("budgets/", views_budgets.budgets_page, name="budgets"),
    path("notifications/", views_budgets.notifications_page, name="notifications"),
    path("profile/", views.profile_page, name="profile"),
    path("accounts/login/", login.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/authenticate/", sso.sso_login, name="sso-login"),
    path("oidc/callback/", sso.sso_callback, name="sso-callback"),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico before (and without) reading the page's <link rel="icon">.
    path("favicon.ico", views.favicon, name="favicon"),
    path("api/", include("leaderboard.api.urls")),
    path("", include("usage.urls")),
]
