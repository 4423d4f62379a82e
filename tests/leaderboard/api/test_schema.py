"""The OpenAPI document: valid OpenAPI 3, complete, served with local assets, and true to the running API
(schemathesis against a live server with demo data)."""

import io

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from usage.auth import api_token_create
from usage.models import Identity, ImportBatch, Person, Team

ENDPOINTS = {
    ("/api/v1/leaderboard/people/", "get"),
    ("/api/v1/leaderboard/teams/", "get"),
    ("/api/v1/people/{id}/", "get"),
    ("/api/v1/people/{id}/usage/", "get"),
    ("/api/v1/teams/{id}/", "get"),
    ("/api/v1/teams/{id}/usage/", "get"),
    ("/api/v1/usage/", "get"),
    ("/api/v1/imports/", "get"),
    ("/api/v1/imports/", "post"),
    ("/api/v1/imports/{id}/", "get"),
    ("/api/v1/identities/", "get"),
    ("/api/v1/identities/{id}/", "patch"),
}
EXAMPLES_PER_OPERATION = 6
RANKING_PARAMETERS = {"period", "date", "start", "end", "metric", "provider", "model", "team", "page", "page_size"}


@pytest.fixture
def document(org):
    client = APIClient()
    client.force_authenticate(org["infra_engineer"].user)
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate_schema(document)  # raises on any violation of the OpenAPI 3 JSON schema


def test_the_schema_documents_every_endpoint_its_parameters_and_the_bearer_scheme(document):
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert ENDPOINTS <= operations
    people = document["paths"]["/api/v1/leaderboard/people/"]["get"]
    names = {p["name"] for p in people["parameters"]}
    assert RANKING_PARAMETERS | {"q"} <= names
    period = next(p for p in people["parameters"] if p["name"] == "period")
    assert set(period["schema"]["enum"]) == {
        "day",
        "week",
        "month",
        "quarter",
        "year",
        "all",
        "7d",
        "30d",
        "90d",
        "custom",
    }
    assert {"200", "400", "401", "403"} <= set(people["responses"])
    standing = document["components"]["schemas"]["PersonStanding"]
    assert "cost_usd" in standing["properties"] and "cost_usd" not in standing["required"]
    assert "per_capita" in {p["name"] for p in document["paths"]["/api/v1/leaderboard/teams/"]["get"]["parameters"]}
    usage = {p["name"] for p in document["paths"]["/api/v1/usage/"]["get"]["parameters"]}
    assert RANKING_PARAMETERS - {"metric"} | {"person", "identity", "kind", "identity_kind", "assigned"} <= usage
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token: `python manage.py api_token USERNAME` prints one.",
    }
    upload = document["paths"]["/api/v1/imports/"]["post"]
    assert {"202", "413"} <= set(upload["responses"])
    assert "multipart/form-data" in upload["requestBody"]["content"]


def test_the_docs_page_serves_swagger_ui_from_local_static_files(org):
    client = APIClient()
    client.force_authenticate(org["infra_engineer"].user)
    html = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html


# --- schemathesis: the documented API against the running one ------------------------------------------------


def _existing_ids() -> dict[str, list[int]]:
    return {
        "/api/v1/people/": list(Person.objects.values_list("pk", flat=True)),
        "/api/v1/teams/": list(Team.objects.values_list("pk", flat=True)),
        "/api/v1/imports/": list(ImportBatch.objects.values_list("pk", flat=True)),
        "/api/v1/identities/": list(Identity.objects.values_list("pk", flat=True)),
    }


def _strategy(operation, ids: dict[str, list[int]]):
    """Free generation; for /{id}/ paths half the cases use ids that exist, so real objects are rendered too."""
    free = operation.as_strategy(GenerationMode.POSITIVE)
    prefix = operation.path.split("{id}")[0]
    if prefix not in ids:
        return free
    existing = st.sampled_from(ids[prefix]).flatmap(
        lambda pk: operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"id": pk})
    )
    return st.one_of(existing, free)


@pytest.mark.parametrize("username", ["admin", "engineer"])
def test_the_api_answers_as_its_schema_says(live_server, username):
    """Every GET and PATCH operation of this API (ENDPOINTS), a few generated requests each, with a Bearer
    token of the demo admin (who sees every field) and of the demo engineer (to whom fields are omitted and
    endpoints refused): no 5xx, and every status code, content type and body is one the schema documents.
    The upload is left out (it would queue imports of random bytes); test_imports.py covers it."""
    call_command("seed_demo", stdout=io.StringIO())
    _, token = api_token_create(user=get_user_model().objects.get(username=username))
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", headers=headers)
    schema.config.update(base_url=live_server.url, headers=headers)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    ids = _existing_ids()
    tested, failures = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.path, operation.method.lower()) not in ENDPOINTS or operation.method.upper() == "POST":
            continue

        @given(case=_strategy(operation, ids))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=checks)

        tested.append(operation.label)
        try:
            run()
        except BaseException as error:  # collect every operation's failures (a group), then report them together
            if isinstance(error, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label}: {error}")
    assert len(tested) == len(ENDPOINTS) - 1
    assert not failures, "\n\n".join(failures)
