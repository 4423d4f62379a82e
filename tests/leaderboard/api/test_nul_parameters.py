"""`?model=%00` / `?provider=%00` (and the search text) on every page and endpoint: a 400 naming the parameter on
the API, the filter dropped with a warning on pages; never a 500 (PostgreSQL refuses NUL in a string)."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import ImportBatchFactory

pytestmark = pytest.mark.django_db

BAD = {"model": "\x00", "provider": "\x00", "q": "\x00", "person": "\x00"}

RANKING_API = [
    "/api/v1/leaderboard/people/",
    "/api/v1/leaderboard/teams/",
    "/api/v1/people/{person}/",
    "/api/v1/people/{person}/usage/",
    "/api/v1/teams/{team}/",
    "/api/v1/teams/{team}/usage/",
    "/api/v1/usage/",
]
RANKING_PAGES = ["/", "/teams/", "/teams/{team}/", "/teams/{team}/members.csv", "/people/{person}/", "/movers/"]


@pytest.fixture
def ids(org, usage):
    return {"person": org["infra_engineer"].pk, "team": org["platform"].pk}


@pytest.mark.parametrize("param", ["model", "provider"])
@pytest.mark.parametrize("route", RANKING_API)
def test_the_api_answers_400_naming_the_parameter(clients, ids, route, param):
    response = clients["admin"].get(route.format(**ids), {param: "\x00"})
    assert response.status_code == 400, response.content[:300]
    assert param in response.json()


@pytest.mark.parametrize("route", RANKING_PAGES)
def test_pages_drop_the_filter_with_a_warning(client, org, ids, route):
    client.force_login(org["admin"])
    response = client.get(route.format(**ids), {"model": "\x00"})
    assert response.status_code == 200
    if not route.endswith(".csv"):
        assert "Ignored a bad filter — model" in response.content.decode()


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def test_no_get_route_answers_500(client, org, ids, settings):
    """Every GET route of the URL conf, with every id filled in, and the NUL parameters on top."""
    batch = ImportBatchFactory()
    values = {"team_id": ids["team"], "person_id": ids["person"], "pk": batch.pk}
    client.force_login(org["admin"])
    checked = 0
    for route in _routes(get_resolver().url_patterns):
        if route.startswith(("admin/", "accounts/logout")) or "(?P<" in route or "<path:" in route:
            continue
        url = "/" + re.sub(r"<(?:int:)?(\w+)>", lambda match: str(values.get(match.group(1), 1)), route)
        url = url.replace("^", "").replace("$", "").replace("\\Z", "").replace("\\.", ".")
        response = client.get(url, BAD)
        assert response.status_code < 500, url
        checked += 1
    assert checked > 30
    # And without a session, nothing leaks or breaks either.
    assert Client().get("/", BAD).status_code == 302
