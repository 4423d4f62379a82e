"""Rankings benchmark: a large org's year of usage on PostgreSQL, the rollup rebuild, then the rankings' API and
pages timed in-process.

    .venv/bin/python bench/rankings.py --people 85000 --days 365 [--db NAME] [--keep] [--requests 20] [--skip-fill]
    .venv/bin/python bench/rankings.py --db NAME --skip-fill --rebuild --keep   # after a failed rebuild

Set REDIS_URL, as a deployment does: without it the shared cache and the sessions are in the database (the
embedded default), and an answer from the response cache costs three more queries. The header line says which.

1. Creates the scratch database NAME (default tokenboard_bench_rankings; the name must contain "bench", and an
   existing database of that name is dropped first) on --server, migrates it in-process and fills it with
   PostgreSQL COPY (psycopg cursor.copy), never through the ORM: one root org, 12 groups and a leaf team per
   ~156 people; every person a current membership from 2020-01-01 (5 % move to another leaf team on a random
   day of the window); one OpenAI and one Anthropic user id per person; one import batch; usage for the last
   --days days ending today. Each person is active on ~60 % of the days (their own rate; fewer on weekends),
   with a lognormal volume of their own and a trend over the window, and uses 1-3 of their favourite models a
   day. A fixed seed makes every fill the same for the same --people, --days and day. The usage table's
   secondary indexes and constraints are dropped for the COPY and rebuilt after it; then ANALYZE.
2. Runs `manage.py rebuild_rollups` (call_command) and times it, then warms the current windows' titles as the
   worker does after every refresh (leaderboard.warm_titles: titles, movers, the models list), and times that.
3. Times the naive ranking SQL on the usage table (30 and 365 days), then, with Django's test Client in-process
   (middleware, session, view, queries, serializer or template; no network hop), 2 warm-up and --requests
   timed requests of each leaderboard API query and page (engineer linked to the heaviest person; the person
   page as an admin): the first request's wall ms (the cache emptied before that warm-up, as after a
   refresh), p50 / p95 / max wall ms, median CPU ms of this process (PostgreSQL's share excluded) and
   the SQL queries of one request. The API's answers are computed for these timings: the response cache
   (leaderboard.api.response_cache) is off. Last, requests per second of the login page (anonymous) and of the
   30-day people API (engineer), served from the response cache and computed: 10 s each, the three loops taking
   turns in 1 s slices. Then the refreshes that follow an import of today's usage: today's rows of 1 % of the
   people restated, then of everyone, each followed by standings_refresh, timed by step. They change the
   database's usage.
4. Drops the database unless --keep (it is kept, too, when the run fails). --skip-fill reuses an existing
   database (no creation, fill or rebuild): the standings are then those of the day it was filled on, unless
   --rebuild runs rebuild_rollups on it first. --fill-only stops after the fill and keeps the database (fill once,
   then time rebuilds of it with --skip-fill --rebuild). --skip-fill --during-rebuild times reads while
   rebuild_rollups runs in another process, and stops. --skip-fill --import-file openai (or cursor; :ROWS for
   another size than 1,000,000) imports bench/ingest.py's export into the org, times the refresh after its commit
   (import → standings) with its slowest SQL statements, and stops; the imported usage stays in the database.

Prints markdown tables, for docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import warnings
from contextlib import nullcontext
from datetime import date, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "tokenboard_bench_rankings"
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"
SEED = 4242
GROUPS = 12
PEOPLE_PER_TEAM = 156
MOVERS = 0.05
MEMBERSHIP_START = date(2020, 1, 1)
ACCOUNT = "acct-1"
USAGE_KIND = "tokens"
# List prices, USD per million tokens: input, cache write, cache read, output (the cost is "estimated").
MODELS = {
    "openai": {
        "gpt-5": (1.25, 0, 0.125, 10),
        "gpt-5-mini": (0.25, 0, 0.025, 2),
        "gpt-4.1": (2, 0, 0.5, 8),
        "o3": (2, 0, 0.5, 8),
    },
    "anthropic": {
        "claude-sonnet-4-5": (3, 3.75, 0.3, 15),
        "claude-opus-4-1": (15, 18.75, 1.5, 75),
        "claude-haiku-4-5": (1, 1.25, 0.1, 5),
    },
}
POPULARITY = {  # how likely a model is among a person's favourites, before their provider preference
    "gpt-5": 5,
    "gpt-5-mini": 2,
    "gpt-4.1": 2,
    "o3": 1,
    "claude-sonnet-4-5": 6,
    "claude-opus-4-1": 2,
    "claude-haiku-4-5": 1,
}
# A row's tokens: shares of input, cache write, cache read, output.
SPLIT = {"openai": (0.38, 0.0, 0.52, 0.10), "anthropic": (0.04, 0.07, 0.84, 0.05)}
MODEL_SHARE = (1.0, 0.45, 0.2)  # the day's first, second and third model
MEDIAN_DAILY_TOKENS = 2_000_000  # a median person's active day
VOLUME_SIGMA = 1.4  # lognormal spread between people (the top 1 % use ~25x the median)
NOISE_SIGMA = 0.8  # lognormal spread of one person's days
WEEKEND_FACTOR = 0.3  # activity rate on Saturdays and Sundays, of the weekday rate
TOKENS_PER_REQUEST = 50_000
FIRST_NAMES = "Ada Ben Chloe Dev Emma Farid Grace Hugo Ines Jonas Kira Liam Maya Noor Omar Priya Quinn Rosa Sam Tara"
LAST_NAMES = "Adler Brandt Costa Dubois Evans Fischer Garcia Haas Ito Jensen Kim Lopez Moreau Novak Okafor Patel"
USAGE_COLUMNS = (
    "day, provider, account, identity_id, model, usage_kind, input_tokens, cache_write_tokens, cache_read_tokens, "
    "output_tokens, total_tokens, requests, cost_usd, cost_source, import_batch_id, updated_at"
)
PERIODS = ("day", "week", "month", "quarter", "year", "7d", "30d", "90d", "all")
WARMUP = 2
RATE_SECONDS = 10.0
READ_LOCK_TIMEOUT = "10s"  # --during-rebuild
READS_PAUSE = 0.25  # --during-rebuild: seconds between rounds of reads, so they leave the rebuild a core


# --- database ----------------------------------------------------------------------------------------------


def server_params(server: str) -> dict:
    import environ

    config = environ.Env.db_url_config(f"{server.rstrip('/')}/postgres")
    keys = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}
    return {key: config[name] for key, name in keys.items() if config.get(name)}


def admin_connection(params: dict):
    import psycopg

    return psycopg.connect(dbname="postgres", autocommit=True, **params)


def database_exists(params: dict, name: str) -> bool:
    with admin_connection(params) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def database_drop(params: dict, name: str) -> None:
    with admin_connection(params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_create(params: dict, name: str) -> None:
    with admin_connection(params) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            print(f"dropped the existing database {name}")
        admin.execute(f'CREATE DATABASE "{name}"')
    print(f"created database {name}")


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leaderboard.settings")
    os.environ["DEBUG"] = "false"  # DEBUG keeps every SQL statement in memory
    warnings.filterwarnings("ignore", "No directory at", UserWarning)  # WhiteNoise: no collected static files
    import django

    django.setup()


def database_prepare() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)  # as `make migrate` does


# --- fill ----------------------------------------------------------------------------------------------------


def org_plan(people: int, days: list[date], rng: random.Random) -> dict:
    """Teams, people, memberships and identities as rows for COPY, and each person's usage habits."""
    leaves = max(1, round(people / PEOPLE_PER_TEAM))
    groups = min(GROUPS, leaves)
    teams = [(1, "Bench Org", "bench-org", None)]
    teams += [(2 + g, f"Group {g + 1:02d}", f"group-{g + 1:02d}", 1) for g in range(groups)]
    leaf_ids = [2 + groups + n for n in range(leaves)]
    teams += [(leaf, f"Team {n + 1:04d}", f"team-{n + 1:04d}", 2 + n % groups) for n, leaf in enumerate(leaf_ids)]
    leaf_weights = [rng.lognormvariate(0, 0.4) for _ in leaf_ids]  # teams of different sizes

    firsts, lasts = FIRST_NAMES.split(), LAST_NAMES.split()
    now = datetime.now().astimezone()
    from usage.models import _pseudonym_for

    persons, memberships, identities = [], [], []
    for index in range(people):
        pid = index + 1
        first, last = rng.choice(firsts), rng.choice(lasts)
        email = f"{first}.{last}.{pid}@bench.example".lower()
        persons.append((pid, email, f"{first} {last}", True, rng.random() < 0.9, _pseudonym_for(email), None))
        team = rng.choices(leaf_ids, leaf_weights)[0]
        if len(days) > 1 and len(leaf_ids) > 1 and rng.random() < MOVERS:
            moved = days[rng.randrange(len(days) - 1)]  # last day in the first team; the second starts by today
            other = leaf_ids[(leaf_ids.index(team) + 1 + rng.randrange(leaves - 1)) % leaves]
            memberships.append((len(memberships) + 1, pid, team, MEMBERSHIP_START, moved))
            memberships.append((len(memberships) + 1, pid, other, moved + timedelta(days=1), None))
        else:
            memberships.append((len(memberships) + 1, pid, team, MEMBERSHIP_START, None))
        for offset, provider in enumerate(MODELS):
            identities.append((2 * index + 1 + offset, provider, "user_id", f"{provider}-user-{pid:06d}", pid, now))

    # Usage habits: weekday activity rate (mean 0.75, so ~60 % of all days), volume, trend, favourite models.
    habits = []
    for _ in range(people):
        rate = min(0.97, rng.betavariate(6, 2))
        volume = MEDIAN_DAILY_TOKENS * rng.lognormvariate(0, VOLUME_SIGMA)
        trend = rng.uniform(-0.6, 1.6)  # volume at the window's end, relative to its start: 1 + trend
        prefer = rng.choice(("openai", "anthropic", "both", "anthropic", "openai"))
        weights = {
            model: POPULARITY[model] * (1 if prefer in ("both", provider) else 0.15)
            for provider, models in MODELS.items()
            for model in models
        }
        favourites = sorted(weights, key=lambda model: rng.random() ** (1 / weights[model]), reverse=True)[:3]
        habits.append((rate, volume, trend, favourites))
    return {
        "teams": teams,
        "leaf_ids": leaf_ids,
        "group_ids": [2 + g for g in range(groups)],
        "persons": persons,
        "memberships": memberships,
        "identities": identities,
        "habits": habits,
    }


def copy_rows(cursor, table: str, columns: str, rows: list[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def usage_secondary_ddl(cursor) -> tuple[list[str], list[str], list[str]]:
    """The usage table's unique and foreign-key constraints and its other indexes (not the primary key): the
    statements that drop them and those that recreate them, as migrate made them."""
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'usage_usagerecord'::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname"
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = 'usage_usagerecord'::regclass AND NOT indisprimary AND indexrelid NOT IN "
        "(SELECT conindid FROM pg_constraint WHERE conrelid = 'usage_usagerecord'::regclass AND contype = 'u') "
        "ORDER BY 1"
    )
    indexes = cursor.fetchall()
    drop = [f'ALTER TABLE usage_usagerecord DROP CONSTRAINT "{name}"' for name, _kind, _ in constraints]
    drop += [f"DROP INDEX {name}" for name, _ in indexes]
    create_indexes = [definition for _name, definition in indexes]
    create_indexes += [
        f'ALTER TABLE usage_usagerecord ADD CONSTRAINT "{name}" {definition}'
        for name, kind, definition in constraints
        if kind == "u"
    ]
    create_constraints = [
        f'ALTER TABLE usage_usagerecord ADD CONSTRAINT "{name}" {definition}'
        for name, kind, definition in constraints
        if kind == "f"
    ]
    return drop, create_indexes, create_constraints


def usage_copy(copy, plan: dict, days: list[date], batch_id: int, rng: random.Random) -> int:
    """Write the usage rows (day by day, people in order) to the COPY as text; returns the row count."""
    noise = [rng.lognormvariate(0, NOISE_SIGMA) for _ in range(4096)]
    updated_at = datetime.now().astimezone().isoformat(sep=" ")
    suffix = f"\testimated\t{batch_id}\t{updated_at}\n"
    people = []  # per person: weekday rate, weekend rate, volume, trend, models for 1, 2 and 3 models a day
    for index, (rate, volume, trend, favourites) in enumerate(plan["habits"]):
        picked = []
        for place, model in enumerate(favourites):
            provider = next(p for p, models in MODELS.items() if model in models)
            identity = 2 * index + 1 + list(MODELS).index(provider)
            prices = [price / 1e6 for price in MODELS[provider][model]]
            prefix = f"{provider}\t{ACCOUNT}\t{identity}\t{model}\t{USAGE_KIND}\t"
            picked.append((prefix, *SPLIT[provider], *prices, MODEL_SHARE[place]))
        people.append((rate, rate * WEEKEND_FACTOR, volume, volume * trend, (None, picked[:1], picked[:2], picked)))
    rand, bits = rng.random, rng.getrandbits
    rows = 0
    span = max(1, len(days) - 1)
    for number, day in enumerate(days):
        head = f"{day.isoformat()}\t"
        weekend = day.weekday() >= 5
        progress = number / span
        lines = []
        add = lines.append
        for weekday_rate, weekend_rate, volume, growth, choices in people:
            if rand() >= (weekend_rate if weekend else weekday_rate):
                continue
            draw = rand()
            today_volume = volume + growth * progress
            for prefix, fi, fw, fr, fo, pi, pw, pr, po, share in choices[1 if draw < 0.4 else 2 if draw < 0.8 else 3]:
                tokens = today_volume * noise[bits(12)] * share
                i, w, r, o = int(tokens * fi), int(tokens * fw), int(tokens * fr), int(tokens * fo) + 1
                total = i + w + r + o
                add(
                    f"{head}{prefix}{i}\t{w}\t{r}\t{o}\t{total}\t{total // TOKENS_PER_REQUEST + 1}\t"
                    f"{i * pi + w * pw + r * pr + o * po:.6f}{suffix}"
                )
        copy.write("".join(lines))
        rows += len(lines)
    return rows


def fill(people: int, days: list[date], params: dict, name: str) -> dict:
    import psycopg
    from django.utils import timezone

    from usage.models import ImportBatch, ImportSource, ImportStatus

    rng = random.Random(SEED)
    timings = {}
    started = time.perf_counter()
    plan = org_plan(people, days, rng)
    timings["plan"] = time.perf_counter() - started
    now = timezone.now()  # a finished import: pages key their per-process caches on its finished_at
    batch = ImportBatch.objects.create(
        started_at=now,
        finished_at=now,
        source=ImportSource.COMMAND,
        original_name="bench/rankings.py",
        sha256="0" * 64,
        detected_format="bench",
        status=ImportStatus.SUCCEEDED,
        period_start=days[0],
        period_end=days[-1],
        people_affected=people,
    )
    with psycopg.connect(dbname=name, **params) as raw, raw.cursor() as cursor:
        started = time.perf_counter()
        copy_rows(cursor, "usage_team", "id, name, slug, parent_id", plan["teams"])
        copy_rows(
            cursor,
            "usage_person",
            "id, email, display_name, active, show_name, pseudonym, user_id",
            plan["persons"],
        )
        copy_rows(cursor, "usage_membership", 'id, person_id, team_id, start, "end"', plan["memberships"])
        copy_rows(
            cursor,
            "usage_identity",
            "id, provider, kind, value, person_id, created_at, owner_email, label, attribution, owner_user_id",
            [(*row, "", "", "personal", "") for row in plan["identities"]],
        )
        for table in ("usage_team", "usage_person", "usage_membership", "usage_identity"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        raw.commit()
        timings["org"] = time.perf_counter() - started

        # The usage rows: the table emptied in this transaction, so COPY FREEZE writes them frozen and
        # all-visible (no hint-bit rewrite or vacuum on first read); indexes and constraints are rebuilt after.
        drop, create_indexes, create_constraints = usage_secondary_ddl(cursor)
        for statement in drop:
            cursor.execute(statement)
        cursor.execute("TRUNCATE usage_usagerecord")
        started, cpu = time.perf_counter(), time.process_time()
        with cursor.copy(f"COPY usage_usagerecord ({USAGE_COLUMNS}) FROM STDIN (FREEZE)") as copy:
            rows = usage_copy(copy, plan, days, batch.pk, rng)
        timings["usage_copy"] = time.perf_counter() - started
        timings["usage_copy_cpu"] = time.process_time() - cpu
        started = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for statement in create_indexes:
            cursor.execute(statement)
        timings["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        for statement in create_constraints:
            cursor.execute(statement)
        timings["constraints"] = time.perf_counter() - started
        started = time.perf_counter()
        raw.commit()
        timings["commit"] = time.perf_counter() - started

    ImportBatch.objects.filter(pk=batch.pk).update(
        rows_total=rows, rows_read=rows, rows_imported=rows, records_written=rows
    )
    timings["rows"] = rows
    return timings


# --- measuring -----------------------------------------------------------------------------------------------


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it (read-only git commands)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (f" + {len(changed)} changed files" if changed else "")


def code_load() -> None:
    """Import every view and the rebuild command now, so the whole run measures the code as it was at its start
    even if the working tree changes meanwhile."""
    from django.core.management import load_command_class
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports the URLconf, so every view module)
    load_command_class("usage", "rebuild_rollups")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:", 1)[1].split()[0])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    return f"{platform.system()} {platform.release()} {platform.machine()}, nproc {os.cpu_count()} ({cpu}){memory}"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def check(response, url: str) -> None:
    if response.status_code != 200:
        body = response.content[:500].decode("utf-8", errors="replace")
        raise RuntimeError(f"GET {url} answered {response.status_code}:\n{body}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def queries_of(client, url: str) -> int:
    """The SQL queries of one request of `url`."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    # A request start clears the query log, so empty it first or CaptureQueriesContext's start offset is wrong.
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        check(client.get(url), url)
    return len(captured)  # now: its list is a view of the log, which the next request empties


def measure(client, url: str, requests: int) -> dict:
    started = time.perf_counter()
    check(client.get(url), url)
    first = (time.perf_counter() - started) * 1000  # after the refresh: what the worker warmed, nothing else
    for _ in range(WARMUP - 1):
        check(client.get(url), url)
    queries = queries_of(client, url)
    timings, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        check(response, url)
    timings.sort()
    return {
        "first": first,
        "p50": statistics.median(timings),
        "p95": percentile(timings, 0.95),
        "max": timings[-1],
        "cpu": statistics.median(cpu),
        "queries": queries,
        "kb": len(response.content) / 1024,
    }


def rates(loops: list[tuple[object, str, object]], seconds: float = RATE_SECONDS) -> list[tuple[float, int]]:
    """Requests per second of each loop (client, url, settings override) and the SQL queries of one request
    (after the first). The loops take turns in 1 s slices until each has run `seconds`: on a shared machine a
    change of load between loops run one after the other moved the ratio between them by half."""
    queries, counts, spent = [], [0] * len(loops), [0.0] * len(loops)
    for client, url, overridden in loops:
        with overridden:
            check(client.get(url), url)
            queries.append(queries_of(client, url))
    for _slice in range(math.ceil(seconds)):
        for index, (client, url, overridden) in enumerate(loops):
            with overridden:
                started = time.perf_counter()
                while (elapsed := time.perf_counter() - started) < 1.0:
                    check(client.get(url), url)
                    counts[index] += 1
            spent[index] += elapsed
    return [(count / elapsed, queried) for count, elapsed, queried in zip(counts, spent, queries, strict=True)]


def naive_ranking(days: int, today: date) -> tuple[float, int | None]:
    """Median of 3 runs of the ranking straight from the usage table; and its top person."""
    from django.db import connection

    sql = (
        "SELECT i.person_id, SUM(u.total_tokens) s FROM usage_usagerecord u JOIN usage_identity i ON i.id = "
        "u.identity_id WHERE u.day BETWEEN %s AND %s GROUP BY 1 ORDER BY s DESC LIMIT 50"
    )
    runs, top = [], None
    with connection.cursor() as cursor:
        for _ in range(3):
            started = time.perf_counter()
            cursor.execute(sql, [today - timedelta(days=days - 1), today])
            rows = cursor.fetchall()
            runs.append((time.perf_counter() - started) * 1000)
            top = rows[0][0] if rows else None
    return statistics.median(runs), top


def users_prepare(heaviest: int):
    """The engineer (linked to the heaviest person) and the admin the requests log in as."""
    from django.contrib.auth import get_user_model

    from usage.directory import directory_changed
    from usage.models import Person

    User = get_user_model()
    engineer, _ = User.objects.update_or_create(
        username="bench-engineer", defaults={"is_staff": False, "is_superuser": False}
    )
    admin, _ = User.objects.update_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
    Person.objects.filter(user=engineer).exclude(pk=heaviest).update(user=None)
    Person.objects.filter(pk=heaviest).update(user=engineer)
    directory_changed()  # queryset updates send no signal
    return engineer, admin


def row_counts() -> dict[str, int]:
    from django.db import connection

    tables = ("usage_team", "usage_person", "usage_membership", "usage_identity", "usage_importbatch")
    tables += ("usage_usagerecord", "usage_dailyrollup", "usage_standingwindow")
    tables += ("usage_teammemberstanding", "usage_teamstanding")
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    return counts


def table_sizes() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('usage_usagerecord')), "
            "pg_size_pretty(pg_total_relation_size('usage_dailyrollup')), "
            "pg_size_pretty(pg_database_size(current_database()))"
        )
        usage, rollup, database = cursor.fetchone()
    return f"usage_usagerecord {usage} (with indexes), usage_dailyrollup {rollup}, database {database}"


def server_facts() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), current_setting('shared_buffers')")
        version, buffers = cursor.fetchone()
    return f"PostgreSQL {version} (shared_buffers {buffers})"


def cache_facts() -> str:
    """Where the shared cache and the sessions live: without REDIS_URL both are in the database, as in the embedded
    default, and a request answered from the response cache makes three more queries than with Redis."""
    from django.conf import settings

    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    return f"cache {backend}, sessions {settings.SESSION_ENGINE}"


def table(header: list[str], rows: list[list[str]], align: str) -> None:
    """A markdown table; align is one letter per column, l or r."""
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(flush=True)


def benchmark(args, today: date) -> None:
    from django.test import Client, override_settings

    from usage.models import StandingsState, Team, UsageRecord

    days_span = UsageRecord.objects.order_by("day").values_list("day", flat=True)
    first, last = days_span.first(), days_span.last()
    state = StandingsState.objects.filter(pk=1).first()
    print(f"usage from {first} to {last}; today {today}; standings rolled on {state and state.rolled_on}")
    print(table_sizes())
    print()

    naive = [(days, *naive_ranking(days, today)) for days in (30, 365)]
    heaviest = naive[-1][2]
    if heaviest is None:
        sys.exit("no usage in the last 365 days: nothing to rank")
    table(
        ["naive SQL ranking (usage_usagerecord ⨝ usage_identity, top 50)", "median of 3 ms"],
        [[f"{days} days", f"{ms:,.0f}"] for days, ms, _top in naive],
        "lr",
    )

    engineer, admin = users_prepare(heaviest)
    groups = Team.objects.filter(parent__isnull=False, parent__parent__isnull=True).order_by("pk")
    leaves = Team.objects.filter(parent__parent__isnull=False).order_by("pk")
    group, leaf = groups.first(), leaves.first()
    past_month = today - timedelta(days=120)
    past_day = today - timedelta(days=100)
    custom_end = today - timedelta(days=10)
    custom_start = custom_end - timedelta(days=44)
    past_rolling = today - timedelta(days=60)
    people_api, teams_api = "/api/v1/leaderboard/people/", "/api/v1/leaderboard/teams/"
    cases = [(f"API people `{p}`", f"{people_api}?period={p}", engineer) for p in PERIODS]
    cases += [(f"API teams `{p}`", f"{teams_api}?period={p}", engineer) for p in PERIODS]
    cases += [
        (f"API people month of {past_month}", f"{people_api}?period=month&date={past_month}", engineer),
        (f"API people day {past_day}", f"{people_api}?period=day&date={past_day}", engineer),
        (
            f"API people custom 45 d to {custom_end}",
            f"{people_api}?start={custom_start}&end={custom_end}",
            engineer,
        ),
        (f"API people 30d to {past_rolling}", f"{people_api}?period=30d&date={past_rolling}", engineer),
        ("API people 30d anthropic", f"{people_api}?period=30d&provider=anthropic", engineer),
        (f"API people 30d leaf team {leaf.pk}", f"{people_api}?period=30d&team={leaf.pk}", engineer),
        (f"API people 30d group {group.pk}", f"{people_api}?period=30d&team={group.pk}", engineer),
        ("API people 30d model gpt-5", f"{people_api}?period=30d&model=gpt-5", engineer),
        # Kept windows keep the order on total tokens only: another metric is ranked once per refresh, warmed.
        ("API people 30d output tokens", f"{people_api}?period=30d&metric=output_tokens", engineer),
        ("API teams 30d output tokens", f"{teams_api}?period=30d&metric=output_tokens", engineer),
        ("page `/?period=30d`", "/?period=30d", engineer),
        ("page `/teams/?period=30d`", "/teams/?period=30d", engineer),
        ("page `/movers/?period=week`", "/movers/?period=week", engineer),
        (f"page `/people/{heaviest}/?period=30d` (admin)", f"/people/{heaviest}/?period=30d", admin),
    ]
    clients = {}
    for user in (engineer, admin):
        clients[user.pk] = Client()
        clients[user.pk].force_login(user)
    rows = []
    computed = override_settings(TOKENBOARD_RANKING_CACHE_SECONDS=0)  # what a request costs, not a cache read
    for label, url, user in cases:
        with computed:
            figures = measure(clients[user.pk], url, args.requests)
        rows.append(
            [
                label,
                f"{figures['first']:,.1f}",
                f"{figures['p50']:,.1f}",
                f"{figures['p95']:,.1f}",
                f"{figures['max']:,.1f}",
                f"{figures['cpu']:,.1f}",
                str(figures["queries"]),
                f"{figures['kb']:,.0f}",
            ]
        )
        print(f"  timed {url}: " + " | ".join(rows[-1][1:]), file=sys.stderr, flush=True)
    print(f"{args.requests} timed requests each after {WARMUP} warm-up; engineer = the heaviest person ({heaviest})")
    print()
    table(["request", "first ms", "p50 ms", "p95 ms", "max ms", "CPU p50 ms", "queries", "KB"], rows, "lrrrrrrr")

    api = f"{people_api}?period=30d"
    (login_rate, login_queries), (cached_rate, cached_queries), (computed_rate, computed_queries) = rates(
        [
            (Client(), "/accounts/login/", nullcontext()),
            (clients[engineer.pk], api, nullcontext()),
            (clients[engineer.pk], api, computed),
        ]
    )
    print(f"load average after the loops: {load()}")
    table(
        ["single-threaded loops, 10 s each in turns of 1 s", "requests/s", "queries", "ratio to login"],
        [
            ["`GET /accounts/login/` (anonymous)", f"{login_rate:,.1f}", str(login_queries), "1.00"],
            [
                "`GET /api/v1/leaderboard/people/?period=30d` (engineer), from the response cache",
                f"{cached_rate:,.1f}",
                str(cached_queries),
                f"{cached_rate / login_rate:.2f}",
            ],
            [
                "`GET /api/v1/leaderboard/people/?period=30d` (engineer), computed (response cache off)",
                f"{computed_rate:,.1f}",
                str(computed_queries),
                f"{computed_rate / login_rate:.2f}",
            ],
        ],
        "lrrr",
    )


def refresh_after_todays_usage(today: date) -> None:
    """Time what the worker does once an import of today's usage commits, each change followed by
    standings_refresh, timed by step: today's usage restated for one person in a hundred (one team's pull), first
    with 7 more output tokens a row (nobody passes anybody), then doubled (each passes hundreds: every place
    between moves), then for everyone (a whole org's pull)."""
    from django.db import connection, transaction

    from usage.models import UsageRecord
    from usage.services.standings import standings_mark_days, standings_refresh

    plus_7 = "output_tokens = output_tokens + 7, total_tokens = total_tokens + 7"
    doubled = "output_tokens = output_tokens + total_tokens, total_tokens = total_tokens * 2"
    for who, every, change in (
        ("1 % of people, +7 tokens", 100, plus_7),
        ("1 % of people, doubled", 100, doubled),
        ("everyone, +7 tokens", 1, plus_7),
    ):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {UsageRecord._meta.db_table} SET {change} WHERE day = %s AND identity_id %% %s = 0",
                [today, every],
            )
            rows = cursor.rowcount
            standings_mark_days([today])
        result = standings_refresh()
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items())
        print(
            f"refresh after today's usage of {who} changed ({rows:,} rows): {result.windows} windows in "
            f"{result.seconds:.1f} s ({phases}); load {load()}"
        )


def slowest_statements(captured: list[dict], count: int = 12) -> None:
    """Print where a refresh's time went (CaptureQueriesContext's queries): the statements grouped by their first
    words, since one statement runs with new parameters many times."""
    grouped: dict[str, list] = {}
    for query in captured:
        spent = grouped.setdefault(" ".join(query["sql"].split())[:90], [0, 0.0])
        spent[0] += 1
        spent[1] += float(query["time"])
    print(f"  {sum(seconds for _runs, seconds in grouped.values()):.1f} s in SQL; the slowest statements:")
    for statement, (runs, seconds) in sorted(grouped.items(), key=lambda item: -item[1][1])[:count]:
        print(f"  {seconds * 1000:9,.0f} ms  {runs:3d}×  {statement}")


def import_to_standings(fmt: str, rows: int, *, whole_days: bool) -> None:
    """Time an import of bench/ingest.py's export of `rows` rows in `fmt` (generated under bench/out/ if missing)
    into this org, then the refresh that follows its commit: the time from the commit to standings showing it.
    The export's 500 users are linked to 500 people spread over the org first, as a directory file would. The
    check: their total in the kept all-time window is their usage records' sum (a first import adds the file's
    tokens; another size of the same format restates the same people's days). `whole_days`: the import marks whole
    days, as one of more than SCOPED_MOST_IDENTITIES identities does, instead of its (day, identity) pairs."""
    sys.path.insert(0, str(ROOT / "bench"))
    import ingest  # bench/ingest.py: the exports and their facts
    from django.db import connection
    from django.db.models import Sum
    from django.test.utils import CaptureQueriesContext

    from usage.models import Identity, ImportSource, Person, StandingWindow, TeamMemberStanding
    from usage.services import standings
    from usage.services.imports import import_batch_create, import_batch_process
    from usage.services.standings import ALL_PROVIDERS, standings_refresh

    ingest.OUT.mkdir(parents=True, exist_ok=True)
    path, _twin, facts = ingest.export_for(fmt, rows)
    everyone = list(Person.objects.order_by("pk").values_list("pk", flat=True))
    if len(everyone) < ingest.PEOPLE:
        sys.exit(f"--import-file needs at least {ingest.PEOPLE} people to link the export's users to")
    people = everyone[:: len(everyone) // ingest.PEOPLE][: ingest.PEOPLE]
    for index, person in enumerate(people):
        email = ingest.email_of(index)
        key = ("openai", "user_id", ingest.user_id_of(index)) if fmt == "openai" else ("cursor", "email", email)
        Identity.objects.update_or_create(
            provider=key[0], kind=key[1], value=key[2], defaults={"person_id": person, "owner_email": email}
        )

    def kept_total() -> int:
        window = StandingWindow.objects.get(period="all", provider=ALL_PROVIDERS)
        rows = TeamMemberStanding.objects.filter(window=window, person_id__in=people)
        return rows.aggregate(total=Sum("total_tokens"))["total"] or 0

    before = kept_total()
    started = time.perf_counter()
    with path.open("rb") as handle:
        batch = import_batch_create(file=handle, name=path.name, source=ImportSource.COMMAND, queue=False)
    stored = time.perf_counter()
    with patch.object(standings, "SCOPED_MOST_IDENTITIES", -1) if whole_days else nullcontext():
        batch = import_batch_process(batch.pk)
    committed = time.perf_counter()
    if batch.status != "succeeded":
        sys.exit(f"import failed: {batch.error_summary}")
    with CaptureQueriesContext(connection) as statements:
        result = standings_refresh()  # what the worker does once the import commits
    refreshed = time.perf_counter()
    after = kept_total()
    summed = records_total(people)
    if after != summed:
        sys.exit(f"the kept all-time total of the file's people is {after:,}, their usage records sum to {summed:,}")
    moved = after - before
    shown = "the file's tokens" if moved == facts["total_tokens"] else f"{moved:,} tokens"
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items())
    print(
        f"import of {path.name} ({batch.rows_read:,} rows, {facts['start']} to {facts['end']}, {ingest.PEOPLE} "
        f"people{', whole days marked' if whole_days else ''}): stored {stored - started:.1f} s, processed {committed - stored:.1f} s "
        f"({batch.rows_read / (committed - stored):,.0f} rows/s); commit → standings {refreshed - committed:.1f} s "
        f"({result.days} days, {result.windows} windows: {phases}); the people's all-time total moved by {shown}, "
        "as their usage records sum; "
        f"load {load()}"
    )
    slowest_statements(statements.captured_queries)


def records_total(people: list[int]) -> int:
    """The people's tokens summed from their usage records directly, less the days held for review."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT COALESCE(SUM(u.total_tokens), 0) FROM usage_usagerecord u
            JOIN usage_identity i ON i.id = u.identity_id
            WHERE i.person_id = ANY(%s) AND i.attribution = 'personal' AND u.usage_kind <> 'cost'
              AND NOT EXISTS (SELECT 1 FROM usage_usagehold h WHERE h.person_id = i.person_id AND h.day = u.day
                              AND h.status <> 'cleared')
            """,
            [people],
        )
        return cursor.fetchone()[0]


def reads_during_rebuild(today: date) -> None:
    """Time reads while `manage.py rebuild_rollups` runs in a process of its own: the people and teams API (30
    days, computed), a custom 45-day range (from the rollups) and a heavy user's page, in rounds READS_PAUSE apart
    until the rebuild ends. A read waiting on a lock gives up after READ_LOCK_TIMEOUT and counts as failed. Each URL's
    first answer, and its first after the rebuild's swap (a new generation: what was summed once per refresh is
    summed again), are shown apart from the others."""
    from django.db import DatabaseError, connection
    from django.db.backends.signals import connection_created
    from django.test import Client, override_settings

    from usage.models import StandingsState, UsageRecord

    heaviest = naive_ranking(30, today)[1]
    engineer, admin = users_prepare(heaviest)
    custom_end = today - timedelta(days=10)
    people_api = "/api/v1/leaderboard/people/"
    cases = [
        (f"{people_api}?period=30d", engineer),
        ("/api/v1/leaderboard/teams/?period=30d", engineer),
        (f"{people_api}?start={custom_end - timedelta(days=44)}&end={custom_end}", engineer),
        (f"/people/{heaviest}/?period=30d", admin),
    ]
    clients = {}
    for user in (engineer, admin):
        clients[user.pk] = Client(raise_request_exception=True)
        clients[user.pk].force_login(user)

    def lock_timeout(**kwargs):  # this process's reads only; the app's connection options set others
        with kwargs["connection"].cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{READ_LOCK_TIMEOUT}'")

    connection_created.connect(lock_timeout)
    connection.close()  # kept open between requests (CONN_MAX_AGE): the next one connects with the timeout
    rebuild = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "rebuild_rollups"], stdout=subprocess.PIPE, text=True
    )
    timings: dict[str, list[float]] = {url: [] for url, _user in cases}
    firsts: dict[str, dict[str, float]] = {url: {} for url, _user in cases}  # "first", "after the swap" → ms
    failures: dict[str, list[str]] = {url: [] for url, _user in cases}
    generation = StandingsState.objects.values_list("generation", flat=True).get(pk=1)
    started = time.perf_counter()
    with override_settings(TOKENBOARD_RANKING_CACHE_SECONDS=0):
        while rebuild.poll() is None:
            swapped = StandingsState.objects.values_list("generation", flat=True).get(pk=1) != generation
            for url, user in cases:
                request_started = time.perf_counter()
                try:
                    response = clients[user.pk].get(url)
                    check(response, url)
                except DatabaseError as error:
                    failures[url].append(f"{type(error).__name__} after {time.perf_counter() - request_started:.1f} s")
                    continue
                ms = (time.perf_counter() - request_started) * 1000
                which = "after the swap" if swapped else "first"
                if which in firsts[url]:
                    timings[url].append(ms)
                else:  # the answers' first computation in this process: after the start, after the new generation
                    firsts[url][which] = ms
            time.sleep(READS_PAUSE)
    took = time.perf_counter() - started
    print(rebuild.stdout.read().rstrip())
    if rebuild.returncode:
        sys.exit(f"rebuild_rollups failed ({rebuild.returncode})")
    print(f"reads during rebuild_rollups ({took:.1f} s, {UsageRecord.objects.count():,} usage records; load {load()}):")
    rows = []
    for url, _user in cases:
        done = sorted(timings[url])
        rows.append(
            [
                f"`{url}`",
                str(len(done) + len(firsts[url])),
                str(len(failures[url])),
                *(
                    f"{firsts[url][which]:,.1f}" if which in firsts[url] else "—"
                    for which in ("first", "after the swap")
                ),
                f"{statistics.median(done):,.1f}" if done else "—",
                f"{percentile(done, 0.95):,.1f}" if done else "—",
                f"{done[-1]:,.1f}" if done else "—",
            ]
        )
        if failures[url]:
            print(f"  {url} failed: {', '.join(sorted(set(failures[url])))}")
    header = ["request (computed)", "answered", "failed", "first ms", "first after the swap ms"]
    table([*header, "others: p50 ms", "p95 ms", "max ms"], rows, "lrrrrrrr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=85_000, help="people (default 85,000)")
    parser.add_argument("--days", type=int, default=365, help="days of usage ending today (default 365)")
    parser.add_argument(
        "--db", default=DEFAULT_DB, help=f"scratch database; must contain 'bench' (default {DEFAULT_DB})"
    )
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"PostgreSQL server URL (default {DEFAULT_SERVER})")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per URL (default 20)")
    parser.add_argument(
        "--skip-fill", action="store_true", help="reuse the existing database: no creation, fill or rebuild"
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="with --skip-fill: run rebuild_rollups on the database before timing"
    )
    parser.add_argument(
        "--during-rebuild",
        action="store_true",
        help="with --skip-fill: time reads while rebuild_rollups runs in another process, then stop",
    )
    parser.add_argument(
        "--import-file",
        metavar="FORMAT[:ROWS]",
        help="with --skip-fill: import bench/ingest.py's export (openai or cursor; 1,000,000 rows unless ROWS) into "
        "the database, time the commit → standings refresh, then stop (the usage stays)",
    )
    parser.add_argument(
        "--whole-days",
        action="store_true",
        help="with --import-file: the import marks whole days (as before imports marked their identities' days)",
    )
    parser.add_argument(
        "--fill-only",
        action="store_true",
        help="create and fill the database, keep it, and stop (no rebuild, no timings)",
    )
    args = parser.parse_args()
    if "bench" not in args.db:
        sys.exit(f"bench/rankings.py creates and drops its database, and {args.db!r} does not contain 'bench'.")
    if args.during_rebuild and not args.skip_fill:
        sys.exit("--during-rebuild needs --skip-fill (a filled, rebuilt database)")
    if args.import_file and not args.skip_fill:
        sys.exit("--import-file needs --skip-fill (a filled, rebuilt database)")
    if args.fill_only and args.skip_fill:
        sys.exit("--fill-only and --skip-fill contradict each other")
    if args.people < 1 or args.days < 1 or args.requests < 1:
        sys.exit("--people, --days and --requests must be at least 1")
    params = server_params(args.server)
    os.environ["DATABASE_URL"] = f"{args.server.rstrip('/')}/{args.db}"

    print(f"machine: {machine()}; Python {platform.python_version()}")
    print(f"load average at start: {load()}")
    if args.skip_fill:
        if not database_exists(params, args.db):
            sys.exit(f"--skip-fill: no database {args.db!r}; run once without --skip-fill (and with --keep)")
    else:
        database_create(params, args.db)
    django_setup()
    import django
    from django.core.management import call_command
    from django.db import connection, connections
    from django.utils import timezone

    code_load()
    today = timezone.localdate()
    print(
        f"code {code_version()}; Django {django.get_version()}, {server_facts()}, database {args.db}; {cache_facts()}"
    )
    succeeded = False
    try:
        if not args.skip_fill:
            days = [today - timedelta(days=back) for back in range(args.days - 1, -1, -1)]
            database_prepare()
            print(f"filling: {args.people:,} people, {args.days} days to {today} (seed {SEED})", flush=True)
            started = time.perf_counter()
            timings = fill(args.people, days, params, args.db)
            filled = time.perf_counter() - started
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            analyzed = time.perf_counter() - started
            rows = timings["rows"]
            print(
                f"fill took {filled:.1f} s: plan {timings['plan']:.1f} s, org tables {timings['org']:.1f} s, usage COPY "
                f"{timings['usage_copy']:.1f} s ({rows / timings['usage_copy']:,.0f} rows/s; generator CPU "
                f"{timings['usage_copy_cpu']:.1f} s), indexes {timings['indexes']:.1f} s, foreign keys "
                f"{timings['constraints']:.1f} s, commit {timings['commit']:.1f} s; then ANALYZE {analyzed:.1f} s",
                flush=True,
            )
        if args.fill_only:
            succeeded = args.keep = True
            return
        if args.during_rebuild:
            reads_during_rebuild(today)
            succeeded = True
            return
        if args.import_file:
            fmt, _colon, rows = args.import_file.partition(":")
            if fmt not in ("openai", "cursor"):
                sys.exit(f"--import-file: the format is openai or cursor, not {fmt!r}")
            import_to_standings(
                fmt, int(rows.replace(",", "").replace("_", "") or 1_000_000), whole_days=args.whole_days
            )
            succeeded = True
            return
        if not args.skip_fill or args.rebuild:
            started = time.perf_counter()
            call_command("rebuild_rollups")
            print(f"rebuild_rollups took {time.perf_counter() - started:.1f} s", flush=True)
        from django.conf import settings
        from django.core.cache import cache

        from leaderboard.tasks import warm_titles

        if settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"):
            cache.clear()  # the bench database's own: each request's first time is after a refresh's
        else:
            print("the cache is not the bench database's: answers kept by an earlier run may serve first requests")
        gc.freeze()  # as leaderboard/wsgi.py does once the app is loaded
        started = time.perf_counter()
        warm_titles()  # what the worker does after a refresh: the current windows' titles and movers, the models
        print(f"the worker's warm-up after a refresh took {time.perf_counter() - started:.1f} s", flush=True)
        counts = row_counts()
        print("rows: " + ", ".join(f"{table.removeprefix('usage_')} {count:,}" for table, count in counts.items()))
        benchmark(args, today)
        refresh_after_todays_usage(today)
        print(f"load average at end: {load()}")
        succeeded = True
    finally:
        connections.close_all()
        if args.keep:
            print(f"kept database {args.db}")
        elif not succeeded:
            print(
                f"kept database {args.db} (the run failed); rerun with --skip-fill [--rebuild], or drop it",
                file=sys.stderr,
            )
        else:
            database_drop(params, args.db)
            print(f"dropped database {args.db}")


if __name__ == "__main__":
    main()
