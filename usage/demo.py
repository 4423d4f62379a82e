"""A believable demo org, written as real provider export files and imported through the real pipeline.

About 60 people in 8 teams under 3 groups; heavy-tailed usage (a few agent power users burning millions of
tokens a day, a long tail of light users); several models from several providers; 90 days up to today.
Deterministic for a given day, so re-running re-imports the same keys (the upsert makes it safe).
"""

import csv
import io
import json
import random
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from usage.parsers.cursor_csv import EXPORT_HEADER as CURSOR_EXPORT_HEADER

DAYS = 90
GROUPS = {
    "Engineering": ["Platform", "Product", "Data", "Mobile"],
    "Research": ["Applied ML", "Evaluation"],
    "Operations": ["Support Tools", "Security"],
}
FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Linus",
    "Radia",
    "Guido",
    "Hedy",
    "Dennis",
    "Katherine",
    "John",
    "Sophie",
    "Tim",
    "Anita",
    "Bjarne",
    "Lynn",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Fran",
    "Yukihiro",
    "Jean",
    "Brian",
    "Joan",
    "Rob",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Torvalds",
    "Perlman",
    "van Rossum",
    "Lamarr",
    "Ritchie",
    "Johnson",
    "McCarthy",
    "Wilson",
    "Berners-Lee",
    "Borg",
    "Stroustrup",
    "Conway",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Bilas",
    "Matsumoto",
    "Sammet",
    "Kernighan",
    "Clarke",
    "Pike",
]
OPENAI_MODELS = ["gpt-5-2025-08-07", "gpt-4.1-2025-04-14", "gpt-5-mini-2025-08-07"]
ANTHROPIC_MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001"]
DOMAIN = "acme.example"


@dataclass
class DemoPerson:
    email: str
    name: str
    team_path: str
    manager: bool
    weight: float  # heavy-tailed daily appetite
    openai_user_id: str
    anthropic_key_id: str
    uses_openai: bool
    uses_anthropic: bool
    uses_cursor: bool
    uses_claude_code: bool
    github_login: str


def demo_people(rng: random.Random) -> list[DemoPerson]:
    people = []
    teams = [f"{group}/{team}" for group, members in GROUPS.items() for team in members]
    for index in range(60):
        first, last = FIRST[index % len(FIRST)], LAST[(index * 7 + index // len(FIRST)) % len(LAST)]
        team = teams[index % len(teams)]
        email = f"{first.lower()}.{last.lower().replace(' ', '')}{index}@{DOMAIN}"
        # Pareto tail: a handful of power users run agents all day, most people use a little.
        weight = min(rng.paretovariate(1.1), 60.0)
        people.append(
            DemoPerson(
                email=email,
                name=f"{first} {last}",
                team_path=team,
                manager=index < len(teams),
                weight=weight,
                openai_user_id=f"user-demo{index:03d}",
                anthropic_key_id=f"apikey_01demo{index:03d}",
                uses_openai=rng.random() < 0.7,
                uses_anthropic=rng.random() < 0.8,
                uses_cursor=rng.random() < 0.45,
                uses_claude_code=rng.random() < 0.3,
                github_login=f"{first.lower()}-{index}-gh",
            )
        )
    return people


def org_csv(people: list[DemoPerson]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    # OpenAI user ids are not here: the OpenAI users directory file maps them to emails, as in real life.
    writer.writerow(["email", "name", "team", "manager", "effective", "anthropic_api_key_id", "github_copilot_user_id"])
    start = (date.today() - timedelta(days=DAYS + 30)).isoformat()
    for person in people:
        writer.writerow(
            [
                person.email,
                person.name,
                person.team_path,
                "yes" if person.manager else "no",
                start,
                person.anthropic_key_id,
                person.github_login,
            ]
        )
    return out.getvalue()


def _daily_tokens(rng: random.Random, person: DemoPerson, day: date) -> int:
    if day.weekday() >= 5 and rng.random() < 0.7:
        return 0
    if rng.random() < 0.15:
        return 0
    return int(person.weight * rng.uniform(40_000, 160_000))


def openai_usage_pages(rng: random.Random, people: list[DemoPerson], today: date) -> str:
    """OpenAI /v1/organization/usage/completions pages (1d buckets, grouped by user and model), as JSON lines."""
    lines = []
    for offset in range(DAYS, -1, -1):
        day = today - timedelta(days=offset)
        start = int(datetime.combine(day, time(), tzinfo=UTC).timestamp())
        results = []
        for person in people:
            if not person.uses_openai:
                continue
            tokens = _daily_tokens(rng, person, day) // 2
            if not tokens:
                continue
            model = (
                OPENAI_MODELS[zlib.crc32(person.email.encode()) % len(OPENAI_MODELS)]
                if rng.random() < 0.8
                else rng.choice(OPENAI_MODELS)
            )
            cached = int(tokens * rng.uniform(0.2, 0.6))
            output = int(tokens * rng.uniform(0.05, 0.15))
            results.append(
                {
                    "object": "organization.usage.completions.result",
                    "input_tokens": tokens,
                    "input_cached_tokens": cached,
                    "input_cache_write_tokens": 0,
                    "input_uncached_tokens": tokens - cached,
                    "output_tokens": output,
                    "num_model_requests": max(1, tokens // 9000),
                    "user_id": person.openai_user_id,
                    "model": model,
                    "project_id": None,
                    "api_key_id": None,
                    "batch": None,
                }
            )
        # One service-account key nobody has mapped yet: shows up as unassigned for admins.
        results.append(
            {
                "object": "organization.usage.completions.result",
                "input_tokens": 250_000,
                "input_cached_tokens": 0,
                "input_cache_write_tokens": 0,
                "output_tokens": 20_000,
                "num_model_requests": 40,
                "user_id": None,
                "api_key_id": "key_ciBatchJobs",
                "model": "gpt-4.1-2025-04-14",
                "project_id": "proj_ci",
                "batch": None,
            }
        )
        page = {
            "object": "page",
            "has_more": offset > 0,
            "next_page": None,
            "data": [{"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results}],
        }
        lines.append(json.dumps(page))
    return "\n".join(lines) + "\n"


def _anthropic_day_results(rng: random.Random, people: list[DemoPerson], day: date) -> list[dict]:
    """The day's usage report rows (grouped by api key and model) of everyone who uses the API."""
    results = []
    for person in people:
        if not person.uses_anthropic:
            continue
        tokens = _daily_tokens(rng, person, day)
        if not tokens:
            continue
        model = ANTHROPIC_MODELS[0] if rng.random() < 0.6 else rng.choice(ANTHROPIC_MODELS)
        cache_read = int(tokens * rng.uniform(0.5, 0.8))
        cache_write = int(tokens * rng.uniform(0.05, 0.15))
        output = int(tokens * rng.uniform(0.03, 0.08))
        results.append(
            {
                "uncached_input_tokens": max(0, tokens - cache_read - cache_write - output),
                "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": cache_write},
                "cache_read_input_tokens": cache_read,
                "output_tokens": output,
                "server_tool_use": {"web_search_requests": 0},
                "api_key_id": person.anthropic_key_id,
                "workspace_id": "wrkspc_demo",
                "model": model,
                "service_tier": None,
                "context_window": None,
            }
        )
    return results


def anthropic_usage_pages(rng: random.Random, people: list[DemoPerson], today: date) -> str:
    """Anthropic usage_report/messages pages (1d buckets, grouped by api key and model), as a JSON array. The
    day of the looping key is not in it: that day's report is the hourly one of looping_key_pages."""
    pages = []
    for offset in range(DAYS, -1, -1):
        if offset == LOOP_DAYS_AGO:
            continue
        day = today - timedelta(days=offset)
        pages.append(
            {
                "data": [
                    {
                        "starting_at": f"{day.isoformat()}T00:00:00Z",
                        "ending_at": f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
                        "results": _anthropic_day_results(rng, people, day),
                    }
                ],
                "has_more": offset > 0,
                "next_page": None,
            }
        )
    return json.dumps(pages)


def openai_users_directory(people: list[DemoPerson]) -> str:
    """OpenAI /v1/organization/users: maps the usage API's user ids to emails."""
    users = [
        {
            "object": "organization.user",
            "id": p.openai_user_id,
            "name": p.name,
            "email": p.email,
            "role": "reader",
            "added_at": 1735689600,
        }
        for p in people
    ]
    return json.dumps(
        {"object": "list", "data": users, "first_id": users[0]["id"], "last_id": users[-1]["id"], "has_more": False}
    )


def cursor_events_csv(rng: random.Random, people: list[DemoPerson], today: date) -> str:
    """Cursor dashboard usage-events CSV: one row per request, emails in varying case, dollar costs."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(CURSOR_EXPORT_HEADER)
    models = ["claude-4.5-sonnet-thinking", "gpt-5", "composer-1"]
    for offset in range(DAYS, -1, -1):
        day = today - timedelta(days=offset)
        for person in people:
            if not person.uses_cursor or not _daily_tokens(rng, person, day):
                continue
            for _ in range(rng.randint(1, 6)):
                moment = datetime.combine(day, time(rng.randint(7, 19), rng.randint(0, 59)), tzinfo=UTC)
                write, plain = rng.randint(0, 20_000), rng.randint(500, 6_000)
                cache_read, output = int(person.weight * rng.randint(5_000, 40_000)), rng.randint(200, 9_000)
                total = write + plain + cache_read + output
                email = person.email.upper() if rng.random() < 0.1 else person.email
                cost = f"${total / 1_000_000 * 1.2:.2f}" if rng.random() < 0.6 else "Included"
                writer.writerow(
                    [
                        moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                        email,
                        "",
                        "",
                        "Usage-based",
                        rng.choice(models),
                        "No",
                        write,
                        plain,
                        cache_read,
                        output,
                        total,
                        cost,
                    ]
                )
    return out.getvalue()


def claude_code_pages(rng: random.Random, people: list[DemoPerson], today: date) -> str:
    """Claude Code analytics, per user per day: on org API keys for people who also use the API (the usage report
    meters the same tokens; source precedence counts them once), on subscription seats for the others."""
    records = []
    for offset in range(DAYS, -1, -1):
        day = today - timedelta(days=offset)
        for person in people:
            tokens = _daily_tokens(rng, person, day) if person.uses_claude_code else 0
            if not tokens:
                continue
            breakdown = []
            for model in ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"):
                share = tokens // 2
                split = {
                    "input": share // 10,
                    "output": share // 20,
                    "cache_read": share * 7 // 10,
                    "cache_creation": share // 10,
                }
                breakdown.append(
                    {
                        "model": model,
                        "tokens": split,
                        "estimated_cost": {"currency": "USD", "amount": round(share / 1_000_000 * 300)},
                    }
                )
            records.append(
                {
                    "date": f"{day.isoformat()}T00:00:00Z",
                    "actor": {"type": "user_actor", "email_address": person.email},
                    "organization_id": "org-demo",
                    "customer_type": "api" if person.uses_anthropic else "subscription",
                    **({} if person.uses_anthropic else {"subscription_type": "team"}),
                    "terminal_type": "vscode",
                    "core_metrics": {
                        "num_sessions": rng.randint(1, 8),
                        "lines_of_code": {"added": 120, "removed": 40},
                        "commits_by_claude_code": 2,
                        "pull_requests_by_claude_code": 1,
                    },
                    "model_breakdown": breakdown,
                }
            )
    return json.dumps({"data": records, "has_more": False, "next_page": None})


def copilot_premium_csv(rng: random.Random, people: list[DemoPerson], today: date) -> str:
    """GitHub Copilot premium-request usage report: requests (no tokens) by day, user and model."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "date",
            "username",
            "product",
            "sku",
            "model",
            "quantity",
            "unit_type",
            "applied_cost_per_quantity",
            "gross_amount",
            "discount_amount",
            "net_amount",
            "exceeds_quota",
            "total_monthly_quota",
            "organization",
            "cost_center_name",
        ]
    )
    for offset in range(min(DAYS, 30), -1, -1):
        day = today - timedelta(days=offset)
        for person in people[::3]:
            if rng.random() < 0.4:
                continue
            quantity = rng.randint(1, 30)
            gross = quantity * 0.04
            writer.writerow(
                [
                    day.isoformat(),
                    person.github_login,
                    "copilot",
                    "copilot_premium_request",
                    "Claude Sonnet 4.5",
                    quantity,
                    "requests",
                    "0.04",
                    f"{gross:.2f}",
                    f"{gross:.2f}",
                    "0.00",
                    "False",
                    300,
                    "acme",
                    "",
                ]
            )
    return out.getvalue()


LOOP_DAYS_AGO = 3
LOOP_MODEL = "claude-3-5-haiku-20241022"  # no one's everyday model, so the loop's rows stand apart


def looping_key_pages(rng: random.Random, people: list[DemoPerson], today: date) -> str:
    """The org's hourly usage report of the day an agent was left looping on one Anthropic API key: hourly
    buckets around the clock, a flat cadence, huge input and almost no output. The anomaly rules hold the day,
    so it shows on /review/. A newer export of a day replaces the day whole, so this report carries everyone's
    usage of the day too (in its 10:00 bucket), as a real org export would."""
    person = next(p for p in people if p.uses_anthropic)
    day = today - timedelta(days=LOOP_DAYS_AGO)
    everyone = _anthropic_day_results(rng, people, day)
    buckets = []
    for hour in range(24):
        start = datetime.combine(day, time(hour), tzinfo=UTC)
        loop = {
            "uncached_input_tokens": 2_000_000,
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
            "cache_read_input_tokens": 0,
            "output_tokens": 150,
            "server_tool_use": {"web_search_requests": 0},
            "api_key_id": person.anthropic_key_id,
            "workspace_id": "wrkspc_demo",
            "model": LOOP_MODEL,
            "service_tier": None,
            "context_window": None,
        }
        buckets.append(
            {
                "starting_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ending_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "results": [loop, *(everyone if hour == 10 else [])],
            }
        )
    return json.dumps({"data": buckets, "has_more": False, "next_page": None})


def demo_exports(folder: Path, today: date | None = None) -> tuple[Path, list[Path]]:
    """Write the org CSV and the provider export files; returns (org csv, exports)."""
    today = today or date.today()
    rng = random.Random(f"tokenboard-demo-{today.isoformat()}")
    people = demo_people(random.Random("tokenboard-demo-people"))
    folder.mkdir(parents=True, exist_ok=True)
    org_path = folder / "org.csv"
    org_path.write_text(org_csv(people))
    files = {
        "openai_users.json": openai_users_directory(people),
        "openai_completions_usage.jsonl": openai_usage_pages(rng, people, today),
        "anthropic_usage_report_messages.json": anthropic_usage_pages(rng, people, today),
        "cursor_usage_events.csv": cursor_events_csv(rng, people, today),
        "claude_code_analytics.json": claude_code_pages(rng, people, today),
        "copilot_premium_requests.csv": copilot_premium_csv(rng, people, today),
        "anthropic_usage_report_looping_key.json": looping_key_pages(rng, people, today),
    }
    paths = []
    for name, content in files.items():
        path = folder / name
        path.write_text(content)
        paths.append(path)
    return org_path, paths


def _two_figures(value: float) -> int:
    """A round allowance: two significant figures."""
    if value <= 0:
        return 0
    digits = len(str(int(value))) - 2
    return int(round(value / 10**digits) * 10**digits) if digits > 0 else int(round(value))


def demo_budgets(today: date, manager_team_id: int | None) -> list[str]:
    """Allowances and a team budget sized from the demo's own usage (its daily rollups), so the burn-down, the
    allowance-used ranking and the digest show real content: Engineering and Research get a team default a
    little above last month's median person, the three biggest users their own allowance, and the demo
    manager's team a budget of last month's total. Operations has none, so its people are listed apart."""
    # Imported here: writing the export files above needs no database.
    from django.db.models import Sum

    from usage.models import DailyRollup, Person, Team
    from usage.periods import window_for
    from usage.services.budgets import allowance_save, budget_save

    last_month = window_for("month", today.replace(day=1) - timedelta(days=1))
    rollups = DailyRollup.objects.filter(day__gte=last_month.start, day__lte=last_month.end, person__isnull=False)
    monthly = dict(
        rollups.values_list("person_id").annotate(tokens=Sum("total_tokens")).values_list("person_id", "tokens")
    )
    if not monthly:
        return []
    ranked = sorted(monthly.values())
    median = ranked[len(ranked) // 2]
    # Early in a month its burn-down has hardly a day to show: then the demo's limits are quarterly.
    period, months = ("month", 1) if today.day >= 8 else ("quarter", 3)
    done = []
    for name in ("Engineering", "Research"):
        team = Team.objects.filter(name=name, parent__isnull=True).first()
        if team is not None:
            tokens = _two_figures(median * 1.5 * months)
            allowance_save(team=team, period=period, tokens=tokens, start=last_month.start)
            done.append(f"{name}: default allowance {tokens:,} tokens a {period}")
    for person_id, tokens in sorted(monthly.items(), key=lambda item: -item[1])[:3]:
        allowance_save(
            person=Person.objects.get(pk=person_id), tokens=_two_figures(tokens * 1.1), start=last_month.start
        )
    done.append("the three biggest users: their own allowance")
    if manager_team_id is not None:
        team_tokens = rollups.filter(team_id=manager_team_id).aggregate(tokens=Sum("total_tokens"))["tokens"] or 0
        budget_save(
            team=Team.objects.get(pk=manager_team_id),
            tokens=_two_figures(team_tokens) or 1_000_000,
            start=last_month.start,
        )
        done.append(f"team budget of {_two_figures(team_tokens):,} tokens a month for the demo manager's team")
    return done
