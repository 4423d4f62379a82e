"""One count per use: where two sources report the same person's use of a provider on a day, the preferred one
counts — whichever file is imported first — and nothing stored changes when a rule does."""

import io
import json
from datetime import date

import pytest

from leaderboard.selectors import person_totals
from tests.factories import PersonFactory
from usage.models import Identity, ImportBatch, SourcePrecedence, UsageRecord
from usage.periods import Window
from usage.services.imports import import_batch_create, import_batch_process
from usage.services.precedence import PrecedenceError, import_overlaps, precedence_delete, precedence_save
from usage.services.standings import standings_refresh

DAY = date(2026, 9, 1)
ON_DAY = Window("day", DAY, DAY)


def run_import(name: str, content: str, **kwargs) -> ImportBatch:
    batch = import_batch_create(file=io.BytesIO(content.encode()), name=name, queue=False, **kwargs)
    batch = import_batch_process(batch.pk)
    assert batch.status == "succeeded", batch.error_summary
    return batch


def anthropic_usage_report(key: str, uncached: int, output: int) -> str:
    result = {
        "uncached_input_tokens": uncached,
        "cache_creation": None,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "api_key_id": key,
        "workspace_id": None,
        "model": "claude-sonnet-4-5-20250929",
    }
    page = {"starting_at": f"{DAY}T00:00:00Z", "ending_at": "2026-09-02T00:00:00Z", "results": [result]}
    return json.dumps({"data": [page], "has_more": False, "next_page": None})


def claude_code_analytics(email: str, uncached: int, output: int, customer_type: str = "api") -> str:
    record = {
        "date": f"{DAY}T00:00:00Z",
        "actor": {"type": "user_actor", "email_address": email},
        "organization_id": "org-1",
        "customer_type": customer_type,
        "terminal_type": "vscode",
        "core_metrics": {"num_sessions": 1},
        "model_breakdown": [
            {
                "model": "claude-sonnet-4-5-20250929",
                "tokens": {"input": uncached, "output": output, "cache_read": 0, "cache_creation": 0},
                "estimated_cost": {"currency": "USD", "amount": 10},
            }
        ],
    }
    return json.dumps({"data": [record], "has_more": False, "next_page": None})


def ccusage_daily(uncached: int, output: int) -> str:
    day = {
        "date": str(DAY),
        "modelBreakdowns": [
            {
                "modelName": "claude-sonnet-4-5-20250929",
                "inputTokens": uncached,
                "outputTokens": output,
                "cacheCreationTokens": 0,
                "cacheReadTokens": 0,
                "cost": 0.1,
            }
        ],
    }
    return json.dumps({"daily": [day]})


def openai_usage(user_id: str, uncached: int, output: int) -> str:
    result = {
        "object": "organization.usage.completions.result",
        "input_tokens": uncached,
        "input_cached_tokens": 0,
        "output_tokens": output,
        "num_model_requests": 3,
        "user_id": user_id,
        "model": "gpt-4.1-2025-04-14",
        "project_id": None,
        "api_key_id": None,
        "batch": None,
    }
    bucket = {"object": "bucket", "start_time": 1788220800, "end_time": 1788224400, "results": [result]}
    return json.dumps({"object": "page", "has_more": False, "next_page": None, "data": [bucket]})


def litellm_logs(email: str, prompt: int, completion: int) -> str:
    metadata = json.dumps({"user_api_key_user_email": email}).replace('"', '""')
    return (
        "request_id,call_type,api_key,spend,total_tokens,prompt_tokens,completion_tokens,startTime,endTime,model,"
        "model_group,custom_llm_provider,user,metadata,status\n"
        f"req-1,acompletion,88dc,0.5,{prompt + completion},{prompt},{completion},2026-09-01 10:00:00+00,"
        f'2026-09-01 10:00:05+00,gpt-4.1,gpt-4.1,openai,,"{metadata}",success\n'
    )


@pytest.fixture
def ada(db):
    person = PersonFactory(email="ada@example.com", display_name="Ada")
    Identity.objects.create(provider="anthropic", kind="api_key", value="apikey_ada", person=person)
    Identity.objects.create(provider="openai", kind="user_id", value="user-ada", person=person)
    return person


def tokens_counted(person) -> int:
    standings_refresh()
    totals = person_totals(ON_DAY)
    return totals[person.pk].total_tokens if person.pk in totals else 0


@pytest.mark.parametrize("usage_report_first", [True, False])
def test_claude_code_on_org_keys_counts_once_from_the_usage_report(ada, usage_report_first):
    imports = [
        ("usage.json", anthropic_usage_report("apikey_ada", 1_000, 500)),  # the truth: 1,500 tokens
        ("claude_code.json", claude_code_analytics("ada@example.com", 900, 400)),  # the same use, seen differently
    ]
    for name, content in imports if usage_report_first else reversed(imports):
        run_import(name, content)
    assert UsageRecord.objects.count() == 2  # both are kept: precedence decides what counts, not what is stored
    assert tokens_counted(ada) == 1_500


def test_claude_code_on_a_subscription_seat_counts_beside_the_usage_report(ada):
    run_import("usage.json", anthropic_usage_report("apikey_ada", 1_000, 500))
    run_import("claude_code.json", claude_code_analytics("ada@example.com", 900, 400, customer_type="subscription"))
    assert tokens_counted(ada) == 1_500 + 1_300  # the usage report does not meter subscription seats


@pytest.mark.parametrize("analytics_first", [True, False])
def test_ccusage_beside_claude_code_analytics_counts_the_analytics(ada, analytics_first):
    imports = [
        ("claude_code.json", {"content": claude_code_analytics("ada@example.com", 900, 400, "subscription")}),
        ("ccusage.json", {"content": ccusage_daily(880, 390), "attribute_to": ada}),
    ]
    for name, kwargs in imports if analytics_first else reversed(imports):
        run_import(name, **kwargs)
    assert tokens_counted(ada) == 1_300


@pytest.mark.parametrize("provider_first", [True, False])
def test_gateway_logs_beside_the_providers_export_count_the_export(ada, provider_first):
    Identity.objects.create(provider="openai", kind="email", value="ada@example.com", person=ada)
    imports = [
        ("openai.json", openai_usage("user-ada", 2_000, 1_000)),
        ("litellm.csv", litellm_logs("ada@example.com", 1_900, 950)),
    ]
    for name, content in imports if provider_first else reversed(imports):
        run_import(name, content)
    assert tokens_counted(ada) == 3_000


def test_a_source_alone_counts_in_full(ada):
    run_import("claude_code.json", claude_code_analytics("ada@example.com", 900, 400))
    assert tokens_counted(ada) == 1_300


def test_the_import_pages_say_what_was_counted_once(ada, admin_client):
    report = run_import("usage.json", anthropic_usage_report("apikey_ada", 1_000, 500))
    analytics = run_import("claude_code.json", claude_code_analytics("ada@example.com", 900, 400))
    assert import_overlaps(analytics)[0].tokens == 1_300
    assert import_overlaps(analytics)[0].other_imports == [report.pk]
    page = admin_client.get(f"/imports/{analytics.pk}/").content.decode()
    assert "1,300 tokens of this import are also reported by import" in page
    assert f"#{report.pk}</a>" in page
    assert "counted once, from the Anthropic usage report" in page
    page = admin_client.get(f"/imports/{report.pk}/").content.decode()
    assert "1,300 tokens in import" in page and "are also reported by this import" in page


def test_removing_a_rule_recounts_without_touching_stored_usage(ada):
    run_import("usage.json", anthropic_usage_report("apikey_ada", 1_000, 500))
    run_import("claude_code.json", claude_code_analytics("ada@example.com", 900, 400))
    stored = list(UsageRecord.objects.order_by("pk").values_list("pk", "total_tokens", "updated_at"))
    assert tokens_counted(ada) == 1_500
    precedence_delete(SourcePrecedence.objects.get(preferred="anthropic_usage", over="claude_code"))
    assert tokens_counted(ada) == 2_800
    assert list(UsageRecord.objects.order_by("pk").values_list("pk", "total_tokens", "updated_at")) == stored


@pytest.mark.django_db
def test_a_rule_that_would_make_a_loop_is_refused():
    loop = SourcePrecedence(provider="anthropic", preferred="ccusage", over="anthropic_usage")
    with pytest.raises(PrecedenceError, match="would make a loop"):  # usage report > analytics > ccusage
        precedence_save(loop)
    with pytest.raises(PrecedenceError, match="over itself"):
        precedence_save(SourcePrecedence(provider="openai", preferred="litellm", over="litellm"))
    with pytest.raises(PrecedenceError, match="not a source"):
        precedence_save(SourcePrecedence(provider="openai", preferred="openai_usage", over="spreadsheet"))
    assert not SourcePrecedence.objects.filter(preferred="ccusage").exists()


def test_the_sources_page_lists_rules_and_refuses_a_loop(admin_client):
    page = admin_client.get("/sources/")
    assert page.status_code == 200
    assert "Claude Code analytics (JSON)" in page.content.decode()
    refused = admin_client.post(
        "/sources/", {"provider": "anthropic", "preferred": "ccusage", "over": "anthropic_usage"}
    )
    assert refused.status_code == 400
    assert "would make a loop" in refused.content.decode()


def test_engineers_cannot_see_or_change_sources(client, org):
    client.force_login(org["infra_engineer"].user)
    assert client.get("/sources/").status_code == 403
    rule = SourcePrecedence.objects.first()
    assert client.post(f"/sources/{rule.pk}/delete/").status_code == 403
    assert SourcePrecedence.objects.filter(pk=rule.pk).exists()


def test_the_person_page_and_api_trace_each_day_to_its_imports(ada, admin_client):
    report = run_import("usage.json", anthropic_usage_report("apikey_ada", 1_000, 500))
    analytics = run_import("claude_code.json", claude_code_analytics("ada@example.com", 900, 400))
    query = "period=custom&start=2026-09-01&end=2026-09-01"
    api = admin_client.get(f"/api/v1/people/{ada.pk}/usage/?{query}").json()
    [day] = api["provenance"]
    assert (day["day"], day["provider"], day["tokens"], day["cost_basis"]) == (
        "2026-09-01",
        "anthropic",
        1_500,
        "estimated",
    )
    sources = {share["import_id"]: share for share in day["sources"]}
    assert sources[report.pk]["counted"] and sources[report.pk]["tokens"] == 1_500
    assert not sources[analytics.pk]["counted"] and sources[analytics.pk]["tokens"] == 1_300
    assert "Anthropic usage report" in sources[analytics.pk]["note"]
    assert day["tokens"] == api["totals"]["total_tokens"]  # provenance adds up to the figures shown
    page = admin_client.get(f"/people/{ada.pk}/?{query}").content.decode()
    section = page.split("Where these figures come from", 1)[1]
    assert f"import #{report.pk}</a>: Anthropic usage report (messages, JSON), Upload" in section
    assert f'<s><a href="/imports/{analytics.pk}/">import #{analytics.pk}</a>' in section


def test_requests_a_source_does_not_report_are_unknown_not_zero(ada, admin_client):
    run_import("usage.json", anthropic_usage_report("apikey_ada", 1_000, 500))  # no request counts
    bob = PersonFactory(email="bob@example.com", display_name="Bob")
    Identity.objects.create(provider="openai", kind="user_id", value="user-bob", person=bob)
    run_import("openai.json", openai_usage("user-bob", 2_000, 1_000))  # 3 requests
    assert UsageRecord.objects.get(provider="anthropic").requests is None
    query = "period=custom&start=2026-09-01&end=2026-09-01"
    api = admin_client.get(f"/api/v1/leaderboard/people/?{query}").json()
    requests = {row["person"]["display_name"]: row["requests"] for row in api["results"]}
    assert requests == {"Ada": None, "Bob": 3}
    assert {p["provider"]: p["requests"] for p in api["providers"]} == {"anthropic": "unreported", "openai": "reported"}
    by_requests = admin_client.get(f"/api/v1/leaderboard/people/?{query}&metric=requests").json()
    assert [row["person"]["display_name"] for row in by_requests["results"]] == ["Bob"]  # Ada is not ranked as 0
    page = admin_client.get(f"/people/{ada.pk}/?{query}").content.decode()
    assert 'Requests</span><span class="stat-value"><span title="—">—</span>' in page
    board = admin_client.get(f"/?{query}&metric=requests").content.decode()
    assert "Not reported by Anthropic" in board
