"""The role matrix (issue 11): every URL pattern × anonymous, engineer, manager of A, manager of B, admin, checked
on what each role gets to read, not only on status codes.

How it works
- `url_patterns()` walks `get_resolver()` (every URL conf, namespaces included). Each pattern is keyed by its
  namespaced URL name ("api-v1:person-detail"), or by its route when it has no name.
  `test_every_url_pattern_has_a_row` fails for a pattern without a row in MATRIX, and for a row whose pattern
  is gone.
- MATRIX is one table keyed by URL name. Each row is a list of Cases: which objects of the `world` fixture fill
  the path parameters ({"person_id": "paul"}), an optional query string ("metric=cost_usd&team={product}";
  `{name}` is the id of a world object), the method, and the expected status per role in ROLES order
  (anonymous, engineer, manager_a, manager_b, admin).
- Every answer with a body is then checked against what the role may see (usage.access, restated here as
  PERSON_DETAIL and TEAM_DETAIL so the test does not trust the code it tests): no email of a person, and no
  cost figure of a person or team, outside the role's detail. A Case with `cost_scope` asks for a ranking by
  cost whose computed team filter is `cost_scope` ("org" for everyone); where the role may not rank by cost
  there (COST_TEAMS), the API must answer 403 and a page must rank by tokens and say so.
- The Django admin site's ~100 generated patterns are one row, "admin:*", checked by one rule: staff only.

Adding a URL: add a row to MATRIX, e.g.
    "audit-list": [Case(expect=(302, 403, 403, 403, 200))],
Statuses by convention: pages answer anonymous users 302 (to the login page) and the API 401; an admin gate
answers 403; a POST-only view answers GET with 405 (after the login check). Give a row one Case per distinct
access rule (own / managed / not managed object; cost ranking allowed / refused).

The world: Engineering → {Platform → Infra, Product}. Manager A (Pat) manages Platform (so Infra too); manager
B (Prue) manages Product; the engineer is Ivy (Infra). Igor (Infra) and Paul (Product) have no login. Everyone
has usage today (and 40 days ago, so previous windows rank) with a cost whose figures, and their teams' sums,
appear nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from tests.factories import ImportBatchFactory, person_in_team, usage_for
from usage.models import (
    Allowance,
    CatalogModel,
    ColumnMapping,
    Identity,
    ModelAlias,
    Person,
    SourcePrecedence,
    TeamBudget,
    UsageHold,
)
from usage.services.connections import connection_create

ROLES = ("anonymous", "engineer", "manager_a", "manager_b", "admin")
PEOPLE = ("ivy", "igor", "pat", "prue", "paul")
TEAMS = ("engineering", "platform", "infra", "product")

# Who may see whose detail (email, cost) — the rules of usage.access, restated for the world below.
PERSON_DETAIL = {
    "anonymous": set(),
    "engineer": {"ivy"},
    "manager_a": {"pat", "ivy", "igor"},
    "manager_b": {"prue", "paul"},
    "admin": set(PEOPLE),
}
TEAM_DETAIL = {
    "anonymous": set(),
    "engineer": set(),
    "manager_a": {"platform", "infra"},
    "manager_b": {"product"},
    "admin": set(TEAMS),
}
# The team filters under which a role may rank by cost ("org": no filter, everyone ranked).
COST_TEAMS = {
    "anonymous": set(),
    "engineer": set(),
    "manager_a": {"platform", "infra"},
    "manager_b": {"product"},
    "admin": {"org", *TEAMS},
}
# Each person's cost today and 40 days ago (digits chosen so that no figure, nor any team's sum, is a
# substring of another); teams sum their subtree.
COSTS = {
    "ivy": Decimal("3517.29"),
    "igor": Decimal("1208.53"),
    "pat": Decimal("6043.81"),
    "prue": Decimal("2384.97"),
    "paul": Decimal("8926.44"),
}
TOKENS = {"ivy": 4_100_000, "igor": 900_000, "pat": 700_000, "prue": 300_000, "paul": 2_600_000}
TEAM_PEOPLE = {
    "engineering": set(PEOPLE),
    "platform": {"ivy", "igor", "pat"},
    "infra": {"ivy", "igor"},
    "product": {"prue", "paul"},
}


@dataclass(frozen=True)
class Case:
    expect: tuple[int, int, int, int, int]  # per role, in ROLES order
    kwargs: dict[str, str] = field(default_factory=dict)  # path parameter → world object
    query: str = ""
    method: str = "get"
    data: str = ""  # a name in REQUEST_BODIES
    cost_scope: str = ""  # a ranking by cost with this team filter ("org": none) is asked for


PAGE = (302, 200, 200, 200, 200)
ADMIN_PAGE = (302, 403, 403, 403, 200)
API = (401, 200, 200, 200, 200)
ADMIN_API = (401, 403, 403, 403, 200)

MATRIX: dict[str, list[Case]] = {
    # --- pages -------------------------------------------------------------------------------------------
    "people-ranking": [
        Case(PAGE),
        Case(PAGE, query="format=csv"),
        Case(PAGE, query="period=30d&q=i"),
        Case(PAGE, query="metric=cost_usd", cost_scope="org"),
        Case(PAGE, query="metric=cost_usd&team={platform}", cost_scope="platform"),
        Case(PAGE, query="metric=cost_usd&team={product}&format=csv", cost_scope="product"),
    ],
    "teams-ranking": [
        Case(PAGE),
        Case(PAGE, query="format=csv"),
        Case(PAGE, query="per=member&format=csv"),
        Case(PAGE, query="metric=cost_usd", cost_scope="org"),
        Case(PAGE, query="metric=cost_usd&team={platform}", cost_scope="platform"),
        Case(PAGE, query="metric=cost_usd&team={product}&format=csv", cost_scope="product"),
    ],
    "team": [
        Case(PAGE, kwargs={"team_id": "engineering"}),
        Case(PAGE, kwargs={"team_id": "platform"}),
        Case(PAGE, kwargs={"team_id": "infra"}),
        Case(PAGE, kwargs={"team_id": "product"}),
        Case(PAGE, kwargs={"team_id": "platform"}, query="metric=cost_usd", cost_scope="platform"),
        # The team filter names a team the viewer manages; the page ranks Engineering's subtree.
        Case(PAGE, kwargs={"team_id": "engineering"}, query="metric=cost_usd&team={product}", cost_scope="engineering"),
    ],
    "team-members-csv": [
        Case((302, 403, 403, 403, 200), kwargs={"team_id": "engineering"}),
        Case((302, 403, 200, 403, 200), kwargs={"team_id": "platform"}),
        Case((302, 403, 200, 403, 200), kwargs={"team_id": "infra"}),
        Case((302, 403, 403, 200, 200), kwargs={"team_id": "product"}),
    ],
    "person": [
        *[Case(PAGE, kwargs={"person_id": person}) for person in PEOPLE],
        # The person page ranks everyone (it drops the team filter), whatever team is named.
        Case(PAGE, kwargs={"person_id": "ivy"}, query="metric=cost_usd&team={platform}", cost_scope="org"),
        Case(PAGE, kwargs={"person_id": "ivy"}, query="metric=cost_usd&team={product}", cost_scope="org"),
        Case(PAGE, kwargs={"person_id": "paul"}, query="metric=cost_usd&team={product}", cost_scope="org"),
    ],
    "movers": [
        Case(PAGE),
        Case(PAGE, query="metric=cost_usd", cost_scope="org"),
        Case(PAGE, query="metric=cost_usd&team={product}", cost_scope="product"),
    ],
    "profile": [Case(PAGE)],
    "login": [Case((200, 200, 200, 200, 200))],
    "logout": [Case((302, 302, 302, 302, 302), method="post")],
    # --- admin pages (usage.urls) ------------------------------------------------------------------------
    "imports-list": [Case(ADMIN_PAGE)],
    "imports-upload": [Case(ADMIN_PAGE)],
    "imports-progress": [Case(ADMIN_PAGE, query="ids={import}")],
    "imports-reprocess": [Case((302, 405, 405, 405, 405)), Case((302, 403, 403, 403, 302), method="post")],
    "import-detail": [Case(ADMIN_PAGE, kwargs={"pk": "import"})],
    "import-errors-csv": [Case(ADMIN_PAGE, kwargs={"pk": "import"})],
    "import-retry": [Case((302, 403, 403, 403, 302), kwargs={"pk": "import"}, method="post")],
    "column-mappings": [Case(ADMIN_PAGE)],
    "identities-list": [Case(ADMIN_PAGE), Case(ADMIN_PAGE, query="assigned=all")],
    "identities-people-search": [Case(ADMIN_PAGE, query="person=iv")],
    "identities-bulk": [Case((302, 403, 403, 403, 400), method="post")],
    "identity-assign": [Case((302, 403, 403, 403, 302), kwargs={"pk": "identity"}, method="post", data="assign_form")],
    "connections-list": [Case(ADMIN_PAGE)],
    "connection-create": [Case(ADMIN_PAGE)],
    "connection-edit": [Case(ADMIN_PAGE, kwargs={"pk": "connection"})],
    "connection-sync": [Case((302, 403, 403, 403, 302), kwargs={"pk": "connection"}, method="post")],
    # An admin's POST would call the provider: the admin's is not sent (0); the others' must meet the gate.
    "connection-test": [
        Case((302, 405, 405, 405, 405), kwargs={"pk": "connection"}),
        Case((302, 403, 403, 403, 0), kwargs={"pk": "connection"}, method="post"),
    ],
    "connection-delete": [Case((302, 403, 403, 403, 302), kwargs={"pk": "connection"}, method="post")],
    # --- API -------------------------------------------------------------------------------------------
    "api-v1:leaderboard-people": [
        Case(API),
        Case(API, query="q=i&period=30d"),
        Case((401, 403, 403, 403, 200), query="metric=cost_usd", cost_scope="org"),
        Case((401, 403, 200, 403, 200), query="metric=cost_usd&team={platform}", cost_scope="platform"),
        Case((401, 403, 403, 200, 200), query="metric=cost_usd&team={product}", cost_scope="product"),
    ],
    "api-v1:leaderboard-teams": [
        Case(API),
        Case(API, query="per_capita=true"),
        Case((401, 403, 403, 403, 200), query="metric=cost_usd", cost_scope="org"),
        Case((401, 403, 403, 200, 200), query="metric=cost_usd&team={product}", cost_scope="product"),
    ],
    "api-v1:person-detail": [
        *[Case(API, kwargs={"pk": person}) for person in PEOPLE],
        Case((401, 403, 403, 403, 200), kwargs={"pk": "ivy"}, query="metric=cost_usd", cost_scope="org"),
        Case(
            (401, 403, 403, 200, 200),
            kwargs={"pk": "ivy"},
            query="metric=cost_usd&team={product}",
            cost_scope="product",
        ),
    ],
    "api-v1:person-usage": [
        Case((401, 200, 200, 403, 200), kwargs={"pk": "ivy"}),
        Case((401, 403, 200, 403, 200), kwargs={"pk": "igor"}),
        Case((401, 403, 403, 200, 200), kwargs={"pk": "paul"}),
    ],
    "api-v1:team-detail": [
        *[Case(API, kwargs={"pk": team}) for team in TEAMS],
        Case((401, 403, 200, 403, 200), kwargs={"pk": "platform"}, query="metric=cost_usd", cost_scope="platform"),
    ],
    "api-v1:team-usage": [
        Case((401, 403, 403, 403, 200), kwargs={"pk": "engineering"}),
        Case((401, 403, 200, 403, 200), kwargs={"pk": "platform"}),
        Case((401, 403, 200, 403, 200), kwargs={"pk": "infra"}),
        Case((401, 403, 403, 200, 200), kwargs={"pk": "product"}),
    ],
    "api-v1:usage-list": [
        Case((401, 403, 200, 200, 200)),
        Case((401, 403, 200, 403, 200), query="person={igor}"),
        Case((401, 403, 403, 200, 200), query="person={paul}"),
        Case((401, 403, 200, 403, 200), query="team={infra}"),
        Case((401, 403, 403, 200, 200), query="identity={paul_identity}"),
    ],
    "api-v1:connection-list": [Case(ADMIN_API)],
    "api-v1:connection-detail": [Case(ADMIN_API, kwargs={"pk": "connection"})],
    "api-v1:connection-sync": [Case((401, 403, 403, 403, 202), kwargs={"pk": "connection"}, method="post")],
    "api-v1:connection-test": [
        Case((401, 403, 403, 403, 405), kwargs={"pk": "connection"}),
        Case((401, 403, 403, 403, 0), kwargs={"pk": "connection"}, method="post"),
    ],
    "api-v1:import-list": [
        Case(ADMIN_API),
        Case((401, 403, 403, 403, 202), method="post", data="upload"),
    ],
    "api-v1:import-detail": [Case(ADMIN_API, kwargs={"pk": "import"})],
    "api-v1:identity-list": [Case(ADMIN_API), Case(ADMIN_API, query="assigned=false")],
    "api-v1:identity-detail": [
        Case((401, 403, 403, 403, 200), kwargs={"pk": "identity"}, method="patch", data="assign_json")
    ],
    "api-v1:audit-list": [Case(ADMIN_API), Case(ADMIN_API, query="event=login")],
    "api-v1:model-list": [Case(API)],
    "api-v1:model-unmapped": [Case(ADMIN_API)],
    "api-v1:person-allowance": [
        Case((401, 200, 200, 403, 200), kwargs={"pk": "ivy"}),
        Case((401, 403, 200, 403, 200), kwargs={"pk": "igor"}),
        Case((401, 403, 403, 200, 200), kwargs={"pk": "paul"}),
    ],
    "api-v1:allowance-list": [Case(API)],
    "api-v1:allowance-detail": [Case((401, 200, 200, 404, 200), kwargs={"pk": "allowance"})],
    "api-v1:allowance-import-csv": [Case((401, 403, 403, 403, 400), method="post")],
    "api-v1:budget-list": [Case(API)],
    "api-v1:budget-detail": [Case((401, 404, 200, 404, 200), kwargs={"pk": "budget"})],
    # --- pages of issues 10, 11 and 13 -------------------------------------------------------------------
    "source-precedence": [Case(ADMIN_PAGE)],
    "source-precedence-delete": [Case((302, 403, 403, 403, 302), kwargs={"pk": "precedence"}, method="post")],
    "reconciliation": [Case(ADMIN_PAGE), Case(ADMIN_PAGE, query="month=2026-09")],
    "identity-attribution": [
        Case((302, 403, 403, 403, 302), kwargs={"pk": "identity"}, method="post", data="attribution_form")
    ],
    "model-catalog": [Case(ADMIN_PAGE)],
    "catalog-model-create": [Case((302, 403, 403, 403, 302), method="post", data="catalog_model_form")],
    "catalog-model-edit": [
        Case((302, 403, 403, 403, 302), kwargs={"pk": "catalog_model"}, method="post", data="catalog_model_form")
    ],
    "catalog-model-delete": [Case((302, 403, 403, 403, 302), kwargs={"pk": "catalog_model"}, method="post")],
    "model-alias-save": [Case((302, 403, 403, 403, 302), method="post", data="alias_form")],
    "model-alias-delete": [Case((302, 403, 403, 403, 302), kwargs={"pk": "alias"}, method="post")],
    "audit-log": [Case(ADMIN_PAGE), Case(ADMIN_PAGE, query="format=csv")],
    "sso-login": [Case((404, 404, 404, 404, 404))],  # single sign-on is not configured in tests
    "sso-callback": [Case((404, 404, 404, 404, 404))],
    "budgets": [Case(ADMIN_PAGE)],
    "notifications": [Case(ADMIN_PAGE)],
    "team-budget": [
        Case((302, 403, 200, 403, 200), kwargs={"team_id": "platform"}),
        Case((302, 403, 403, 200, 200), kwargs={"team_id": "product"}),
    ],
    # --- pages of issues 12 and 14 ----------------------------------------------------------------------------
    "overview": [Case(PAGE), Case(PAGE, query="period=all")],
    "favicon": [Case((301, 301, 301, 301, 301))],  # no login: browsers ask for it before any page
    "review": [Case(ADMIN_PAGE)],
    "review-decide": [Case((302, 403, 403, 403, 302), kwargs={"pk": "hold"}, method="post", data="decide_form")],
    # Only the person whose day is held adds a note (the engineer, Ivy, here).
    "review-note": [Case((302, 302, 403, 403, 403), kwargs={"pk": "hold"}, method="post", data="note_form")],
    "api-schema": [Case(API)],
    "api-docs": [Case(API)],
}
ADMIN_SITE = "admin:*"  # the Django admin site's generated patterns: one rule, staff only (see test_admin_site)


# --- the URL confs -----------------------------------------------------------------------------------------


def url_patterns(patterns=None, prefix: str = "", namespace: str = ""):
    """(key, route, pattern) for every URL pattern, depth first."""
    patterns = get_resolver().url_patterns if patterns is None else patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield name or route, route, pattern


def matrix_key(key: str, route: str) -> str:
    return ADMIN_SITE if route.startswith("admin/") else key


def test_every_url_pattern_has_a_row():
    keys = {matrix_key(key, route) for key, route, _pattern in url_patterns()}
    missing = sorted(keys - set(MATRIX) - {ADMIN_SITE})
    assert not missing, f"URL patterns without a row in the role matrix (add them to MATRIX): {missing}"
    gone = sorted(set(MATRIX) - keys)
    assert not gone, f"rows of the role matrix whose URL pattern is gone: {gone}"
    assert ADMIN_SITE in keys


def test_the_matrix_finds_a_new_url_without_a_row(settings):
    """A URL conf that gains a pattern fails the coverage check (the check is not vacuous)."""
    from django.urls import clear_url_caches, path

    import leaderboard.urls

    settings.ROOT_URLCONF = type(
        "urls", (), {"urlpatterns": [*leaderboard.urls.urlpatterns, path("new/", lambda r: None, name="new-page")]}
    )
    clear_url_caches()
    try:
        with pytest.raises(AssertionError, match="new-page"):
            test_every_url_pattern_has_a_row()
    finally:
        clear_url_caches()


# --- the world ---------------------------------------------------------------------------------------------


@pytest.fixture
def world(org):
    today = timezone.localdate()
    people = {
        "ivy": org["infra_engineer"],
        "igor": person_in_team(org["infra"], display_name="Igor Infra"),
        "pat": org["platform_manager"],
        "prue": org["product_manager"],
        "paul": org["product_engineer"],
    }
    for name, person in people.items():
        Person.objects.filter(pk=person.pk).update(email=f"{name}.secret@acme.example")
        usage_for(person, day=today, tokens=TOKENS[name], cost_usd=COSTS[name])
        usage_for(person, day=today - timedelta(days=40), tokens=TOKENS[name] // 2, cost_usd=COSTS[name])
    batch = ImportBatchFactory(status="failed", original_name="broken.csv")
    connection = connection_create(provider="openai", name="OpenAI org", api_key="sk-role-matrix-secret")
    ColumnMapping.objects.create(name="mapping", columns={"day": "Date"})
    catalog_model = CatalogModel.objects.create(name="Role Matrix 1", family="Role Matrix", vendor="Test")
    alias = ModelAlias.objects.create(spelling="role-matrix-1-beta", model=catalog_model)
    allowance = Allowance.objects.create(person=people["ivy"], tokens=10_000_000, start=today.replace(day=1))
    hold = UsageHold.objects.create(person=people["ivy"], day=today - timedelta(days=40), rules=["baseline"])
    budget = TeamBudget.objects.create(team=org["platform"], tokens=50_000_000, thresholds=[50, 80, 100], start=today)
    ids = {name: person.pk for name, person in people.items()}
    ids.update({team: org[team].pk for team in TEAMS})
    ids.update(
        {
            "import": batch.pk,
            "connection": connection.pk,
            "identity": Identity.objects.filter(person=people["ivy"]).first().pk,
            "paul_identity": Identity.objects.filter(person=people["paul"]).first().pk,
            "admin_user": org["admin"].pk,
            "precedence": SourcePrecedence.objects.first().pk,
            "catalog_model": catalog_model.pk,
            "alias": alias.pk,
            "allowance": allowance.pk,
            "budget": budget.pk,
            "hold": hold.pk,
        }
    )
    users = {
        "engineer": people["ivy"].user,
        "manager_a": people["pat"].user,
        "manager_b": people["prue"].user,
        "admin": org["admin"],
    }
    return {"ids": ids, "users": users}


def client_for(world, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


def request_body(name: str, ids: dict):
    bodies = {
        "": {},
        "upload": {"file": SimpleUploadedFile("usage.json", b'{"object":"page","data":[]}')},
        "assign_form": {"target": ids["pat"]},
        "assign_json": json.dumps({"person": ids["pat"], "confirm": True}),
        "attribution_form": {"attribution": "service"},
        "catalog_model_form": {"name": "Role Matrix 2", "family": "Role Matrix", "vendor": "Test"},
        "decide_form": {"status": "cleared", "note": "a genuine heavy day"},
        "note_form": {"note": "a long migration that day"},
        "alias_form": {"spelling": "role-matrix-2-beta", "model": ids["catalog_model"]},
    }
    return bodies[name]


def send(client: Client, case: Case, url: str, ids: dict):
    if case.method == "patch":
        return client.patch(url, request_body(case.data, ids), content_type="application/json")
    if case.method == "post":
        return client.post(url, request_body(case.data, ids))
    return client.get(url)


# --- what each role may read -------------------------------------------------------------------------------


def figure_texts(amount: Decimal) -> set[str]:
    """How a cost is written on pages ($3,517.29), in CSV exports (3517.290000) and in JSON (3517.290000)."""
    return {f"{amount:.2f}", f"{amount:,.2f}"}


def forbidden_texts(role: str) -> dict[str, str]:
    """text → what it would leak: emails and cost figures (people's and teams' sums, in any window) of those
    outside the role's detail, except texts that are also an allowed figure."""
    hidden, allowed = {}, set()
    for name in PEOPLE:
        email = f"{name}.secret@acme.example"
        costs = figure_texts(COSTS[name]) | figure_texts(COSTS[name] * 2)
        if name in PERSON_DETAIL[role]:
            allowed |= costs
        else:
            hidden[email] = f"{name}'s email"
            hidden.update(dict.fromkeys(costs, f"{name}'s cost"))
    for team in TEAMS:
        total = sum(COSTS[name] for name in TEAM_PEOPLE[team])
        costs = figure_texts(total) | figure_texts(total * 2)
        if team in TEAM_DETAIL[role]:
            allowed |= costs
        else:
            hidden.update(dict.fromkeys(costs, f"{team}'s cost"))
    return {text: what for text, what in hidden.items() if text not in allowed}


def check_content(role: str, case: Case, url: str, response) -> None:
    body = response.content.decode(errors="replace")
    for text, what in forbidden_texts(role).items():
        assert text not in body, f"{role} GET {url}: {what} ({text}) is shown"
    if not case.cost_scope:
        return
    allowed = case.cost_scope in COST_TEAMS[role]
    ranked_by_cost = "by cost (usd)" in body.lower() or "cost_usd.csv" in response.get("Content-Disposition", "")
    if url.startswith("/api/"):
        assert allowed, f"{role} {url}: a ranking by cost the role may not see is answered"
    else:
        assert ranked_by_cost == allowed, f"{role} {url}: ranked by cost {ranked_by_cost}, allowed {allowed}"
        if not allowed and response["Content-Type"].startswith("text/html"):
            assert "Ranked by total tokens instead" in body


@pytest.mark.parametrize("key", sorted(MATRIX))
def test_role_matrix(world, key):
    ids = world["ids"]
    for number, case in enumerate(MATRIX[key]):
        url = _url(key, case, ids)
        for role, expected in zip(ROLES, case.expect, strict=True):
            if expected == 0:
                continue  # not sent as this role (see the row's comment)
            response = send(client_for(world, role), case, url, ids)
            where = f"{key} case {number} {case.method.upper()} {url} as {role}"
            assert response.status_code == expected, f"{where}: {response.status_code} {response.content[:300]!r}"
            if response.status_code == 302 and role == "anonymous":
                assert response["Location"].startswith("/accounts/login/"), where
            if response.status_code == 403 and url.startswith("/api/"):
                assert response.json()["detail"], where  # says why
            if response.status_code < 300:
                check_content(role, case, url, response)


def _url(key: str, case: Case, ids: dict) -> str:
    url = reverse(key, kwargs={name: ids[value] for name, value in case.kwargs.items()})
    return f"{url}?{case.query.format(**ids)}" if case.query else url


# --- the Django admin site ---------------------------------------------------------------------------------


def _admin_kwargs(key: str, route: str, pattern: URLPattern, ids: dict) -> dict:
    """Fill an admin pattern's parameters with an existing object where there is one."""
    kwargs = {}
    for name in pattern.pattern.converters or pattern.pattern.regex.groupindex:
        if name == "id":  # the user whose password an admin changes
            kwargs[name] = ids["admin_user"]
        elif name == "object_id":
            model = None
            if key.startswith("admin:") and key.count("_") >= 2:
                app_model = key.removeprefix("admin:").rsplit("_", 1)[0]
                for app in apps.get_app_configs():
                    if app_model.startswith(app.label + "_"):
                        model = app.models.get(app_model.removeprefix(app.label + "_"))
            if model is None:
                kwargs[name] = ids["ivy"]
            else:
                kwargs[name] = model.objects.values_list("pk", flat=True).first() or 0
        elif name == "content_type_id":
            kwargs[name] = ContentType.objects.get_for_model(Person).pk
        elif name == "app_label":
            kwargs[name] = "usage"
        else:
            kwargs[name] = "missing"
    return kwargs


ADMIN_PATTERNS = [
    (key, route, pattern) for key, route, pattern in url_patterns() if matrix_key(key, route) == ADMIN_SITE
]


@pytest.mark.parametrize(("key", "route", "pattern"), ADMIN_PATTERNS, ids=[route for _k, route, _p in ADMIN_PATTERNS])
def test_admin_site(world, key, route, pattern):
    """Staff only: everyone else is sent to a login page (the admin's own login and logout answer anyone)."""
    ids = world["ids"]
    if key == route:  # an unnamed pattern: its regex or converter route, filled in by hand
        url = "/" + route.replace("<path:object_id>", str(ids["ivy"])).replace("(?P<url>.*)$", "missing/")
    else:
        url = reverse(key, kwargs=_admin_kwargs(key, route, pattern, ids))
    for role in ROLES:
        client = client_for(world, role)
        response = client.post(url) if key == "admin:logout" else client.get(url)
        where = f"GET {url} as {role}"
        if key in ("admin:login", "admin:logout"):  # open to anyone; logging out discloses nothing
            assert response.status_code in (200, 302), where
        elif role != "admin":
            assert response.status_code == 302, f"{where}: {response.status_code}"
            assert "login/" in response["Location"], where
        else:
            assert response.status_code < 500, where


def test_the_hidden_figures_are_shown_where_allowed(world):
    """The content checks look for texts that do appear where the role may see them (not a vacuous check)."""
    admin_csv = client_for(world, "admin").get("/?format=csv").content.decode()
    assert all(f"{COSTS[name]:.2f}" in admin_csv and f"{name}.secret@acme.example" in admin_csv for name in PEOPLE)
    manager_teams = client_for(world, "manager_a").get("/teams/").content.decode()
    platform = sum(COSTS[name] for name in TEAM_PEOPLE["platform"])
    assert f"{platform:,.2f}" in manager_teams
    assert forbidden_texts("manager_a").get(f"{COSTS['paul']:,.2f}") == "paul's cost"
