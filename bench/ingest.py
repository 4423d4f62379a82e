"""Ingest benchmark: large provider exports through the real import pipeline on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tb_bench .venv/bin/python bench/ingest.py [--rows N[,N…]]

For each format (OpenAI usage-bucket JSON lines, Cursor team usage-events CSV; and `openai-org`, a large org's
daily OpenAI export: 85,000 users × 2 models a day, each row a record of its own) and each size it:
1. generates the export under bench/out/ (kept and reused; not timed) and a flat CSV twin of the same rows;
2. empties the benchmark database's usage tables and seeds the people the export names;
3. in a fresh child process (so peak RSS is that import's alone) stores the file with
   usage.services.imports.import_batch_create(queue=False), runs import_batch_process, then asks
   leaderboard.selectors.people_ranking for the export's window until it shows the file's token total;
4. loads the flat twin into a bare, index-free table with PostgreSQL COPY (psycopg cursor.copy), the
   database's own ingest limit, to compare with.

Printed per size (the median of --repeat runs, with the range and the load average): parse-and-upsert rows/s
(rows read / import_batch_process time), seconds from the start of the upload until the ranking reflects it,
the child's peak RSS (VmHWM) and the COPY rows/s. With --reimport the
child imports the file a second time (every record an update) and checks that no ranking total moved.
The database named in DATABASE_URL is created and migrated if missing; its usage data is wiped on each run,
so never point it at a database you care about.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from usage.parsers.cursor_csv import EXPORT_HEADER as CURSOR_EXPORT_HEADER  # noqa: E402  (needs ROOT on the path)

DEFAULT_SIZES = "100000,300000,1000000"
FORMATS = ("openai", "cursor", "openai-org")

PEOPLE = 500
ORG_PEOPLE = 85_000  # openai-org: a large org's daily export, every user with usage every day
ORG_MODELS = ["gpt-4.1-2025-04-14", "gpt-5-2025-08-07"]
ORG_RESULTS_PER_PAGE = 10_000
WINDOW_START = date(2026, 9, 1)  # a fixed past window, so runs on different days compare
OPENAI_MODELS = ["gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "o3-2025-04-16", "gpt-5-2025-08-07"]
OPENAI_RESULTS_PER_BUCKET = 1000  # of PEOPLE × models combinations, per hourly bucket; 24 buckets per page/line
CURSOR_MODELS = [
    "claude-4.5-sonnet",
    "claude-4.5-opus-high-thinking",
    "gpt-5",
    "gpt-5-codex",
    "gemini-2.5-pro",
    "grok-code-fast-1",
    "auto",
    "composer-1",
]
CURSOR_KINDS = ["Included", "Usage-based", "On-Demand", "Errored, No Charge", "Aborted, Not Charged"]
CURSOR_DAYS = 30
COPY_COLUMNS = "at, identity, model, kind, input, cache_write, cache_read, output, total, requests, cost"


def email_of(index: int) -> str:
    return f"bench{index:04d}@bench.example"


# --- generating the exports (streamed to disk, never held in memory) ---------------------------------------


def generate_openai(rows: int, path: Path, twin: Path) -> dict:
    """OpenAI /organization/usage/completions pages with 1h buckets grouped by user_id and model, one page
    (24 buckets = one UTC day) per line, as the Usage API returns them with group_by=user_id,model."""
    rng = random.Random(rows)
    combos = [(person, model) for person in range(PEOPLE) for model in OPENAI_MODELS]
    written = total = 0
    day = WINDOW_START
    with path.open("w", encoding="utf-8") as out, twin.open("w", encoding="utf-8", newline="") as twin_out:
        twin_csv = csv.writer(twin_out)
        while written < rows:
            start_of_day = day_start(day)
            buckets = []
            for hour in range(24):
                if written >= rows:
                    break
                start = start_of_day + hour * 3600
                at = datetime.fromtimestamp(start, tz=UTC).isoformat()
                results = []
                for person, model in rng.sample(combos, min(OPENAI_RESULTS_PER_BUCKET, rows - written)):
                    result, twin_row, tokens = openai_result(rng, user_id_of(person), model)
                    results.append(result)
                    twin_csv.writerow([at, *twin_row])
                    total += tokens
                buckets.append({"object": "bucket", "start_time": start, "end_time": start + 3600, "results": results})
                written += len(results)
            page = {"object": "page", "data": buckets, "has_more": written < rows, "next_page": None}
            out.write(json.dumps(page, separators=(",", ":")) + "\n")
            day += timedelta(days=1)
    return {
        "rows": written,
        "start": WINDOW_START.isoformat(),
        "end": (day - timedelta(days=1)).isoformat(),
        "total_tokens": total,
    }


def openai_result(rng: random.Random, user_id: str, model: str) -> tuple[dict, list, int]:
    """One usage result as the Usage API gives it, its row for the COPY comparison (without the time) and its
    total tokens."""
    tokens = rng.randint(1_000, 400_000)
    cached = tokens * rng.randint(0, 60) // 100
    cache_write = tokens * rng.randint(0, 10) // 100
    output = tokens * rng.randint(2, 20) // 100
    requests = rng.randint(1, 60)
    result = {
        "object": "organization.usage.completions.result",
        "input_tokens": tokens,
        "output_tokens": output,
        "input_cached_tokens": cached,
        "input_cache_write_tokens": cache_write,
        "input_uncached_tokens": tokens - cached - cache_write,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": requests,
        "project_id": None,
        "user_id": user_id,
        "api_key_id": None,
        "model": model,
        "batch": None,
        "service_tier": None,
    }
    plain = tokens - cached - cache_write
    twin_row = [user_id, model, "completions", plain, cache_write, cached, output, tokens + output, requests, ""]
    return result, twin_row, tokens + output


def day_start(day: date) -> int:
    """The epoch second at which the UTC day starts: a usage bucket's start_time."""
    return int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp())


def user_id_of(index: int) -> str:
    return f"user-{email_of(index).split('@')[0]}"


def generate_openai_org(rows: int, path: Path, twin: Path) -> dict:
    """A large org's daily OpenAI export: 1-day buckets grouped by user_id and model, ORG_PEOPLE users × the
    ORG_MODELS every day, so each row is a record of its own; pages of ORG_RESULTS_PER_PAGE results, one per line."""
    rng = random.Random(rows)
    per_day = ORG_PEOPLE * len(ORG_MODELS)
    days = -(-rows // per_day)
    combos = [(user_id_of(person), model) for person in range(ORG_PEOPLE) for model in ORG_MODELS]
    written = total = 0
    with path.open("w", encoding="utf-8") as out, twin.open("w", encoding="utf-8", newline="") as twin_out:
        twin_csv = csv.writer(twin_out)
        for offset in range(days):
            start = day_start(WINDOW_START + timedelta(days=offset))
            at = datetime.fromtimestamp(start, tz=UTC).isoformat()
            of_day = combos[: rows - written]
            for first in range(0, len(of_day), ORG_RESULTS_PER_PAGE):
                results = []
                for user_id, model in of_day[first : first + ORG_RESULTS_PER_PAGE]:
                    result, twin_row, tokens = openai_result(rng, user_id, model)
                    results.append(result)
                    twin_csv.writerow([at, *twin_row])
                    total += tokens
                written += len(results)
                bucket = {"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": results}
                page = {"object": "page", "data": [bucket], "has_more": written < rows, "next_page": None}
                out.write(json.dumps(page, separators=(",", ":")) + "\n")
    end = WINDOW_START + timedelta(days=days - 1)
    return {"rows": written, "start": WINDOW_START.isoformat(), "end": end.isoformat(), "total_tokens": total}


def generate_cursor(rows: int, path: Path, twin: Path) -> dict:
    """A Cursor team usage-events CSV (dashboard export, every field quoted, newest event first) over 30 days."""
    rng = random.Random(rows)
    span_ms = CURSOR_DAYS * 86_400_000
    first = datetime.combine(WINDOW_START, datetime.min.time(), tzinfo=UTC)
    total = 0
    with path.open("w", encoding="utf-8", newline="") as out, twin.open("w", encoding="utf-8", newline="") as twin_out:
        export = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        twin_csv = csv.writer(twin_out)
        export.writerow(CURSOR_EXPORT_HEADER)
        for index in range(rows):
            at = first + timedelta(milliseconds=span_ms - 1 - index * span_ms // rows)
            stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
            person = rng.randrange(PEOPLE)
            email = email_of(person)
            user = email.capitalize() if person % 7 == 0 else email  # exports keep the user's own spelling
            model = CURSOR_MODELS[(person + rng.randrange(3)) % len(CURSOR_MODELS)]
            kind = rng.choice(CURSOR_KINDS)
            if kind.startswith(("Errored", "Aborted")):
                with_write = without_write = cache_read = output = 0
            else:
                with_write = rng.randint(0, 40_000)
                without_write = rng.randint(0, 8_000)
                cache_read = rng.randint(0, 500_000)
                output = rng.randint(0, 12_000)
            tokens = with_write + without_write + cache_read + output
            if kind == "Included":
                cost_text, cost = "Included", ""
            else:
                cents = rng.randint(0, 250) if tokens else 0
                cost_text, cost = f"${cents // 100}.{cents % 100:02d}", f"{cents / 100:.2f}"
            export.writerow(
                [
                    stamp,
                    user,
                    "",
                    "",
                    kind,
                    model,
                    "Yes" if rng.random() < 0.1 else "No",
                    with_write,
                    without_write,
                    cache_read,
                    output,
                    tokens,
                    cost_text,
                ]
            )
            twin_csv.writerow(
                [at.isoformat(), email, model, kind, without_write, with_write, cache_read, output, tokens, 1, cost]
            )
            total += tokens
    end = WINDOW_START + timedelta(days=CURSOR_DAYS - 1)
    return {"rows": rows, "start": WINDOW_START.isoformat(), "end": end.isoformat(), "total_tokens": total}


GENERATORS = {
    "openai": (generate_openai, "openai-usage-{rows}.jsonl"),
    "cursor": (generate_cursor, "cursor-usage-events-{rows}.csv"),
    "openai-org": (generate_openai_org, "openai-org-daily-{rows}.jsonl"),
}


def export_for(fmt: str, rows: int) -> tuple[Path, Path, dict]:
    generate, pattern = GENERATORS[fmt]
    path = OUT / pattern.format(rows=rows)
    twin = path.with_suffix(".copy.csv")
    facts_path = path.with_suffix(".facts.json")
    if not facts_path.exists() or not path.exists() or not twin.exists():
        started = time.perf_counter()
        facts = generate(rows, path, twin)
        facts_path.write_text(json.dumps(facts))
        print(f"  generated {path.name} ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - started:.1f}s")
    return path, twin, json.loads(facts_path.read_text())


# --- database ----------------------------------------------------------------------------------------------


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leaderboard.settings")
    os.environ.setdefault("MEDIA_ROOT", str(OUT / "media"))  # stored raw copies of the exports go here
    os.environ["DEBUG"] = "false"  # DEBUG keeps every SQL statement in memory
    import django

    django.setup()


def require_postgres() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        sys.exit(
            "bench/ingest.py needs PostgreSQL (the COPY comparison and realistic upserts): set DATABASE_URL, e.g.\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/tb_bench .venv/bin/python bench/ingest.py\n"
            f"DATABASE_URL is {'not set' if not url else 'not a postgres:// URL'}."
        )
    import environ

    # Every run empties the usage tables: refuse a database that does not look like a scratch one.
    name = environ.Env.db_url_config(url)["NAME"]
    if "bench" not in name:
        sys.exit(
            f"bench/ingest.py empties the usage tables of the database it runs on, and {name!r} does not look like "
            "a scratch benchmark database: use one whose name contains 'bench', e.g. tb_bench."
        )
    return url


def database_create_if_missing() -> None:
    """CREATE DATABASE for DATABASE_URL's name if it does not exist (through the server's `postgres` DB)."""
    import environ
    import psycopg

    config = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    params = {
        k: v
        for k, v in {
            "host": config.get("HOST"),
            "port": config.get("PORT"),
            "user": config.get("USER"),
            "password": config.get("PASSWORD"),
        }.items()
        if v
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone():
            admin.execute(f'CREATE DATABASE "{config["NAME"]}"')
            print(f"  created database {config['NAME']}")


def database_prepare() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def database_reset(fmt: str) -> None:
    """Empty usage and seed the PEOPLE people the exports name (OpenAI user ids linked to them, as a
    directory file would; Cursor rows name people by email, which the pipeline links itself)."""
    from django.db import connection

    from usage.models import Identity, Person, _pseudonym_for

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE usage_usagerecord, usage_usagehour, usage_importbatch, usage_identity, usage_membership, usage_person, "
            "usage_dailyrollup, usage_standingwindow, usage_teammemberstanding, "
            "usage_teamstanding, usage_standingsdirtyday, usage_standingsstate RESTART IDENTITY CASCADE"
        )
    # In slices: the seeding shares the process with a measured import (bench/ingest_phases.py), whose peak memory
    # 85,000 people held as model instances at once would raise.
    count = ORG_PEOPLE if fmt == "openai-org" else PEOPLE
    for first in range(0, count, 5000):
        indexes = range(first, min(first + 5000, count))
        people = Person.objects.bulk_create(
            Person(email=email_of(i), display_name=f"Bench Person {i:04d}", pseudonym=_pseudonym_for(email_of(i)))
            for i in indexes
        )
        if fmt.startswith("openai"):
            Identity.objects.bulk_create(
                Identity(provider="openai", kind="user_id", value=user_id_of(i), person=person)
                for i, person in zip(indexes, people, strict=True)
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def copy_rate(twin: Path, rows: int) -> float:
    """Rows/s of PostgreSQL COPY of the same rows (flat CSV) into a bare table without indexes."""
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            "CREATE TABLE bench_copy (at timestamptz, identity text, model text, kind text, input bigint, "
            "cache_write bigint, cache_read bigint, output bigint, total bigint, requests bigint, cost numeric)"
        )
    raw.commit()
    started = time.perf_counter()
    with raw.cursor() as cursor, twin.open("rb") as source:
        with cursor.copy(f"COPY bench_copy ({COPY_COLUMNS}) FROM STDIN (FORMAT csv)") as copy:
            while block := source.read(1 << 20):
                copy.write(block)
    raw.commit()
    elapsed = time.perf_counter() - started
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy")
    raw.commit()
    return rows / elapsed


# --- one measured import (child process) -------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory. On Linux, VmHWM: ru_maxrss survives exec, so a child started by a
    big parent would report the parent's size; VmHWM belongs to the child's own address space."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:", 1)[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: str, facts: dict) -> None:
    django_setup()
    from leaderboard.selectors import people_ranking
    from leaderboard.windows import RankingQuery, Window
    from usage.access import Viewer
    from usage.models import ImportSource
    from usage.services.imports import import_batch_create, import_batch_process
    from usage.services.standings import standings_refresh

    rss_start = peak_rss_mb()
    query = RankingQuery(window=Window("custom", date.fromisoformat(facts["start"]), date.fromisoformat(facts["end"])))
    admin = Viewer(user=None, person=None, is_admin=True)

    started = time.perf_counter()
    with open(path, "rb") as handle:
        batch = import_batch_create(file=handle, name=Path(path).name, source=ImportSource.COMMAND, queue=False)
    stored = time.perf_counter()
    cpu_before = cpu_seconds()
    batch = import_batch_process(batch.pk)
    processed = time.perf_counter()
    cpu_process = cpu_seconds() - cpu_before
    rss_import = peak_rss_mb()  # the import's own peak, before the refresh and the ranking read
    if batch.status != "succeeded":
        sys.exit(f"import failed: {batch.error_summary}")
    # What the refresh worker does once the import commits; the ranking after it must show the file exactly.
    refresh_started = time.perf_counter()
    standings_refresh()
    refreshed = time.perf_counter()
    ranking = people_ranking(query, admin)
    ranked_total = sum(standing.totals.total_tokens for standing in ranking)
    if ranked_total != facts["total_tokens"]:
        sys.exit(f"ranking total {ranked_total:,} is not the file's {facts['total_tokens']:,}")
    ranked = time.perf_counter()
    figures = {
        "rows_read": batch.rows_read,
        "records": batch.records_written,
        "people": len(ranking),
        "store_s": stored - started,
        "process_s": processed - stored,
        "process_cpu_s": cpu_process,
        "refresh_s": refreshed - refresh_started,
        "ranking_s": ranked - processed,
        "until_ranked_s": ranked - started,
        "rss_start_mb": rss_start,
        "rss_import_mb": rss_import,
    }
    if facts.get("reimport"):
        # The same file again: every record is now a conflict (an update), and no total may change.
        again_started = time.perf_counter()
        with open(path, "rb") as handle:
            again = import_batch_create(file=handle, name=Path(path).name, source=ImportSource.COMMAND, queue=False)
        again = import_batch_process(again.pk)
        standings_refresh()
        figures["reimport_s"] = time.perf_counter() - again_started
        ranked_total = sum(standing.totals.total_tokens for standing in people_ranking(query, admin))
        if again.status != "succeeded" or ranked_total != facts["total_tokens"]:
            sys.exit(f"re-import changed the totals: {again.status}, {ranked_total:,} != {facts['total_tokens']:,}")
    figures["rss_peak_mb"] = peak_rss_mb()
    print(json.dumps(figures))


def measure(fmt: str, rows: int, reimport: bool = False) -> dict:
    path, twin, facts = export_for(fmt, rows)
    database_reset(fmt)
    shutil.rmtree(OUT / "media", ignore_errors=True)  # the stored copies of earlier runs' uploads
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(path), json.dumps({**facts, "reimport": reimport})],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    if result.returncode:
        sys.exit(f"the measured import failed:\n{result.stdout}\n{result.stderr}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["copy_rows_s"] = copy_rate(twin, facts["rows"])
    figures["mb"] = path.stat().st_size / 1e6
    return figures


def median_of(runs: list[dict], key: str) -> dict:
    """The run with the median value of `key` (the lower middle one for an even count)."""
    return sorted(runs, key=lambda run: run[key])[(len(runs) - 1) // 2]


def load_average() -> str:
    """The 1-minute load average when the line is printed (the machine is shared)."""
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=DEFAULT_SIZES, help=f"sizes, comma-separated (default {DEFAULT_SIZES})")
    parser.add_argument("--formats", default=",".join(FORMATS), help="openai,cursor (default both)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; the median is shown, with the range (default 1)"
    )
    parser.add_argument(
        "--reimport", action="store_true", help="import each file a second time (all updates) and check no total moves"
    )
    parser.add_argument("--child", nargs=2, metavar=("PATH", "FACTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    require_postgres()
    if args.child:
        child(args.child[0], json.loads(args.child[1]))
        return
    sizes = [int(size.replace("_", "")) for size in args.rows.split(",")]
    formats = [name.strip() for name in args.formats.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    database_create_if_missing()
    django_setup()
    database_prepare()
    print(
        f"{'format':8} {'rows':>9} {'file MB':>8} {'records':>8} {'rows/s':>9} {'rows/cpu-s':>10} {'COPY rows/s':>11} "
        f"{'ratio':>6} {'process s':>9} {'refresh s':>9} {'ranked s':>8} {'import RSS':>10} {'peak RSS MB':>11}  "
        f"{'rows/s range':>15} load" + ("  re-import s" if args.reimport else "")
    )
    for fmt in formats:
        for rows in sizes:
            runs = [measure(fmt, rows, args.reimport) for _ in range(max(1, args.repeat))]
            # The median run by wall time (the machine is shared: one run says little); rows/cpu-s, COPY rows/s
            # and the refresh are each their own median; peak RSS the largest of the runs.
            f = median_of(runs, "process_s")
            copy_rows_s = median_of(runs, "copy_rows_s")["copy_rows_s"]
            rate = f["rows_read"] / f["process_s"]
            cpu_rate = f["rows_read"] / median_of(runs, "process_cpu_s")["process_cpu_s"]
            rates = sorted(run["rows_read"] / run["process_s"] for run in runs)
            print(
                f"{fmt:8} {f['rows_read']:>9,} {f['mb']:>8,.0f} {f['records']:>8,} {rate:>9,.0f} "
                f"{cpu_rate:>10,.0f} {copy_rows_s:>11,.0f} {rate / copy_rows_s:>6.2f} "
                f"{f['process_s']:>9.2f} {median_of(runs, 'refresh_s')['refresh_s']:>9.2f} {f['until_ranked_s']:>8.2f} "
                f"{max(r['rss_import_mb'] for r in runs):>10,.0f} {max(r['rss_peak_mb'] for r in runs):>11,.0f}  "
                f"{rates[0]:>7,.0f}–{rates[-1]:<7,.0f} {load_average()}"
                + (f"  {f['reimport_s']:>11.2f}" if args.reimport else ""),
                flush=True,
            )
    print("rows/s      = rows read / wall time of import_batch_process (parse, aggregate, resolve identities, upsert,")
    print("              commit); rows/cpu-s = the same over the importing process's own CPU time (excludes the")
    print("              PostgreSQL server; steadier when other work shares the machine)")
    print(
        "COPY rows/s = the same rows, flat, loaded by PostgreSQL COPY into a bare table; ratio = rows/s / COPY rows/s"
    )
    print("refresh s   = standings_refresh after the import committed (what the refresh worker does): rollups of")
    print("              the touched days and every kept window containing them")
    print("rows/s range = slowest–fastest of the runs; load = 1-minute load average after them")
    print("ranked s    = from import_batch_create (storing the upload) until people_ranking for the window shows")
    print("              the file's tokens (the refresh included)")
    if args.reimport:
        print(
            "re-import s = storing and processing the same file again (every record an update); totals checked unchanged"
        )
    print(
        "import RSS  = VmHWM of the child process right after import_batch_process (Django loaded: about "
        f"{f['rss_start_mb']:.0f} MB before the import); peak RSS = the same at the end, after the refresh and the "
        "ranking read"
    )


if __name__ == "__main__":
    main()
