"""Billed beats estimated: a cost report row whose key, project or workspace a person owns is that person's
bill, and replaces the price-table estimate of their usage of that provider on that day. Unowned bills stay
account-level (reconciliation), counted for nobody."""

import io
import json
from datetime import date
from decimal import Decimal

import pytest

from leaderboard.selectors import person_totals
from tests.factories import PersonFactory
from usage.models import Identity, ImportBatch
from usage.periods import Window
from usage.services.imports import import_batch_create, import_batch_process
from usage.services.standings import standings_refresh

DAY = date(2026, 9, 1)
START = 1788220800  # 2026-09-01T00:00:00Z


def run_import(name: str, content: str) -> ImportBatch:
    batch = import_batch_create(file=io.BytesIO(content.encode()), name=name, queue=False)
    batch = import_batch_process(batch.pk)
    assert batch.status == "succeeded", batch.error_summary
    return batch


def openai_costs(rows: list[tuple[str | None, str | None, str, str]]) -> str:
    """rows: (api_key_id, project_id, line_item, dollars) on DAY."""
    results = [
        {
            "object": "organization.costs.result",
            "amount": {"value": dollars, "currency": "usd"},
            "line_item": line_item,
            "project_id": project,
            "api_key_id": key,
        }
        for key, project, line_item, dollars in rows
    ]
    bucket = {"object": "bucket", "start_time": START, "end_time": START + 86400, "results": results}
    return json.dumps({"object": "page", "has_more": False, "next_page": None, "data": [bucket]})


def openai_usage(*users: tuple[str, int, int]) -> str:
    """users: (user_id, uncached input, output) on DAY, in one org export."""
    results = [
        {
            "object": "organization.usage.completions.result",
            "input_tokens": uncached,
            "input_cached_tokens": 0,
            "output_tokens": output,
            "num_model_requests": 3,
            "user_id": user_id,
            "model": "gpt-4.1-2025-04-14",
        }
        for user_id, uncached, output in users
    ]
    bucket = {"object": "bucket", "start_time": START, "end_time": START + 3600, "results": results}
    return json.dumps({"object": "page", "has_more": False, "next_page": None, "data": [bucket]})


@pytest.fixture
def people(db):
    ada, bob = PersonFactory(display_name="Ada"), PersonFactory(display_name="Bob")
    for value, person in (("user-ada", ada), ("user-bob", bob)):
        Identity.objects.create(provider="openai", kind="user_id", value=value, person=person)
    for value, person in (("key_ada_1", ada), ("key_ada_2", ada), ("key_bob", bob)):
        Identity.objects.create(provider="openai", kind="api_key", value=value, person=person)
    return ada, bob


def totals_on_day():
    standings_refresh()
    return person_totals(Window("day", DAY, DAY))


def test_each_persons_cost_is_the_billed_sum_of_their_keys(people):
    ada, bob = people
    # Estimated from the price table.
    run_import("usage.json", openai_usage(("user-ada", 1_000_000, 100_000), ("user-bob", 2_000_000, 0)))
    estimated = totals_on_day()
    assert estimated[ada.pk].billed_cost_usd == 0 and estimated[ada.pk].cost_usd > 0
    run_import(
        "costs.json",
        openai_costs(
            [
                ("key_ada_1", "proj_a", "gpt-4.1-2025-04-14, input", "0.40"),
                ("key_ada_1", "proj_a", "gpt-4.1-2025-04-14, output", "0.25"),
                ("key_ada_2", "proj_a", "gpt-4.1-2025-04-14, input", "1.10"),
                ("key_bob", "proj_a", "gpt-4.1-2025-04-14, input", "3.00"),
                (None, "proj_unowned", "gpt-4.1-2025-04-14, input", "7.00"),  # nobody's: account-level
            ]
        ),
    )
    billed = totals_on_day()
    assert billed[ada.pk].cost_usd == Decimal("1.75")  # 0.40 + 0.25 + 1.10, not the estimate
    assert billed[ada.pk].billed_cost_usd == Decimal("1.75")
    assert billed[bob.pk].cost_usd == Decimal("3.00")
    assert billed[ada.pk].total_tokens == 1_100_000  # tokens still come from the usage export
    assert sum(t.cost_usd for t in billed.values()) == Decimal("4.75")  # the unowned 7.00 counts for nobody


def test_a_person_known_only_from_a_cost_report_is_ranked_by_cost(people, admin_client):
    ada, _bob = people
    run_import("costs.json", openai_costs([("key_ada_1", "proj_a", "gpt-4.1-2025-04-14, input", "2.50")]))
    api = admin_client.get("/api/v1/leaderboard/people/?period=custom&start=2026-09-01&end=2026-09-01&metric=cost_usd")
    rows = api.json()["results"]
    assert [(row["person"]["id"], row["rank"], row["cost_usd"]) for row in rows] == [(ada.pk, 1, "2.500000")]


def test_the_reconciliation_page_splits_billed_and_estimated(people, admin_client):
    run_import("usage.json", openai_usage(("user-ada", 1_000_000, 100_000)))
    run_import(
        "costs.json",
        openai_costs(
            [
                ("key_ada_1", "proj_a", "gpt-4.1-2025-04-14, input", "1.75"),
                (None, "proj_unowned", "gpt-4.1-2025-04-14, input", "7.00"),
            ]
        ),
    )
    standings_refresh()
    page = admin_client.get("/reconciliation/?month=2026-09")
    assert page.status_code == 200
    row = page.context["rows"][0]
    assert row.provider == "openai"
    assert row.billed == Decimal("8.75")
    assert row.attributed == Decimal("1.75") and row.unattributed == Decimal("7.00")
    assert row.estimated > 0
    assert row.difference == row.billed - row.estimated
    assert row.counted == Decimal("1.75")  # what rankings count: the person's bill, not the estimate
    assert "$8.75" in page.content.decode()
