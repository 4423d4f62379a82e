"""The model catalog: three spellings of one model are one model and one family in filters, mixes, titles, pages
and the API; unknown names are listed for admins and counted as exported; bad catalog changes are refused.

Hand-checked usage of Ivy Infra on 2026-09-01:
  "Claude Sonnet 4.5"            (GitHub Copilot)  100 tokens
  "claude-4.5-sonnet-thinking"   (Cursor)          200 tokens
  "claude-sonnet-4-5-20250929"   (Anthropic)       400 tokens   → Claude Sonnet 4.5, family Claude Sonnet: 700
  "mystery-model-x"              (OpenAI)           50 tokens   → not in the catalog: counted as exported
"""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import usage_for
from tests.leaderboard.api.conftest import DAY, WINDOW, client_for
from usage.models import CatalogModel, ModelAlias, UsageRecord

SPELLINGS = (
    ("github_copilot", "Claude Sonnet 4.5", 100),
    ("cursor", "claude-4.5-sonnet-thinking", 200),
    ("anthropic", "claude-sonnet-4-5-20250929", 400),
)


@pytest.fixture
def ivy(org):
    person = org["infra_engineer"]
    for provider, model, tokens in SPELLINGS:
        usage_for(person, day=DAY, tokens=tokens, provider=provider, model=model)
    usage_for(person, day=DAY, tokens=50, provider="openai", model="mystery-model-x")
    return person


@pytest.fixture
def admin_api(org):
    return client_for(org["admin"])


@pytest.fixture
def engineer_api(org):
    return client_for(org["infra_engineer"].user)


@pytest.fixture
def admin_client(client, org):
    client.force_login(org["admin"])
    return client


def groups(api, person, group_by: str) -> list[tuple[str, int]]:
    body = api.get(f"/api/v1/people/{person.pk}/usage/", {**WINDOW, "group_by": group_by}).json()
    return [(g["name"], g["total_tokens"]) for g in body["groups"]]


def ranked(api, **params) -> dict[str, int]:
    rows = api.get("/api/v1/leaderboard/people/", {**WINDOW, **params}).json()["results"]
    return {r["person"]["display_name"]: r["total_tokens"] for r in rows if r["total_tokens"]}


@pytest.mark.django_db
def test_three_spellings_are_one_model_and_one_family_row_on_pages_and_api(admin_api, admin_client, ivy):
    assert groups(admin_api, ivy, "model") == [("Claude Sonnet 4.5", 700), ("mystery-model-x", 50)]
    assert groups(admin_api, ivy, "model_family") == [("Claude Sonnet", 700), ("(unknown)", 50)]
    for filters in (
        {"model_family": "Claude Sonnet"},
        {"model": "Claude Sonnet 4.5"},
        {"model": "claude-4.5-sonnet-thinking"},  # any source's spelling names the model
    ):
        assert ranked(admin_api, **filters) == {"Ivy Infra": 700}, filters
    assert ranked(admin_api, model="mystery-model-x") == {"Ivy Infra": 50}
    # The raw records behind a model filter: every spelling of it, as exported.
    records = admin_api.get("/api/v1/usage/", {**WINDOW, "model": "Claude Sonnet 4.5"}).json()["results"]
    assert sorted((r["model"], r["total_tokens"]) for r in records) == sorted((m, t) for _p, m, t in SPELLINGS)
    family = admin_api.get("/api/v1/usage/", {**WINDOW, "model_family": "Claude Sonnet"}).json()["results"]
    assert sum(r["total_tokens"] for r in family) == 700

    page = admin_client.get(reverse("person", args=[ivy.pk]), WINDOW).content.decode()
    assert "Tokens by model family" in page
    family_table = page.split("Tokens by model family", 1)[1].split("</table>", 1)[0]
    assert family_table.count("Claude Sonnet") == 1 and "700" in family_table
    model_table = page.split("Tokens by model<", 1)[1].split("</table>", 1)[0]
    assert model_table.count("Claude Sonnet 4.5") == 1 and "claude-4.5-sonnet-thinking" not in model_table
    board = admin_client.get(reverse("people-ranking"), {**WINDOW, "model_family": "Claude Sonnet"}).content.decode()
    assert '<option value="Claude Sonnet" selected>' in board and "700" in board
    # The "Widest model mix" title counts models, not spellings.
    assert "2 models in 1 family" in admin_client.get(reverse("people-ranking"), WINDOW).content.decode()


@pytest.mark.django_db
def test_unknown_names_are_listed_for_admins_and_mapping_one_recounts_without_changing_records(
    admin_api, admin_client, engineer_api, ivy
):
    assert "mystery-model-x" in admin_client.get(reverse("model-catalog")).content.decode()
    unmapped = admin_api.get("/api/v1/models/unmapped/").json()
    assert unmapped == [
        {"name": "mystery-model-x", "providers": ["openai"], "total_tokens": 50, "last_day": "2026-09-01"}
    ]
    assert engineer_api.get("/api/v1/models/unmapped/").status_code == 403

    gpt5 = CatalogModel.objects.get(name="GPT-5")
    response = admin_client.post(reverse("model-alias-save"), {"spelling": "Mystery-Model-X", "model": gpt5.pk})
    assert response.status_code == 302
    assert groups(admin_api, ivy, "model") == [("Claude Sonnet 4.5", 700), ("GPT-5", 50)]
    assert admin_api.get("/api/v1/models/unmapped/").json() == []
    assert UsageRecord.objects.filter(model="mystery-model-x").count() == 1  # the record is as exported


@pytest.mark.django_db
def test_the_catalog_is_readable_through_the_api(engineer_api):
    models = {m["name"]: m for m in engineer_api.get("/api/v1/models/").json()}
    sonnet = models["Claude Sonnet 4.5"]
    assert (sonnet["family"], sonnet["vendor"]) == ("Claude Sonnet", "Anthropic")
    assert {"claude sonnet 4.5", "claude-4.5-sonnet-thinking", "claude-sonnet-4-5-20250929"} <= set(sonnet["spellings"])


@pytest.mark.django_db
def test_changes_that_would_chain_models_or_leave_usage_unmapped_are_refused(admin_client, org, ivy):
    sonnet = CatalogModel.objects.get(name="Claude Sonnet 4.5")
    chained = admin_client.post(reverse("model-alias-save"), {"spelling": "Claude Haiku 4.5", "model": sonnet.pk})
    assert chained.status_code == 400 and "is the name of Claude Haiku 4.5" in chained.content.decode()
    renamed = admin_client.post(
        reverse("catalog-model-create"), {"name": "claude-4.5-sonnet-thinking", "family": "X", "vendor": "Y"}
    )
    assert renamed.status_code == 400 and "already a spelling of Claude Sonnet 4.5" in renamed.content.decode()

    used = ModelAlias.objects.get(spelling="claude-4.5-sonnet-thinking")
    messages = admin_client.post(reverse("model-alias-delete", args=[used.pk]), follow=True).content.decode()
    assert "would leave them unmapped" in messages and ModelAlias.objects.filter(pk=used.pk).exists()
    admin_client.post(reverse("catalog-model-delete", args=[sonnet.pk]))
    assert CatalogModel.objects.filter(pk=sonnet.pk).exists()
    engineer = Client()
    engineer.force_login(org["infra_engineer"].user)
    assert engineer.get(reverse("model-catalog")).status_code == 403
    assert engineer.post(reverse("model-alias-save"), {"spelling": "x", "model": sonnet.pk}).status_code == 403


@pytest.mark.django_db
def test_a_new_model_can_take_an_unknown_name_and_a_new_family(admin_api, admin_client, ivy):
    response = admin_client.post(
        reverse("catalog-model-create"),
        {"name": "Mystery X", "family": "Mystery", "vendor": "Acme", "spelling": "mystery-model-x"},
    )
    assert response.status_code == 302
    assert groups(admin_api, ivy, "model_family") == [("Claude Sonnet", 700), ("Mystery", 50)]
    assert ranked(admin_api, model_family="Mystery") == {"Ivy Infra": 50}
