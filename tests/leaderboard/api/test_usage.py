from tests.factories import IdentityFactory, UsageRecordFactory, usage_for

from .conftest import DAY, WINDOW

USAGE = "/api/v1/usage/"


def identities_in(response) -> set[int]:
    return {row["identity"]["id"] for row in response.json()["results"]}


def test_admins_see_every_record_including_unassigned_identities(clients, usage):
    orphan = UsageRecordFactory(day=DAY, input_tokens=7, identity=IdentityFactory(value="key_orphan"))
    response = clients["admin"].get(USAGE, WINDOW)
    assert response.status_code == 200
    assert response.json()["count"] == 4
    row = next(r for r in response.json()["results"] if r["id"] == orphan.pk)
    assert row["person"] is None and row["identity"]["value"] == "key_orphan" and row["total_tokens"] == 7
    assert row["import_id"] == orphan.import_batch_id and row["cost_usd"] == "0.000000"


def test_a_managers_usage_is_the_records_of_the_people_in_their_subtree(clients, usage):
    assert identities_in(clients["manager_x"].get(USAGE, WINDOW)) == {
        usage["infra"].identity_id,
        usage["platform_manager"].identity_id,
    }
    assert identities_in(clients["manager_y"].get(USAGE, WINDOW)) == {usage["product"].identity_id}


def test_engineers_get_403_from_raw_usage(clients, usage):
    response = clients["engineer"].get(USAGE, WINDOW)
    assert response.status_code == 403 and "managers and admins" in response.json()["detail"]


def test_a_manager_asking_for_someone_outside_their_subtree_gets_403_not_an_empty_list(org, clients, usage):
    manager = clients["manager_x"]
    assert manager.get(USAGE, {"person": org["product_engineer"].pk}).status_code == 403
    assert manager.get(USAGE, {"identity": usage["product"].identity_id}).status_code == 403
    assert manager.get(USAGE, {"team": org["product"].pk}).status_code == 403
    # Inside the subtree the same filters answer.
    assert identities_in(manager.get(USAGE, {**WINDOW, "person": org["infra_engineer"].pk})) == {
        usage["infra"].identity_id
    }
    assert manager.get(USAGE, {**WINDOW, "team": org["infra"].pk}).json()["count"] == 1


def test_usage_filters_by_window_provider_model_identity_kind_and_assignment(org, clients, usage):
    admin = clients["admin"]
    other = usage_for(org["infra_engineer"], day=DAY, tokens=5, provider="anthropic", model="claude-opus-4-1")
    UsageRecordFactory(day=DAY.replace(month=10), input_tokens=1, identity=IdentityFactory(kind="api_key"))
    assert admin.get(USAGE, WINDOW).json()["count"] == 4
    assert admin.get(USAGE, {"period": "all", "date": "2026-12-31"}).json()["count"] == 5
    assert identities_in(admin.get(USAGE, {**WINDOW, "provider": "anthropic"})) == {other.identity_id}
    assert identities_in(admin.get(USAGE, {**WINDOW, "model": "claude-opus-4-1"})) == {other.identity_id}
    assert identities_in(admin.get(USAGE, {**WINDOW, "identity": usage["product"].identity_id})) == {
        usage["product"].identity_id
    }
    assert admin.get(USAGE, {**WINDOW, "kind": "tokens"}).json()["count"] == 4
    assert admin.get(USAGE, {**WINDOW, "kind": "images"}).json()["count"] == 0
    assert admin.get(USAGE, {"period": "all", "date": "2026-12-31", "identity_kind": "api_key"}).json()["count"] == 1
    assert admin.get(USAGE, {"period": "all", "date": "2026-12-31", "assigned": "false"}).json()["count"] == 1
    assert admin.get(USAGE, {"period": "all", "date": "2026-12-31", "assigned": "true"}).json()["count"] == 4


def test_malformed_usage_filters_are_a_400_naming_them(clients):
    for params, name in (({"person": "ada"}, "person"), ({"identity_kind": "badge"}, "identity_kind")):
        response = clients["admin"].get(USAGE, params)
        assert response.status_code == 400 and name in response.json()


def test_usage_records_sum_to_the_people_ranking_for_the_same_window(clients, usage):
    UsageRecordFactory(day=DAY, input_tokens=999, identity=IdentityFactory())  # unassigned: not ranked
    ranked = sum(
        r["total_tokens"] for r in clients["admin"].get("/api/v1/leaderboard/people/", WINDOW).json()["results"]
    )
    records = clients["admin"].get(USAGE, {**WINDOW, "assigned": "true"}).json()["results"]
    assert ranked == sum(r["total_tokens"] for r in records) == 6000
