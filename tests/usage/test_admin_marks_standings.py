from datetime import date

from django.test import Client

from tests.factories import usage_for
from usage.models import Membership

SEPTEMBER = {"period": "month", "date": "2026-09-15", "format": "csv"}


def _team_totals(client) -> dict[str, str]:
    import csv
    import io

    rows = csv.DictReader(io.StringIO(client.get("/teams/", SEPTEMBER).content.decode()))
    return {row["team"]: row["total_tokens"] for row in rows}


def _admin_and_ivys_usage(org) -> tuple[Client, object]:
    """An admin's client, and Ivy with 400 tokens in September, counted for Infra."""
    admin = Client()
    admin.force_login(org["admin"])
    ivy = org["infra_engineer"]
    usage_for(ivy, day=date(2026, 9, 3), tokens=400)
    assert _team_totals(admin)["Infra"] == "400"
    return admin, ivy


def test_moving_someone_in_the_django_admin_moves_their_usage_between_teams(org):
    admin, ivy = _admin_and_ivys_usage(org)

    membership = Membership.objects.get(person=ivy)
    response = admin.post(
        f"/admin/usage/membership/{membership.pk}/change/",
        {"person": ivy.pk, "team": org["product"].pk, "start": "2020-01-01", "end": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    # The change marked Ivy's days: the next refresh counts her September for Product, not Infra.
    totals = _team_totals(admin)
    assert totals["Product"] == "400" and totals["Infra"] == "0"


def test_deleting_someone_in_the_django_admin_takes_their_usage_off_the_boards(org):
    admin, ivy = _admin_and_ivys_usage(org)

    response = admin.post(f"/admin/usage/person/{ivy.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    # Her identities now name nobody: her usage is unassigned, counted for no team and ranked for nobody.
    assert _team_totals(admin).get("Infra", "0") == "0"
    board = admin.get("/api/v1/leaderboard/people/", {"period": "month", "date": "2026-09-15"}).json()
    assert ivy.pk not in [row["person_id"] for row in board["results"]]


def test_deleting_people_with_the_admins_bulk_action_takes_their_usage_off_the_boards(org):
    admin, ivy = _admin_and_ivys_usage(org)

    response = admin.post(
        "/admin/usage/person/", {"action": "delete_selected", "_selected_action": [ivy.pk], "post": "yes"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _team_totals(admin).get("Infra", "0") == "0"
