"""The ranking API's response cache (leaderboard.api.response_cache): a repeated request is served from the
shared cache, and everything the answer shows — the standings, the viewer's role, the directory — changes it."""

from datetime import date
from unittest import mock

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import MembershipFactory, usage_for
from usage.models import Membership, StandingsState
from usage.services.standings import standings_refresh

from .conftest import DAY, WINDOW

PEOPLE = "/api/v1/leaderboard/people/"
TEAMS = "/api/v1/leaderboard/teams/"


def rows(response) -> dict:
    return {row["person"]["id"]: row for row in response.json()["results"]}


def logged_in(user) -> APIClient:
    """A session client: each request reads the user from the database, as a browser's does."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def kept(monkeypatch):
    """The response cache on a cache of its own, its writes recorded."""
    cache = LocMemCache("test-ranking-responses", {})
    monkeypatch.setattr(cache, "set", mock.Mock(wraps=cache.set))
    monkeypatch.setattr("leaderboard.api.response_cache.cache", cache)
    monkeypatch.setattr("usage.directory.cache", cache)  # reads the answer with the directory's version
    return cache


@pytest.mark.parametrize("url", [PEOPLE, TEAMS])
def test_a_repeated_request_is_served_from_the_cache_with_a_few_queries(
    django_assert_max_num_queries, clients, usage, url
):
    with CaptureQueriesContext(connection) as computed:
        first = clients["engineer"].get(url, WINDOW)
    with django_assert_max_num_queries(3) as served:
        again = clients["engineer"].get(url, WINDOW)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again["Content-Type"] == first["Content-Type"] == "application/json"
    assert len(served) < len(computed) / 2


def test_a_signed_in_viewer_is_served_without_reading_their_user_or_role_from_the_database(settings, org, usage):
    """A browser's request: its session, user and viewer come from the shared cache (usage.sessions,
    usage.login.SignedInUserBackend); with Redis, the standings' stamp is the one query it makes."""
    client = logged_in(org["product_manager"].user)
    first = client.get(PEOPLE, WINDOW)
    with CaptureQueriesContext(connection) as served:
        again = client.get(PEOPLE, WINDOW)
    assert again.content == first.content
    read = " ".join(query["sql"] for query in served.captured_queries)
    assert not any(table in read for table in ('"auth_user"', '"usage_person"', '"usage_team'))
    if "redis" in settings.CACHES["default"]["BACKEND"].lower():
        # The standings' stamp, and the tests' own look for dirty days before each request (tests/conftest.py).
        assert len(served) == 2 and "usage_standingsstate" in read


def test_query_parameters_and_pages_are_part_of_the_key(clients, usage):
    first = clients["admin"].get(PEOPLE, {**WINDOW, "page_size": 1})
    second = clients["admin"].get(PEOPLE, {**WINDOW, "page_size": 1, "page": 2})
    by_cost = clients["admin"].get(PEOPLE, {"page_size": 1, "metric": "cost_usd", **WINDOW})
    assert [r["rank"] for r in first.json()["results"]] == [1]
    assert [r["rank"] for r in second.json()["results"]] == [2]
    assert by_cost.json()["results"][0]["cost_usd"] == "3.500000"
    # The same parameters in another order are the same request.
    reordered = clients["admin"].get(f"{PEOPLE}?page_size=1&end={WINDOW['end']}&start={WINDOW['start']}")
    assert reordered.content == first.content


def test_a_refresh_changes_the_answer(org, clients, usage):
    before = rows(clients["engineer"].get(PEOPLE, WINDOW))
    usage_for(org["infra_engineer"], day=DAY, tokens=9000)
    standings_refresh()
    after = rows(clients["engineer"].get(PEOPLE, WINDOW))
    infra = org["infra_engineer"].pk
    assert (before[infra]["rank"], before[infra]["total_tokens"]) == (3, 1000)
    assert (after[infra]["rank"], after[infra]["total_tokens"]) == (1, 10000)


def test_a_failed_refresh_shows_at_once(clients, usage):
    assert clients["engineer"].get(PEOPLE, WINDOW).json()["refresh_failed"] is False
    StandingsState.objects.filter(pk=1).update(last_error="the database went away")
    assert clients["engineer"].get(PEOPLE, WINDOW).json()["refresh_failed"] is True


def test_a_rename_and_an_opt_out_show_on_the_next_request(org, clients, usage):
    product = org["product_engineer"]
    assert rows(clients["engineer"].get(PEOPLE, WINDOW))[product.pk]["person"]["display_name"] == "Paul Product"
    product.display_name = "Paula Product"
    product.save()
    assert rows(clients["engineer"].get(PEOPLE, WINDOW))[product.pk]["person"]["display_name"] == "Paula Product"
    product.show_name = False
    product.save()
    assert rows(clients["engineer"].get(PEOPLE, WINDOW))[product.pk]["person"]["display_name"] == product.pseudonym


def test_a_team_move_and_a_team_rename_show_on_the_next_request(org, clients, usage):
    """Moving Paul from Product into Infra puts him in Platform's subtree: its manager now sees his email and
    cost (managed people are directory data, not part of the viewer's own facts)."""
    product = org["product_engineer"]
    manager = logged_in(org["platform_manager"].user)
    before = rows(manager.get(PEOPLE, WINDOW))[product.pk]
    assert before["person"]["team"]["name"] == "Product" and "email" not in before["person"]
    Membership.objects.filter(person=product).update(end=date(2026, 9, 9))  # no signal: the next save bumps
    MembershipFactory(person=product, team=org["infra"], start=date(2026, 9, 10))
    after = rows(manager.get(PEOPLE, WINDOW))[product.pk]
    assert after["person"]["team"]["name"] == "Infra"
    assert after["person"]["email"] == product.email and after["cost_usd"] == "3.500000"
    infra = org["infra"]
    infra.name = "Infrastructure"
    infra.save()
    assert rows(manager.get(PEOPLE, WINDOW))[product.pk]["person"]["team"]["name"] == "Infrastructure"
    teams = {row["team"]["id"]: row["team"]["name"] for row in clients["engineer"].get(TEAMS, WINDOW).json()["results"]}
    assert teams[infra.pk] == "Infrastructure"


def test_a_role_change_shows_on_the_next_request(org, usage):
    user = org["product_engineer"].user
    client = logged_in(user)
    infra = org["infra_engineer"].pk
    assert "email" not in rows(client.get(PEOPLE, WINDOW))[infra]["person"]
    user.is_staff = True
    user.save()
    assert rows(client.get(PEOPLE, WINDOW))[infra]["person"]["email"] == org["infra_engineer"].email
    org["product"].managers.remove(org["product_manager"])
    manager = logged_in(org["product_manager"].user)
    assert "email" not in rows(manager.get(PEOPLE, WINDOW))[org["product_engineer"].pk]["person"]
    org["product"].managers.add(org["product_manager"])
    assert "email" in rows(manager.get(PEOPLE, WINDOW))[org["product_engineer"].pk]["person"]


@pytest.mark.parametrize("url", [PEOPLE, TEAMS])
def test_viewers_with_other_roles_never_get_each_others_answer(org, clients, usage, url):
    admin = clients["admin"].get(url, WINDOW)
    engineer = clients["engineer"].get(url, WINDOW)
    manager = clients["manager_y"].get(url, WINDOW)
    assert b"cost_usd" in admin.content
    assert admin.content != engineer.content != manager.content
    if url == PEOPLE:
        product, infra = org["product_engineer"].pk, org["infra_engineer"].pk
        assert {pid for pid, row in rows(admin).items() if "email" in row["person"]} == set(rows(admin))
        assert {pid for pid, row in rows(engineer).items() if "cost_usd" in row} == {infra}
        assert {pid for pid, row in rows(manager).items() if "email" in row["person"]} == {product}
    assert APIClient().get(url, WINDOW).status_code == 401  # anonymous: refused, whatever was kept


def test_errors_are_never_kept(clients, usage, kept):
    assert clients["engineer"].get(PEOPLE, {"period": "fortnight"}).status_code == 400
    assert clients["engineer"].get(PEOPLE, {**WINDOW, "page": 9}).status_code == 400
    assert clients["engineer"].get(PEOPLE, {**WINDOW, "metric": "cost_usd"}).status_code == 403
    assert clients["engineer"].get(TEAMS, {**WINDOW, "per_capita": "maybe"}).status_code == 400
    kept.set.assert_not_called()
    assert clients["engineer"].get(PEOPLE, WINDOW).status_code == 200
    kept.set.assert_called_once()


def test_the_browsable_api_and_json_are_kept_apart(clients, usage, kept):
    json_body = clients["engineer"].get(PEOPLE, WINDOW).content
    page = clients["engineer"].get(PEOPLE, {**WINDOW, "format": "api"})
    assert page["Content-Type"].startswith("text/html") and b"<html" in page.content
    html = clients["engineer"].get(PEOPLE, WINDOW, HTTP_ACCEPT="text/html")
    assert html["Content-Type"].startswith("text/html")
    assert clients["engineer"].get(PEOPLE, WINDOW).content == json_body
    kept.set.assert_called_once()  # the JSON answer only: the page carries the user's CSRF token


def test_a_cache_that_is_down_still_answers(org, clients, usage, monkeypatch):
    computed = clients["engineer"].get(PEOPLE, WINDOW).content
    down = RedisCache("redis://127.0.0.1:1/0", {})
    monkeypatch.setattr("leaderboard.api.response_cache.cache", down)
    monkeypatch.setattr("usage.directory.cache", down)
    product = org["product_engineer"]
    product.display_name = "Paula Product"
    product.save()  # the directory's bump fails, logged, and the save stands
    for _ in range(2):
        response = clients["engineer"].get(PEOPLE, WINDOW)
        assert response.status_code == 200
        assert rows(response)[product.pk]["person"]["display_name"] == "Paula Product"
    assert response.content != computed


def test_the_setting_turns_it_off(settings, clients, usage, kept):
    settings.TOKENBOARD_RANKING_CACHE_SECONDS = 0
    clients["engineer"].get(PEOPLE, WINDOW)
    clients["engineer"].get(PEOPLE, WINDOW)
    kept.set.assert_not_called()
