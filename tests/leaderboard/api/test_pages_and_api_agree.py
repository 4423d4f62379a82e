"""Pages, CSV exports and the API read the same standings, so they show the same numbers."""

import csv
import io
from datetime import date

from django.test import Client

from tests.factories import person_in_team, usage_for
from usage.models import Membership
from usage.services.standings import standings_mark_people

SEPTEMBER = {"period": "month", "date": "2026-09-15"}


def _moved_mid_month(org):
    """Ivy uses 5,000 tokens in Infra, moves to Product on 16 Sep, then uses 1,000 there; Ina stays in Infra."""
    ivy = org["infra_engineer"]
    ina = person_in_team(org["infra"], display_name="Ina Infra")
    usage_for(ivy, day=date(2026, 9, 5), tokens=5000)
    usage_for(ina, day=date(2026, 9, 6), tokens=1000)
    Membership.objects.filter(person=ivy).update(end=date(2026, 9, 15))
    Membership.objects.create(person=ivy, team=org["product"], start=date(2026, 9, 16))
    standings_mark_people([ivy.pk])  # what the org import does after a move
    usage_for(ivy, day=date(2026, 9, 20), tokens=1000)
    return ivy, ina


def test_a_team_total_equals_its_members_after_a_mid_month_move(org, clients):
    ivy, ina = _moved_mid_month(org)
    infra = clients["admin"].get(f"/api/v1/teams/{org['infra'].pk}/", SEPTEMBER).json()
    members = {m["id"]: m["total_tokens"] for m in infra["member_list"]}
    # Ivy's 5,000 tokens of early September count for Infra: she is listed (moved out) with exactly those.
    assert members == {ivy.pk: 5000, ina.pk: 1000}
    assert infra["totals"]["total_tokens"] == sum(members.values()) == 6000
    product = clients["admin"].get(f"/api/v1/teams/{org['product'].pk}/", SEPTEMBER).json()
    product_members = {m["id"]: m["total_tokens"] for m in product["member_list"]}
    assert product_members[ivy.pk] == 1000 and product["totals"]["total_tokens"] == sum(product_members.values())


def test_the_team_page_its_csv_and_the_api_show_the_same_members_and_totals(org, clients):
    ivy, ina = _moved_mid_month(org)
    browser = Client()
    browser.force_login(org["admin"])
    api = clients["admin"].get(f"/api/v1/teams/{org['infra'].pk}/", SEPTEMBER).json()
    api_members = {m["display_name"]: m["total_tokens"] for m in api["member_list"]}

    exported = browser.get(f"/teams/{org['infra'].pk}/members.csv", SEPTEMBER).content.decode()
    csv_members = {row["name"]: int(row["total_tokens"]) for row in csv.DictReader(io.StringIO(exported))}
    assert csv_members == api_members == {ivy.display_name: 5000, ina.display_name: 1000}

    page = browser.get(f"/teams/{org['infra'].pk}/", SEPTEMBER).content.decode()
    assert ivy.display_name in page and ina.display_name in page

    listed = clients["admin"].get("/api/v1/leaderboard/teams/", SEPTEMBER).json()["results"]
    ranked = {row["team"]["id"]: row["total_tokens"] for row in listed}
    assert ranked[org["infra"].pk] == api["totals"]["total_tokens"] == 6000
    board = browser.get("/teams/", {**SEPTEMBER, "format": "csv"}).content.decode()
    board_totals = {row["team"]: int(row["total_tokens"]) for row in csv.DictReader(io.StringIO(board))}
    assert board_totals["Infra"] == 6000 and board_totals["Product"] == ranked[org["product"].pk]


def test_the_people_board_page_csv_and_api_agree_on_ranks_and_totals(org, clients):
    _moved_mid_month(org)
    usage_for(org["product_engineer"], day=date(2026, 9, 7), tokens=6000)
    browser = Client()
    browser.force_login(org["admin"])
    api_rows = clients["admin"].get("/api/v1/leaderboard/people/", SEPTEMBER).json()["results"]
    exported = browser.get("/", {**SEPTEMBER, "format": "csv"}).content.decode()
    csv_rows = list(csv.DictReader(io.StringIO(exported)))
    # Ivy (6,000 over both teams) ties with Paul: one rank, shared, everywhere.
    assert [(r["person"]["display_name"], r["rank"], r["total_tokens"]) for r in api_rows] == [
        (row["name"], int(row["rank"]), int(row["total_tokens"])) for row in csv_rows
    ]
    assert [r["rank"] for r in api_rows] == [1, 1, 3]
    page = browser.get("/", SEPTEMBER).content.decode()
    for row in api_rows:
        assert row["person"]["display_name"] in page
