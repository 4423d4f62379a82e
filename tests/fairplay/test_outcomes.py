"""Outcomes: stored from Claude Code analytics and Cursor daily usage, shown beside tokens with the ratios'
denominators, and only where the source covers the person's usage."""

import io
import json
from datetime import date

import pytest

from leaderboard.insights import outcome_summaries
from leaderboard.windows import window_for
from tests.factories import IdentityFactory, UsageRecordFactory, person_in_team
from usage.models import OutcomeRecord, UsageHour
from usage.services.imports import import_batch_create, import_batch_process
from usage.services.standings import standings_refresh

MONTH = window_for("month", date(2026, 9, 15))


def run_import(name: str, content: str):
    batch = import_batch_create(file=io.BytesIO(content.encode()), name=name, queue=False)
    return import_batch_process(batch.pk)


def claude_code_record(email: str, day: str, *, lines=120, commits=2, prs=1, tokens=100_000) -> dict:
    return {
        "date": f"{day}T00:00:00Z",
        "actor": {"type": "user_actor", "email_address": email},
        "core_metrics": {
            "num_sessions": 3,
            "lines_of_code": {"added": lines, "removed": 10},
            "commits_by_claude_code": commits,
            "pull_requests_by_claude_code": prs,
        },
        "model_breakdown": [
            {
                "model": "claude-sonnet-4-5-20250929",
                "tokens": {
                    "input": tokens // 10,
                    "output": tokens // 10,
                    "cache_read": tokens * 8 // 10,
                    "cache_creation": 0,
                },
                "estimated_cost": {"currency": "USD", "amount": 250},  # cents
            }
        ],
    }


@pytest.fixture
def coder(org):
    return person_in_team(org["product"], display_name="Cody Coder", email="cody@acme.example")


def test_claude_code_outcomes_are_stored_and_give_ratios_with_their_denominators(coder, org, client):
    records = [claude_code_record("cody@acme.example", day) for day in ("2026-09-01", "2026-09-02")]
    batch = run_import("claude_code.json", json.dumps({"data": records}))
    assert batch.status == "succeeded", batch.error_summary
    stored = OutcomeRecord.objects.filter(identity__person=coder)
    assert sorted((r.day.day, r.commits, r.pull_requests, r.lines_accepted) for r in stored) == [
        (1, 2, 1, 120),
        (2, 2, 1, 120),
    ]
    standings_refresh()
    (summary,) = outcome_summaries(MONTH, person_id=coder.pk)
    assert summary.covered and (summary.tokens, summary.lines_accepted) == (200_000, 240)
    assert round(summary.tokens_per_accepted_line) == 833
    assert str(summary.cost_per_pull_request) == "2.50"
    client.force_login(org["admin"])
    body = client.get(f"/people/{coder.pk}/", {"period": "month", "date": "2026-09-15"}).content.decode()
    assert "Claude Code analytics" in body and "÷ 240 lines" in body and "÷ 2 PRs" in body
    # Re-importing the same file replaces, never adds.
    run_import("claude_code-again.json", json.dumps({"data": records}))
    assert OutcomeRecord.objects.filter(identity__person=coder).count() == 2


def test_claude_code_ratios_use_its_own_tokens_not_the_persons_other_anthropic_usage(coder):
    run_import("claude_code.json", json.dumps({"data": [claude_code_record("cody@acme.example", "2026-09-01")]}))
    # Anthropic API usage through a key the same day and another day: not Claude Code's.
    key = IdentityFactory(person=coder, provider="anthropic", kind="api_key")
    for day in (date(2026, 9, 1), date(2026, 9, 5)):
        UsageRecordFactory(identity=key, provider="anthropic", day=day, input_tokens=1_000_000)
    standings_refresh()
    (summary,) = outcome_summaries(MONTH, person_id=coder.pk)
    assert summary.covered and (summary.tokens, summary.lines_accepted) == (100_000, 120)
    assert round(summary.tokens_per_accepted_line) == 833 and str(summary.cost_per_pull_request) == "2.50"


def test_no_ratio_where_the_source_does_not_cover_the_usage(coder):
    # Cursor daily usage has no tokens of its own: Cursor's usage must be reported on every day it was used.
    daily = {
        "data": [{"date": 1788220800000, "email": "cody@acme.example", "totalLinesAdded": 30, "acceptedLinesAdded": 20}]
    }
    run_import("cursor_daily.json", json.dumps(daily))
    cursor = IdentityFactory(person=coder, provider="cursor", kind="email", value="cody-cursor")
    for day in (date(2026, 9, 1), date(2026, 9, 5)):
        UsageRecordFactory(identity=cursor, provider="cursor", day=day, input_tokens=10_000)
    standings_refresh()
    (summary,) = outcome_summaries(MONTH, person_id=coder.pk)
    assert not summary.covered and (summary.covered_days, summary.usage_days) == (1, 2)
    assert summary.tokens_per_accepted_line is None and summary.cost_per_pull_request is None


def test_cursor_daily_usage_gives_lines_but_no_commits(coder):
    page = {
        "data": [
            {
                "date": 1788220800000,
                "email": "Cody@acme.example",
                "isActive": True,
                "totalLinesAdded": 300,
                "acceptedLinesAdded": 200,
                "mostUsedModel": "gpt-5",
            },
            {
                "date": 1788307200000,
                "email": "cody@acme.example",
                "isActive": False,
                "totalLinesAdded": 0,
                "acceptedLinesAdded": 0,
            },
        ],
        "period": {"startDate": 1788220800000, "endDate": 1788393600000},
    }
    batch = run_import("cursor_daily.json", json.dumps(page))
    assert batch.status == "succeeded" and batch.detected_format == "cursor_daily_usage", batch.error_summary
    assert batch.rows_skipped == 1
    record = OutcomeRecord.objects.get()
    assert (record.day, record.lines_added, record.lines_accepted, record.commits) == (date(2026, 9, 1), 300, 200, None)


def test_a_bad_outcome_row_names_its_field(coder):
    record = claude_code_record("cody@acme.example", "2026-09-01")
    record["core_metrics"]["commits_by_claude_code"] = "lots"
    batch = run_import("claude_code.json", json.dumps({"data": [record]}))
    assert batch.status == "failed"
    assert "commits_by_claude_code" in batch.error_summary
    assert not OutcomeRecord.objects.exists()


def test_event_sources_record_the_hourly_shape(coder):
    events = {
        "usageEvents": [
            {
                "timestamp": str(1788220800000 + hour * 3_600_000),
                "userEmail": "cody@acme.example",
                "model": "gpt-5",
                "tokenUsage": {"inputTokens": 100, "outputTokens": 10, "cacheWriteTokens": 0, "cacheReadTokens": 0},
            }
            for hour in (9, 9, 10)
        ]
    }
    batch = run_import("cursor_events.json", json.dumps(events))
    assert batch.status == "succeeded", batch.error_summary
    assert sorted(UsageHour.objects.values_list("hour", "requests", "total_tokens")) == [(9, 2, 220), (10, 1, 110)]


def test_titles_reward_efficiency_and_outcomes_and_volume_titles_switch_off(coder, org, settings):
    from leaderboard.insights import title_winners
    from leaderboard.windows import ranking_query_from

    heavy = person_in_team(org["product"], display_name="Vol Ume")
    UsageRecordFactory(identity=IdentityFactory(person=heavy), day=date(2026, 9, 3), input_tokens=5_000_000)
    tiny = person_in_team(org["product"], display_name="Tiny Tess")  # all output, but under the top half
    UsageRecordFactory(identity=IdentityFactory(person=tiny), day=date(2026, 9, 3), output_tokens=50)
    run_import("claude_code.json", json.dumps({"data": [claude_code_record("cody@acme.example", "2026-09-01")]}))
    standings_refresh()
    query = ranking_query_from({"date": "2026-09-15", "period": "month"})
    winners = {key: pid for key, pid, _value in title_winners(query)}
    assert winners["volume"] == heavy.pk
    assert winners["shipper"] == winners["lines"] == winners["output"] == coder.pk
    settings.TOKENBOARD_VOLUME_TITLES = False
    assert "volume" not in {key for key, _pid, _value in title_winners(query)}


def test_team_page_shows_the_teams_outcomes_to_those_who_see_its_figures(org, client):
    people = [person_in_team(org["product"], display_name=f"P{n}", email=f"p{n}@acme.example") for n in range(3)]
    records = [claude_code_record(p.email, "2026-09-01", prs=2) for p in people]
    run_import("claude_code.json", json.dumps({"data": records}))
    standings_refresh()
    (summary,) = outcome_summaries(MONTH, team_id=org["product"].pk)
    assert (summary.pull_requests, summary.tokens, summary.covered) == (6, 300_000, True)
    client.force_login(org["infra_engineer"].user)
    body = client.get(f"/teams/{org['product'].pk}/", {"period": "month", "date": "2026-09-15"}).content.decode()
    assert "Outcomes" in body and "÷ 360 lines" in body
    assert "Cost per pull request" not in body  # cost: its managers and admins only


def test_openai_hourly_buckets_record_the_hourly_shape(db):
    from pathlib import Path

    fixture = Path(__file__).parent.parent / "usage" / "fixtures" / "openai_usage_two_users.json"
    batch = run_import(fixture.name, fixture.read_text())
    assert batch.status == "succeeded", batch.error_summary
    hours = UsageHour.objects.filter(identity__value="user-Qm3AliceXyZ9")
    assert hours.count() == 2 and sum(h.requests for h in hours) == 50


def test_page_and_api_agree_on_outcomes(coder, org, client):
    records = [claude_code_record("cody@acme.example", day) for day in ("2026-09-01", "2026-09-02")]
    run_import("claude_code.json", json.dumps({"data": records}))
    client.force_login(org["product_engineer"].user)  # no cost rights over Cody
    params = {"period": "month", "date": "2026-09-15"}
    (api,) = client.get(f"/api/v1/people/{coder.pk}/", params).json()["outcomes"]
    assert (api["pull_requests"], api["lines_accepted"], api["tokens"]) == (2, 240, 200_000)
    assert round(api["tokens_per_accepted_line"]) == 833 and "cost_per_pull_request" not in api
    body = client.get(f"/people/{coder.pk}/", params).content.decode()
    assert "833" in body and "÷ 240 lines" in body and "Cost per pull request" not in body
