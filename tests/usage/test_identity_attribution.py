"""Shared and service identities, and the confirmation before pinning a large identity on one person.

Hand-checked usage, all on yesterday (inside the last 30 days the confirmation rule looks at):
  Ivy Infra (Infra, under Platform)  1,000 tokens, personal
  Paul Product (Product)             3,000 tokens, personal
  openai api key "team-key"          5,000 tokens, unassigned
  openai api key "sk-ci"            24,600 tokens, unassigned
  everyone                          33,600 tokens: sk-ci is 73.2 %, team-key 14.9 %, Ivy's own 3.0 %.
"""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import IdentityFactory, UsageRecordFactory, usage_for
from tests.leaderboard.api.conftest import client_for
from tests.leaderboard.standings_truth import Truth, standings_differences
from usage.models import Identity, TeamStanding
from usage.periods import org_today
from usage.services.standings import standings_refresh

PEOPLE, TEAMS = "/api/v1/leaderboard/people/", "/api/v1/leaderboard/teams/"


@pytest.fixture
def day():
    return org_today() - timedelta(days=1)


@pytest.fixture
def window(day):
    return {"start": day.isoformat(), "end": day.isoformat()}


@pytest.fixture
def keys(org, day):
    usage_for(org["infra_engineer"], day=day, tokens=1000)
    usage_for(org["product_engineer"], day=day, tokens=3000)
    found = {}
    for value, tokens in (("team-key", 5000), ("sk-ci", 24600)):
        found[value] = IdentityFactory(provider="openai", kind="api_key", value=value)
        UsageRecordFactory(identity=found[value], day=day, input_tokens=tokens, provider="openai", model="gpt-5")
    return found


@pytest.fixture
def admin_api(org):
    return client_for(org["admin"])


@pytest.fixture
def admin_client(client, org):
    client.force_login(org["admin"])
    return client


def people_tokens(api, window) -> dict[str, int]:
    rows = api.get(PEOPLE, window).json()["results"]
    return {r["person"]["display_name"]: r["total_tokens"] for r in rows if r["total_tokens"]}


def team_tokens(api, window, **params) -> dict[str, int]:
    rows = api.get(TEAMS, {**window, **params}).json()["results"]
    return {r["team"]["name"]: r["total_tokens"] for r in rows}


@pytest.mark.django_db
def test_the_api_refuses_to_pin_a_large_key_on_a_person_without_confirmation(admin_api, org, keys, window):
    ci = keys["sk-ci"]
    response = admin_api.patch(f"/api/v1/identities/{ci.pk}/", {"person": org["infra_engineer"].pk}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["confirm_required"] is True and body["share"] == "0.7321"
    assert "24,600 of the 33,600 tokens" in body["detail"] and "73.2%" in body["detail"]
    assert Identity.objects.get(pk=ci.pk).person is None  # nothing changed
    assert people_tokens(admin_api, window) == {"Ivy Infra": 1000, "Paul Product": 3000}

    confirmed = admin_api.patch(
        f"/api/v1/identities/{ci.pk}/", {"person": org["infra_engineer"].pk, "confirm": True}, format="json"
    )
    assert confirmed.status_code == 200 and confirmed.json()["person"]["id"] == org["infra_engineer"].pk
    assert people_tokens(admin_api, window) == {"Ivy Infra": 25600, "Paul Product": 3000}


@pytest.mark.django_db
def test_a_small_identity_is_assigned_at_once(admin_api, org, keys, day):
    small = IdentityFactory(provider="openai", kind="api_key", value="small")
    UsageRecordFactory(identity=small, day=day, input_tokens=300, provider="openai")  # 300 / 33,900 = 0.9 %
    response = admin_api.patch(f"/api/v1/identities/{small.pk}/", {"person": org["infra_engineer"].pk}, format="json")
    assert response.status_code == 200


@pytest.mark.django_db
def test_the_page_asks_before_pinning_a_large_key_and_offers_shared_and_service(admin_client, org, keys):
    ci = keys["sk-ci"]
    url = reverse("identity-assign", args=[ci.pk])
    page = admin_client.post(url, {"person": org["infra_engineer"].email})
    assert page.status_code == 409
    text = page.content.decode()
    assert "73.2%" in text and "Mark it shared" in text and "Mark it service" in text
    assert Identity.objects.get(pk=ci.pk).person is None
    done = admin_client.post(url, {"person_id": org["infra_engineer"].pk, "confirm": "1"})
    assert done.status_code == 302 and Identity.objects.get(pk=ci.pk).person == org["infra_engineer"]


@pytest.mark.django_db
def test_shared_counts_for_the_team_only_and_service_for_no_one_on_pages_and_api(
    admin_client, admin_api, org, keys, window
):
    platform = org["platform"]
    response = admin_client.post(
        reverse("identity-attribution", args=[keys["team-key"].pk]), {"attribution": "shared", "team": platform.pk}
    )
    assert response.status_code == 302
    # A service key that an engineer owns still ranks no one.
    keys["sk-ci"].person = org["infra_engineer"]
    keys["sk-ci"].save()
    admin_api.patch(f"/api/v1/identities/{keys['sk-ci'].pk}/", {"attribution": "service"}, format="json")

    assert people_tokens(admin_api, window) == {"Ivy Infra": 1000, "Paul Product": 3000}
    # Platform: Ivy's 1,000 (Infra is under Platform) + the shared 5,000; Engineering adds Paul's 3,000.
    expected = {"Engineering": 9000, "Platform": 6000, "Infra": 1000, "Product": 3000}
    assert team_tokens(admin_api, window) == expected
    assert team_tokens(admin_api, window, model="gpt-5") == expected  # the rollup path agrees
    assert team_tokens(admin_api, window, model_family="GPT-5") == expected
    teams = {r["team"]["name"]: r for r in admin_api.get(TEAMS, window).json()["results"]}
    assert teams["Platform"]["active_members"] == 1  # shared usage is no member
    assert teams["Platform"]["top_person"]["id"] == org["infra_engineer"].pk
    detail = admin_api.get(f"/api/v1/teams/{platform.pk}/", window).json()
    assert detail["totals"]["total_tokens"] == 6000 and detail["shared_totals"]["total_tokens"] == 5000
    assert sum(m["total_tokens"] for m in detail["member_list"]) == 1000
    records = admin_api.get("/api/v1/usage/", {**window, "team": platform.pk}).json()["results"]
    assert sum(r["total_tokens"] for r in records) == 6000  # the records behind the team's total
    manager = client_for(org["platform_manager"].user)
    records = manager.get("/api/v1/usage/", {**window, "team": platform.pk}).json()["results"]
    assert sum(r["total_tokens"] for r in records) == 6000  # its manager sees the shared records too
    page = admin_client.get(reverse("team", args=[platform.pk]), window).content.decode()
    assert "5,000" in page and "shared" in page.lower()
    identities = admin_client.get(reverse("identities-list")).content.decode()
    assert "24,600</strong> tokens, counted in no ranking" in identities
    api_identity = admin_api.get("/api/v1/identities/", {"provider": "openai"}).json()["results"]
    by_value = {i["value"]: i for i in api_identity}
    assert by_value["team-key"]["attribution"] == "shared" and by_value["team-key"]["shared_team"]["id"] == platform.pk
    assert by_value["sk-ci"]["attribution"] == "service"
    services = admin_api.get("/api/v1/identities/", {"attribution": "service"}).json()["results"]
    assert [i["value"] for i in services] == ["sk-ci"]
    page = admin_client.get(reverse("identities-list"), {"attribution": "service"}).content.decode()
    assert "sk-ci" in page and "team-key" not in page


@pytest.mark.django_db
def test_a_shared_identity_needs_a_team(admin_api, admin_client, keys):
    response = admin_api.patch(f"/api/v1/identities/{keys['team-key'].pk}/", {"attribution": "shared"}, format="json")
    assert response.status_code == 400 and "team" in response.json()
    admin_client.post(reverse("identity-attribution", args=[keys["team-key"].pk]), {"attribution": "shared"})
    assert Identity.objects.get(pk=keys["team-key"].pk).attribution == "personal"


def bulk(admin_client, text: str, **extra):
    upload = SimpleUploadedFile("assign.csv", text.encode(), content_type="text/csv")
    return admin_client.post(reverse("identities-bulk"), {"file": upload, **extra})


CSV = (
    "provider,kind,value,email,attribution,team\n"
    "openai,api_key,team-key,,shared,Engineering/Platform\n"
    "openai,api_key,sk-ci,,service,\n"
    "openai,api_key,ivy-laptop,ivy@acme.example,,\n"
)


@pytest.mark.django_db
def test_bulk_csv_sets_shared_and_service_and_asks_before_pinning_a_large_key(
    admin_client, admin_api, org, keys, window
):
    org["infra_engineer"].email = "ivy@acme.example"
    org["infra_engineer"].save()
    big = CSV + "openai,api_key,sk-ci-2,ivy@acme.example,personal,\n"
    IdentityFactory(provider="openai", kind="api_key", value="sk-ci-2")
    UsageRecordFactory(
        identity=Identity.objects.get(value="sk-ci-2"), day=org_today() - timedelta(days=1), input_tokens=2000
    )
    refused = bulk(admin_client, big)
    assert refused.status_code == 409
    assert "line 5" in refused.content.decode() and "5.6%" in refused.content.decode()  # 2,000 / 35,600
    assert Identity.objects.get(value="team-key").attribution == "personal"  # nothing changed
    assert not Identity.objects.filter(value="ivy-laptop").exists()

    assert bulk(admin_client, big, confirm="on").status_code == 302
    assert Identity.objects.get(value="team-key").shared_team == org["platform"]
    assert Identity.objects.get(value="sk-ci").attribution == "service"
    assert Identity.objects.get(value="sk-ci-2").person == org["infra_engineer"]
    assert people_tokens(admin_api, window) == {"Ivy Infra": 3000, "Paul Product": 3000}
    assert team_tokens(admin_api, window)["Platform"] == 8000


@pytest.mark.django_db
def test_bulk_csv_names_bad_attribution_lines(admin_client, keys):
    text = "provider,kind,value,email,attribution,team\nopenai,api_key,a,,shared,\nopenai,api_key,b,,weird,\n"
    page = bulk(admin_client, text).content.decode()
    assert "line 2: team is empty" in page and "line 3: unknown attribution &#x27;weird&#x27;" in page


@pytest.mark.django_db
def test_every_kept_window_equals_the_records_summed_directly_with_shared_and_service_identities(org, keys, day):
    keys["team-key"].attribution, keys["team-key"].shared_team = "shared", org["platform"]
    keys["team-key"].save()
    keys["sk-ci"].attribution, keys["sk-ci"].person = "service", org["product_engineer"]
    keys["sk-ci"].save()
    standings_refresh()
    assert standings_differences(Truth()) == []
    platform = TeamStanding.objects.get(
        team=org["platform"], window__period="day", window__start=day, window__provider=""
    )
    assert (platform.total_tokens, platform.active_members, platform.top_total_tokens) == (
        6000,
        1,
        org["infra_engineer"].pk,
    )


@pytest.mark.django_db
def test_assigning_a_service_identity_to_a_person_makes_it_theirs_after_confirmation(
    admin_client, admin_api, org, keys, window
):
    ci = keys["sk-ci"]
    admin_api.patch(f"/api/v1/identities/{ci.pk}/", {"attribution": "service"}, format="json")
    assert (
        admin_api.patch(
            f"/api/v1/identities/{ci.pk}/", {"person": org["product_engineer"].pk}, format="json"
        ).status_code
        == 409
    )
    admin_client.post(
        reverse("identity-assign", args=[ci.pk]), {"person_id": org["product_engineer"].pk, "confirm": "1"}
    )
    assert Identity.objects.get(pk=ci.pk).attribution == "personal"
    assert people_tokens(admin_api, window) == {"Ivy Infra": 1000, "Paul Product": 27600}


@pytest.mark.django_db
def test_a_teams_shared_usage_is_no_person_when_the_efficiency_minimum_counts_people(admin_api, org, day):
    """By default the top half of people by volume rank on efficiency. Ivy (1,000) and Paul (3,000) are two
    people, so Paul alone is the top half. A key shared by Platform (500) counts for the team and for no person:
    counted as a third person it would make the top half two and let Ivy in. Kept windows and computed ranges
    alike."""
    usage_for(org["infra_engineer"], day=day, tokens=1000)
    usage_for(org["product_engineer"], day=day, tokens=3000)
    shared = IdentityFactory(
        provider="openai", kind="api_key", value="platform-key", attribution="shared", shared_team=org["platform"]
    )
    UsageRecordFactory(identity=shared, day=day, input_tokens=500, provider="openai", model="gpt-5")
    standings_refresh(all_days=True)

    for params in ({"period": "day", "date": day.isoformat()}, {"start": day.isoformat(), "end": day.isoformat()}):
        rows = admin_api.get(PEOPLE, {**params, "metric": "output_share"}).json()["results"]
        assert [(row["person"]["display_name"], row["rank"]) for row in rows] == [("Paul Product", 1)], params
