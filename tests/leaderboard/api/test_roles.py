"""The role matrix: engineer (Infra), manager of team X (Platform, above Infra), manager of team Y (Product),
admin × every endpoint. The expectations are the table in leaderboard/api/views.py's docstring."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import ImportBatchFactory

ROLES = ("engineer", "manager_x", "manager_y", "admin")

# (method, url template, expected status per role in ROLES order)
MATRIX = [
    ("get", "/api/v1/leaderboard/people/", (200, 200, 200, 200)),
    ("get", "/api/v1/leaderboard/teams/", (200, 200, 200, 200)),
    ("get", "/api/v1/people/{infra_engineer}/", (200, 200, 200, 200)),
    ("get", "/api/v1/people/{infra_engineer}/usage/", (200, 200, 403, 200)),
    ("get", "/api/v1/people/{product_engineer}/usage/", (403, 403, 200, 200)),
    ("get", "/api/v1/people/999999/", (404, 404, 404, 404)),
    ("get", "/api/v1/teams/{platform}/", (200, 200, 200, 200)),
    ("get", "/api/v1/teams/{platform}/usage/", (403, 200, 403, 200)),
    ("get", "/api/v1/teams/{infra}/usage/", (403, 200, 403, 200)),
    ("get", "/api/v1/teams/{product}/usage/", (403, 403, 200, 200)),
    ("get", "/api/v1/teams/{engineering}/usage/", (403, 403, 403, 200)),
    ("get", "/api/v1/usage/", (403, 200, 200, 200)),
    ("get", "/api/v1/usage/?person={infra_engineer}", (403, 200, 403, 200)),
    ("get", "/api/v1/usage/?person={product_engineer}", (403, 403, 200, 200)),
    ("get", "/api/v1/imports/", (403, 403, 403, 200)),
    ("get", "/api/v1/imports/{import}/", (403, 403, 403, 200)),
    ("get", "/api/v1/imports/999999/", (403, 403, 403, 404)),
    ("post", "/api/v1/imports/", (403, 403, 403, 202)),
    ("get", "/api/v1/identities/?assigned=false", (403, 403, 403, 200)),
    ("patch", "/api/v1/identities/{identity}/", (403, 403, 403, 200)),
    ("patch", "/api/v1/identities/999999/", (403, 403, 403, 404)),
    # Issue 13: allowances and budgets follow cost.
    ("get", "/api/v1/allowances/", (200, 200, 200, 200)),
    ("get", "/api/v1/budgets/", (200, 200, 200, 200)),
    ("get", "/api/v1/people/{infra_engineer}/allowance/", (200, 200, 403, 200)),
    ("get", "/api/v1/people/{product_engineer}/allowance/", (403, 403, 200, 200)),
    ("get", "/api/v1/people/999999/allowance/", (404, 404, 404, 404)),
    ("get", "/api/v1/leaderboard/people/?metric=allowance_used", (403, 403, 403, 200)),
    ("get", "/api/v1/leaderboard/people/?metric=allowance_used&team={platform}", (403, 200, 403, 200)),
    ("get", "/api/schema/", (200, 200, 200, 200)),
    ("get", "/api/docs/", (200, 200, 200, 200)),
]


@pytest.mark.parametrize(("method", "url", "expected"), MATRIX, ids=[f"{m} {u}" for m, u, _ in MATRIX])
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(org, clients, usage, role, method, url, expected):
    ids = {name: getattr(value, "pk", None) for name, value in org.items()}
    ids["import"] = ImportBatchFactory().pk
    ids["identity"] = usage["infra"].identity_id
    client = clients[role]
    if method == "post":
        data = {"file": SimpleUploadedFile("usage.json", b'{"object":"page","data":[]}')}
        response = client.post(url, data)
    elif method == "patch":
        response = client.patch(url.format(**ids), {"person": ids["infra_engineer"]}, format="json")
    else:
        response = client.get(url.format(**ids))
    assert response.status_code == expected[ROLES.index(role)], response.content[:300]
    if response.status_code == 403:
        assert response.json()["detail"]  # says why


def test_a_refused_admin_endpoint_discloses_nothing_about_the_object(clients):
    existing = ImportBatchFactory().pk
    assert (
        clients["manager_x"].get(f"/api/v1/imports/{existing}/").json()
        == clients["manager_x"].get("/api/v1/imports/999999/").json()
    )
