from tests.factories import IdentityFactory, UsageRecordFactory

from .conftest import DAY, WINDOW

IDENTITIES = "/api/v1/identities/"


def test_unassigned_identities_are_listed_with_their_token_totals(clients, usage):
    orphan = IdentityFactory(value="key_orphan", kind="api_key", label="CI key")
    UsageRecordFactory(identity=orphan, day=DAY, input_tokens=700)
    UsageRecordFactory(identity=orphan, day=DAY.replace(day=3), input_tokens=300)
    response = clients["admin"].get(IDENTITIES, {"assigned": "false"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (row["id"], row["value"], row["kind"], row["label"], row["person"]) == (
        orphan.pk,
        "key_orphan",
        "api_key",
        "CI key",
        None,
    )
    assert (row["total_tokens"], row["records"], row["first_day"], row["last_day"]) == (
        1000,
        2,
        "2026-09-01",
        "2026-09-03",
    )
    assert clients["admin"].get(IDENTITIES, {"assigned": "true"}).json()["count"] == 3
    assert clients["admin"].get(IDENTITIES).json()["count"] == 4


def test_assigning_an_identity_moves_its_past_usage_to_the_person(org, clients, usage):
    orphan = IdentityFactory(value="key_orphan")
    UsageRecordFactory(identity=orphan, day=DAY, input_tokens=5000)
    response = clients["admin"].patch(f"{IDENTITIES}{orphan.pk}/", {"person": org["infra_engineer"].pk}, format="json")
    assert response.status_code == 200
    assert response.json()["person"] == {"id": org["infra_engineer"].pk, "display_name": "Ivy Infra"}
    assert response.json()["total_tokens"] == 5000
    top = clients["admin"].get("/api/v1/leaderboard/people/", WINDOW).json()["results"][0]
    assert (top["person"]["display_name"], top["total_tokens"]) == ("Ivy Infra", 6000)
    # And back: null unassigns.
    response = clients["admin"].patch(f"{IDENTITIES}{orphan.pk}/", {"person": None}, format="json")
    assert response.status_code == 200 and response.json()["person"] is None
    orphan.refresh_from_db()
    assert orphan.person is None


def test_assigning_to_an_unknown_person_is_a_400_and_an_unknown_identity_a_404(clients, usage):
    identity = usage["infra"].identity_id
    response = clients["admin"].patch(f"{IDENTITIES}{identity}/", {"person": 999999}, format="json")
    assert response.status_code == 400 and "person" in response.json()
    response = clients["admin"].patch(f"{IDENTITIES}{identity}/", {}, format="json")
    assert response.status_code == 400 and "required" in response.json()["person"][0]
    assert clients["admin"].patch(f"{IDENTITIES}999999/", {"person": None}, format="json").status_code == 404
