"""Identities resolve through what is already known: a key whose creator's user id is linked to a person is
linked when it arrives, and linking a user later links every key it created — whatever the order of uploads."""

from itertools import permutations
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import TeamFactory, person_in_team
from usage.models import Identity, ImportBatch
from usage.services import identities
from usage.services.identities import identity_assign
from usage.services.imports import import_batch_process

FIXTURES = Path(__file__).parent / "fixtures"
USERS, KEYS, USAGE = "anthropic_users.json", "anthropic_api_keys.json", "anthropic_usage_one_day.json"
# anthropic_usage_one_day.json: Alice's key apikey_01AliceKeyR4nD0mZq has 15,000 input + 41,000 cache write +
# 300,000 cache read + 22,000 output = 378,000 tokens on 2026-09-01.
ALICE_TOKENS = 378_000
WINDOW = {"start": "2026-09-01", "end": "2026-09-30"}


def upload(client, name: str) -> ImportBatch:
    """As an admin would: one file per upload on the upload page, then the worker processes it."""
    path = FIXTURES / name
    response = client.post(
        reverse("imports-upload"),
        {"files": [SimpleUploadedFile(name, path.read_bytes(), content_type="application/json")]},
    )
    assert response.status_code == 302, response.content.decode()[:500]
    batch = ImportBatch.objects.order_by("-pk").first()
    batch = import_batch_process(batch.pk)
    assert batch.status == "succeeded", batch.error_summary
    return batch


@pytest.fixture
def alice(org):
    return person_in_team(TeamFactory(name="Research", slug="research"), email="alice@acme.example")


@pytest.fixture
def admin_client(client, org):
    client.force_login(org["admin"])
    return client


def alice_ranked_tokens(client, alice) -> int | None:
    rows = client.get("/api/v1/leaderboard/people/", WINDOW).json()["results"]
    return next((r["total_tokens"] for r in rows if r["person"]["id"] == alice.pk), None)


@pytest.mark.django_db
@pytest.mark.parametrize("order", list(permutations([USERS, KEYS, USAGE])))
def test_a_key_follows_its_creator_whatever_the_order_of_the_uploads(admin_client, alice, order):
    for name in order:
        upload(admin_client, name)
    key = Identity.objects.get(value="apikey_01AliceKeyR4nD0mZq")
    assert (key.person, key.owner_user_id) == (alice, "user_01Alice")
    assert alice_ranked_tokens(admin_client, alice) == ALICE_TOKENS
    # The page says the same as the API.
    page = admin_client.get(reverse("person", args=[alice.pk]), WINDOW).content.decode()
    assert "378,000" in page or "378.0K" in page
    # Bob's user id names no person yet; the legacy key has no creator: both stay for an admin to map.
    assert Identity.objects.get(value="apikey_04BobKey").person is None
    assert Identity.objects.get(value="apikey_02Legacy").person is None


@pytest.mark.django_db
@pytest.mark.parametrize("order", [(USERS, KEYS), (KEYS, USERS)])
def test_keys_of_a_user_with_no_person_yet_are_linked_when_the_person_arrives(admin_client, org, order):
    for name in order:
        upload(admin_client, name)
    bob_key = Identity.objects.get(value="apikey_04BobKey")
    assert bob_key.person is None and bob_key.owner_email == "bob@acme.example"
    bob = person_in_team(org["product"], email="bob@acme.example")
    from usage.services.identities import identities_autolink_for_people

    identities_autolink_for_people([bob])  # what the org import does for new people
    assert Identity.objects.get(value="user_02Bob").person == bob
    assert Identity.objects.get(value="apikey_04BobKey").person == bob


@pytest.mark.django_db
def test_assigning_a_user_by_hand_links_every_unassigned_key_it_created_but_not_one_an_admin_assigned(
    admin_client, org
):
    upload(admin_client, KEYS)
    Identity.objects.filter(value="user_01Alice").delete()
    user = Identity.objects.create(provider="anthropic", kind="user_id", value="user_01Alice")
    chosen = org["product_engineer"]
    other_key = Identity.objects.create(
        provider="anthropic", kind="api_key", value="apikey_09Other", owner_user_id="user_01Alice"
    )
    identity_assign(identity=other_key, person=org["infra_engineer"])
    identity_assign(identity=user, person=chosen)
    assert Identity.objects.get(value="apikey_01AliceKeyR4nD0mZq").person == chosen
    assert Identity.objects.get(value="apikey_09Other").person == org["infra_engineer"]  # kept


@pytest.mark.django_db
def test_a_key_resolved_in_an_earlier_slice_than_its_owner_reports_the_owners_person(alice, monkeypatch):
    """A large file is resolved a slice of keys at a time; a key (api_key sorts before user_id) whose owner's user id
    comes in a later slice is linked when that user is, and the import is told the person it counts for."""
    monkeypatch.setattr(identities, "RESOLVE_SLICE", 1)
    key, user = ("anthropic", "api_key", "apikey_late_owner"), ("anthropic", "user_id", "user_late")
    resolved = identities.identities_resolve(
        [user, key], emails={user: "Alice@acme.example"}, owners={key: "user_late"}
    )
    stored = {(i.provider, i.kind, i.value): (i.pk, i.person_id) for i in Identity.objects.all()}
    assert resolved == {key: stored[key], user: stored[user]}
    assert resolved[key].person_id == resolved[user].person_id == alice.pk
