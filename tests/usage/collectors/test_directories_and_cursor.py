"""Id → email lists pulled beside the usage (so usage links to people), and Cursor's Admin API."""

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.factories import PersonFactory
from tests.usage.collectors.fake_providers import GOOD_KEY
from usage.collectors.cursor import CursorCollector
from usage.models import Identity, ImportBatch, ProviderConnection, UsageRecord
from usage.parsers.registry import FORMATS
from usage.services.connections import connection_create, connection_sync

pytestmark = pytest.mark.django_db


def use_parser(monkeypatch, module: str) -> str:
    """Register a parser for this test (they are written in parallel; the registry may not list them yet)."""
    parser = pytest.importorskip(f"usage.parsers.{module}").FORMAT
    monkeypatch.setitem(FORMATS, parser.name, parser)
    return parser.name


def test_openai_users_and_project_keys_are_pulled_first_and_link_usage_to_people(
    openai_api, frozen_now, sleeps, monkeypatch
):
    from tests.usage.collectors.test_pulls import openai_result

    use_parser(monkeypatch, "openai_directory")
    alice = PersonFactory(email="alice@acme.example")
    bob = PersonFactory(email="bob@acme.example")
    openai_api.page_size = 1  # every list takes several pages: after=<last id>
    openai_api.users = [
        {
            "object": "organization.user",
            "id": "user-alice",
            "name": "Alice",
            "email": "Alice@Acme.example",
            "role": "owner",
        },
        {
            "object": "organization.user",
            "id": "user-carol",
            "name": "Carol",
            "email": "carol@acme.example",
            "role": "reader",
        },
    ]
    openai_api.projects = [
        {"object": "organization.project", "id": "proj_1", "name": "Default"},
        {"object": "organization.project", "id": "proj_2", "name": "Bots"},
    ]
    openai_api.api_keys = {
        "proj_2": [
            {
                "object": "organization.project.api_key",
                "id": "key_bob",
                "name": "bob laptop",
                "redacted_value": "sk-...abcd",
                "owner": {"type": "user", "user": {"id": "user-bob", "email": "bob@acme.example"}},
            }
        ]
    }
    hour = datetime(2026, 9, 14, 10, tzinfo=UTC)
    usage_by_key = dict(
        openai_result("ignored", "gpt-5", input_tokens=100, output=10), user_id=None, api_key_id="key_bob"
    )
    openai_api.hourly = {hour: [openai_result("user-alice", "gpt-5", input_tokens=1000, output=100), usage_by_key]}
    connection = connection_create(
        provider="openai", name="org", api_key=GOOD_KEY, base_url=openai_api.url, restatement_days=0
    )

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert result.ok, result.message
    assert openai_api.violations == []
    assert [r.param("after") for r in openai_api.requests_to("/organization/users")] == [None, "user-alice"]
    batches = list(ImportBatch.objects.order_by("pk").values_list("detected_format", flat=True))
    assert batches[:2] == ["openai_directory", "openai_usage"]
    assert Identity.objects.get(kind="user_id", value="user-alice").person == alice
    assert Identity.objects.get(kind="api_key", value="key_bob").person == bob
    by_person = {
        r.identity.person.email: r.total_tokens for r in UsageRecord.objects.select_related("identity__person")
    }
    assert by_person == {"alice@acme.example": 1100, "bob@acme.example": 110}


def cursor_event(moment: datetime, email: str, *, tokens: int) -> dict:
    return {
        "timestamp": str(int(moment.timestamp() * 1000)),
        "userEmail": email,
        "model": "claude-4-sonnet",
        "kindLabel": "Usage-based",
        "maxMode": False,
        "isTokenBasedCall": True,
        "tokenUsage": {
            "inputTokens": tokens,
            "outputTokens": tokens // 10,
            "cacheWriteTokens": 0,
            "cacheReadTokens": tokens * 10,
            "totalCents": 1.5,
        },
    }


def test_cursor_events_are_pulled_in_30_day_slices_with_basic_auth_to_the_last_page(cursor_api, frozen_now, sleeps):
    cursor_api.page_size = 10
    # One event a day at noon from 08-01 to 09-14; the window below starts 08-09 00:00 UTC.
    cursor_api.events = [
        cursor_event(datetime(2026, 8, 1, 12, tzinfo=UTC) + timedelta(days=n), "alice@acme.example", tokens=100)
        for n in range(45)
    ]
    collector = CursorCollector(api_key=GOOD_KEY, base_url=cursor_api.url)

    [dataset] = collector.collect(datetime(2026, 8, 9, tzinfo=UTC), frozen_now, formats={"cursor_api"})

    assert cursor_api.violations == []
    assert dataset.records == 37  # 08-09 … 09-14, each exactly once
    bodies = [r.body for r in cursor_api.requests]
    assert all(r.headers["authorization"].startswith("Basic ") for r in cursor_api.requests)
    # 08-09 → 09-08 (30 days, 30 events: 3 pages) then 09-08 → now (7 events: 1 page).
    assert [(b["page"], b["pageSize"]) for b in bodies] == [(1, 100), (2, 100), (3, 100), (1, 100)]
    assert bodies[3]["startDate"] == bodies[0]["endDate"] == int(datetime(2026, 9, 8, tzinfo=UTC).timestamp() * 1000)


def test_a_cursor_connection_imports_events_by_email(cursor_api, frozen_now, sleeps, monkeypatch):
    use_parser(monkeypatch, "cursor_api")
    alice = PersonFactory(email="alice@acme.example")
    cursor_api.events = [
        cursor_event(datetime(2026, 9, 14, 9, tzinfo=UTC), "Alice@acme.example", tokens=100),
        cursor_event(datetime(2026, 9, 14, 17, tzinfo=UTC), "alice@acme.example", tokens=300),
    ]
    connection = connection_create(
        provider="cursor", name="team", api_key=GOOD_KEY, base_url=cursor_api.url, restatement_days=0
    )

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert result.ok, result.message
    record = UsageRecord.objects.get()
    assert record.identity.person == alice and record.day == date(2026, 9, 14)
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens, record.requests) == (400, 40, 4000, 2)
    assert str(record.cost_usd) == "0.030000"  # 2 × 1.5 cents


def test_a_connection_added_in_the_ui_produces_rankings_without_any_upload(
    client, org, openai_api, frozen_now, sleeps, lock_cache, monkeypatch, sent_tasks
):
    from tests.usage.collectors.test_pulls import openai_result

    use_parser(monkeypatch, "openai_directory")
    ivy = org["infra_engineer"]
    openai_api.users = [{"object": "organization.user", "id": "user-ivy", "name": "Ivy", "email": ivy.email}]
    openai_api.hourly = {
        datetime(2026, 9, 14, 10, tzinfo=UTC): [openai_result("user-ivy", "gpt-5", input_tokens=123_000, output=4_567)]
    }
    client.force_login(org["admin"])
    client.post(
        "/connections/new/",
        {
            "provider": "openai",
            "name": "OpenAI org",
            "api_key": GOOD_KEY,
            "base_url": openai_api.url,
            "schedule": "0 * * * *",
            "restatement_days": "1",
            "enabled": "on",
        },
    )
    connection = ProviderConnection.objects.get()
    client.post(f"/connections/{connection.pk}/sync/")
    kwargs = sent_tasks.pull_provider_usage.call_args.kwargs
    # What the worker does with the queued message (the real worker path is test_beat_worker.py).
    from usage.tasks import pull_provider_usage

    pull_provider_usage.run(**kwargs)

    page = client.get("/?period=custom&start=2026-09-01&end=2026-09-30").content.decode()
    table = page[page.find("<table") : page.find("</table>")]
    assert ivy.display_name in table and "127,567" in table, table
    connections_page = client.get("/connections/").content.decode()
    assert "OK" in connections_page and "Failing" not in connections_page


def test_claude_code_analytics_are_asked_for_one_utc_day_at_a_time(anthropic_api, frozen_now, sleeps, monkeypatch):
    use_parser(monkeypatch, "claude_code")
    anthropic_api.page_size = 1
    record = {
        "date": "2026-09-14T00:00:00Z",
        "actor": {"type": "user_actor", "email_address": "Dana@acme.example"},
        "organization_id": "org_1",
        "customer_type": "subscription",
        "terminal_type": "vscode",
        "core_metrics": {"num_sessions": 3},
        "model_breakdown": [
            {
                "model": "claude-sonnet-4-5",
                "tokens": {"input": 1000, "output": 200, "cache_read": 5000, "cache_creation": 300},
                "estimated_cost": {"currency": "USD", "amount": 150},
            }
        ],
    }
    other = dict(record, actor={"type": "user_actor", "email_address": "erin@acme.example"})
    anthropic_api.claude_code = {"2026-09-14": [record, other]}
    connection = connection_create(
        provider="anthropic", name="org", api_key=GOOD_KEY, base_url=anthropic_api.url, restatement_days=1
    )

    result = connection_sync(connection, since=date(2026, 9, 14))

    assert result.ok, result.message
    asked = [(r.param("starting_at"), r.param("page")) for r in anthropic_api.requests_to("claude_code")]
    assert asked == [("2026-09-13", None), ("2026-09-14", None), ("2026-09-14", "page_1"), ("2026-09-15", None)]
    dana = UsageRecord.objects.get(identity__value="dana@acme.example")
    assert (dana.day, dana.input_tokens, dana.cache_read_tokens, dana.cache_write_tokens) == (
        date(2026, 9, 14),
        1000,
        5000,
        300,
    )
    assert str(dana.cost_usd) == "1.500000"  # 150 cents


def test_a_cursor_connection_pulls_daily_usage_outcomes(cursor_api, frozen_now, sleeps):
    from usage.models import OutcomeRecord

    cody = PersonFactory(email="cody@acme.example")
    day = datetime(2026, 9, 14, tzinfo=UTC)
    cursor_api.daily = [
        {
            "date": int(day.timestamp() * 1000),
            "email": "Cody@acme.example",
            "isActive": True,
            "totalLinesAdded": 50,
            "acceptedLinesAdded": 40,
        }
    ]
    connection = connection_create(
        provider="cursor", name="team", api_key=GOOD_KEY, base_url=cursor_api.url, restatement_days=0
    )
    result = connection_sync(connection, since=date(2026, 9, 14))
    assert result.ok, result.message
    record = OutcomeRecord.objects.get()
    assert (record.identity.person, record.day, record.lines_added, record.lines_accepted) == (
        cody,
        date(2026, 9, 14),
        50,
        40,
    )
