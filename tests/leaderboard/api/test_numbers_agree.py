"""The numbers agree: for a window, the people ranking's totals summed equal the sum of the raw usage records
(of assigned identities, which is what rankings count) — on PostgreSQL, over data seeded through the real
import pipeline."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from .conftest import client_for

FIELDS = ("total_tokens", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "requests")


def all_results(client, url: str, params: dict) -> list[dict]:
    results, page = [], 1
    while True:
        response = client.get(url, {**params, "page": page, "page_size": 500})
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        results += body["results"]
        if body["next"] is None:
            return results
        page += 1


def sums(rows: list[dict]) -> dict:
    # Unknown figures (requests a source does not report: null) add nothing, as the rankings count them.
    totals = {name: sum(row[name] or 0 for row in rows) for name in FIELDS}
    totals["cost_usd"] = sum((Decimal(row["cost_usd"]) for row in rows), Decimal(0))
    return totals


WINDOWS = [
    {"period": "30d"},
    {"period": "month"},
    {"period": "week"},
    {"period": "all"},
    {"period": "7d", "provider": "anthropic"},
    {"period": "90d", "model": "gpt-5-mini-2025-08-07"},
    {"period": "custom", "start": -40, "end": -20},  # days from today
]


@pytest.mark.needs_services
@pytest.mark.django_db
def test_people_ranking_totals_sum_to_the_usage_records_of_every_window(django_user_model):
    call_command("seed_demo", stdout=io.StringIO())
    today = timezone.localdate()
    admin = client_for(django_user_model.objects.get(username="admin"))
    for window in WINDOWS:
        params = {k: (today + timedelta(days=v)).isoformat() if isinstance(v, int) else v for k, v in window.items()}
        records = all_results(admin, "/api/v1/usage/", {**params, "assigned": "true"})
        expected = sums(records)
        # Each figure against the board ranked by it: a board ranks only the people with some of its metric
        # (someone with Copilot requests and no tokens is on the requests board, not the tokens one).
        by_tokens = all_results(admin, "/api/v1/leaderboard/people/", params)
        by_requests = all_results(admin, "/api/v1/leaderboard/people/", {**params, "metric": "requests"})
        by_cost = all_results(admin, "/api/v1/leaderboard/people/", {**params, "metric": "cost_usd"})
        assert by_tokens and records, params
        token_fields = [name for name in FIELDS if name.endswith("_tokens")]
        assert {name: sums(by_tokens)[name] for name in token_fields} == {
            name: expected[name] for name in token_fields
        }, params
        assert sums(by_requests)["requests"] == expected["requests"], params
        assert sums(by_cost)["cost_usd"] == expected["cost_usd"], params
        # Person by person too.
        per_person: dict[int, int] = {}
        for record in records:
            per_person[record["person"]["id"]] = per_person.get(record["person"]["id"], 0) + record["total_tokens"]
        ranked = {person: tokens for person, tokens in per_person.items() if tokens}  # no tokens: not ranked
        assert {row["person"]["id"]: row["total_tokens"] for row in by_tokens} == ranked, params
