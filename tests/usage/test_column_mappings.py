import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from tests.factories import PersonFactory
from usage.models import ColumnMapping, UsageRecord
from usage.services.mappings import mapping_guess

SAMPLE = b"When,Who,LLM,Prompt tokens,Completion tokens,Spend\n2026-09-01,Ada@acme.example,gpt-5,100,20,0.50\n"


def test_the_guess_maps_common_column_names():
    guess = mapping_guess(
        ["When", "Who Email", "LLM Model", "Prompt tokens", "Cached tokens", "Completion tokens", "Spend"]
    )
    assert guess == {
        "cache_read_tokens": "Cached tokens",
        "input_tokens": "Prompt tokens",
        "output_tokens": "Completion tokens",
        "identity": "Who Email",
        "model": "LLM Model",
        "cost_usd": "Spend",
    }


@pytest.mark.django_db
def test_only_admins_map_columns(client, org):
    client.force_login(org["infra_engineer"].user)
    assert client.get("/imports/mappings/").status_code == 403


@pytest.mark.django_db
def test_an_admin_maps_a_sample_once_and_imports_with_the_mapping(client, org, tmp_path):
    client.force_login(org["admin"])
    page = client.post("/imports/mappings/", {"step": "sample", "sample": SimpleUploadedFile("s.csv", SAMPLE)})
    html = page.content.decode()
    assert page.status_code == 200 and '<option value="Prompt tokens" selected>' in html
    form = {
        "step": "save",
        "headers": json.dumps(["When", "Who", "LLM", "Prompt tokens", "Completion tokens", "Spend"]),
        "name": "finance-proxy",
        "column_day": "When",
        "column_identity": "Who",
        "column_model": "LLM",
        "column_input_tokens": "Prompt tokens",
        "column_output_tokens": "Completion tokens",
        "column_cost_usd": "Spend",
        "identity_kind": "email",
        "provider": "other",
        "currency": "usd",
    }
    assert client.post("/imports/mappings/", form).status_code == 302
    assert ColumnMapping.objects.get(name="finance-proxy").columns["input_tokens"] == "Prompt tokens"

    ada = PersonFactory(email="ada@acme.example")
    path = tmp_path / "proxy.csv"
    path.write_bytes(SAMPLE)
    call_command("import_usage", str(path), "--format", "generic_csv:finance-proxy", "--wait")
    record = UsageRecord.objects.get(identity__person=ada)
    assert (record.input_tokens, record.output_tokens, str(record.cost_usd)) == (100, 20, "0.500000")


@pytest.mark.django_db
def test_a_mapping_without_the_required_columns_is_not_saved(client, org):
    client.force_login(org["admin"])
    response = client.post(
        "/imports/mappings/",
        {
            "step": "save",
            "headers": json.dumps(["A", "B"]),
            "name": "x",
            "column_day": "A",
            "identity_kind": "email",
            "provider": "other",
            "currency": "USD",
        },
    )
    assert response.status_code == 400
    assert "choose a column for: identity" in response.content.decode()
    assert not ColumnMapping.objects.exists()
