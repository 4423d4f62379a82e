from datetime import timedelta

from tests.factories import usage_for

from .conftest import DAY, WINDOW


def test_person_detail_shows_the_public_summary_to_an_engineer(org, clients, usage):
    product_engineer = org["product_engineer"]
    response = clients["engineer"].get(f"/api/v1/people/{product_engineer.pk}/", WINDOW)
    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == "Paul Product" and body["detail"] is False
    assert body["team"]["name"] == "Product" and body["rank"] == 1
    assert body["totals"]["total_tokens"] == 3000
    assert "email" not in body and "identities" not in body and "cost_usd" not in body["totals"]
    assert body["window"] == {
        "period": "custom",
        "start": "2026-09-01",
        "end": "2026-09-30",
        "label": "01 Sep 2026 – 30 Sep 2026",
    }


def test_person_detail_shows_email_cost_and_identities_to_themselves_and_their_managers(org, clients, usage):
    infra_engineer = org["infra_engineer"]
    for viewer in ("engineer", "manager_x", "admin"):
        body = clients[viewer].get(f"/api/v1/people/{infra_engineer.pk}/", WINDOW).json()
        assert body["detail"] is True and body["email"] == infra_engineer.email
        assert body["totals"]["cost_usd"] == "1.250000"
        assert [i["id"] for i in body["identities"]] == [usage["infra"].identity_id]
    assert "email" not in clients["manager_y"].get(f"/api/v1/people/{infra_engineer.pk}/", WINDOW).json()


def test_an_opted_out_persons_detail_shows_their_pseudonym_to_engineers(org, clients, usage):
    product_engineer = org["product_engineer"]
    product_engineer.show_name = False
    product_engineer.save()
    body = clients["engineer"].get(f"/api/v1/people/{product_engineer.pk}/").json()
    assert body["display_name"] == product_engineer.pseudonym and "email" not in body
    assert clients["manager_y"].get(f"/api/v1/people/{product_engineer.pk}/").json()["display_name"] == "Paul Product"


def test_person_usage_is_a_daily_series_with_every_day_of_the_window(org, clients):
    person = org["infra_engineer"]
    usage_for(person, day=DAY, tokens=100, model="gpt-5")
    usage_for(person, day=DAY, tokens=50, model="gpt-5-mini")
    usage_for(person, day=DAY + timedelta(days=1), tokens=10, model="gpt-5")
    params = {"start": "2026-08-31", "end": "2026-09-03"}
    body = clients["engineer"].get(f"/api/v1/people/{person.pk}/usage/", params).json()
    assert body["days"] == ["2026-08-31", "2026-09-01", "2026-09-02", "2026-09-03"]
    assert [d["total_tokens"] for d in body["daily"]] == [0, 150, 10, 0]
    assert body["totals"]["total_tokens"] == 160 and body["totals"]["active_days"] == 2
    assert body["longest_streak"] == 2 and body["group_by"] == "model"
    assert [(g["name"], g["total_tokens"], g["daily"]) for g in body["groups"]] == [
        ("GPT-5", 110, [0, 100, 10, 0]),
        ("GPT-5 mini", 50, [0, 50, 0, 0]),  # the catalog's names for the exported spellings
    ]
    assert body["person"]["email"] == person.email
    by_provider = clients["engineer"].get(f"/api/v1/people/{person.pk}/usage/", {**params, "group_by": "provider"})
    assert [g["name"] for g in by_provider.json()["groups"]] == ["openai"]


def test_person_usage_rejects_an_unknown_grouping(org, clients):
    response = clients["engineer"].get(f"/api/v1/people/{org['infra_engineer'].pk}/usage/", {"group_by": "colour"})
    assert response.status_code == 400 and "allowed: model, model_family, provider" in response.json()["group_by"][0]


def test_person_usage_defaults_to_the_last_30_days(org, clients):
    body = clients["engineer"].get(f"/api/v1/people/{org['infra_engineer'].pk}/usage/").json()
    assert body["window"]["period"] == "30d" and len(body["days"]) == 30


def test_team_detail_shows_a_summary_to_engineers_and_members_to_its_managers(org, clients, usage):
    platform = org["platform"]
    summary = clients["engineer"].get(f"/api/v1/teams/{platform.pk}/", WINDOW).json()
    assert summary["name"] == "Platform" and summary["parent"]["name"] == "Engineering"
    assert summary["children"] == [{"id": org["infra"].pk, "name": "Infra"}]
    assert summary["detail"] is False and "member_list" not in summary
    assert summary["figures_visible"] is False and summary["totals"]["total_tokens"] is None  # 2 active < 3
    full = clients["manager_x"].get(f"/api/v1/teams/{platform.pk}/", WINDOW).json()
    assert full["detail"] is True and full["figures_visible"] is True
    assert full["totals"]["total_tokens"] == 3000 and full["totals"]["cost_usd"] == "3.250000"
    assert [(m["display_name"], m["team"]["name"], m["total_tokens"]) for m in full["member_list"]] == [
        ("Ivy Infra", "Infra", 1000),
        ("Pat Manager", "Platform", 2000),
    ]


def test_team_usage_is_the_subtrees_daily_series(org, clients, usage):
    body = clients["manager_x"].get(f"/api/v1/teams/{org['platform'].pk}/usage/", WINDOW).json()
    assert body["team"]["name"] == "Platform"
    assert body["totals"]["total_tokens"] == 3000 and body["daily"][0]["total_tokens"] == 3000
    assert len(body["days"]) == 30


def test_unknown_people_and_teams_are_404(clients):
    for url in ("/api/v1/people/999999/", "/api/v1/people/999999/usage/", "/api/v1/teams/999999/"):
        assert clients["engineer"].get(url).status_code == 404
    assert clients["admin"].get("/api/v1/teams/999999/usage/").status_code == 404
