"""Server time of the people leaderboard on the demo org (issue 4: must stay under 50 ms).

Usage (a scratch database with the demo org):
    DATABASE_URL=sqlite:////tmp/pages.sqlite3 .venv/bin/python manage.py migrate
    DATABASE_URL=sqlite:////tmp/pages.sqlite3 .venv/bin/python manage.py seed_demo
    DATABASE_URL=sqlite:////tmp/pages.sqlite3 .venv/bin/python bench/pages.py [--requests 50] [--user engineer]

Django's test Client drives the whole stack in-process (middleware, session, view, queries, templates),
without a network hop; each page gets warm-up requests first, then the median, min and p90 of N are printed
with the median CPU time of the process per request (less sensitive to other load on the machine than wall
time; SQLite runs in-process, so it includes the queries) and the number of SQL queries one request makes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leaderboard.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from usage.models import Person, UsageRecord  # noqa: E402

PAGES = [
    ("people leaderboard /", "/", {}),
    ("htmx table partial", "/?period=month&metric=total_tokens", {"HTTP_HX_REQUEST": "true"}),
    ("last 90 days, cost", "/?period=90d&metric=cost_usd", {}),
    ("teams /teams/", "/teams/", {}),
    ("movers /movers/", "/movers/", {}),
]


def measure(client: Client, url: str, headers: dict, requests: int) -> tuple[list[float], list[float], int]:
    for _ in range(3):
        assert client.get(url, **headers).status_code == 200
    # Count with an execute wrapper: CaptureQueriesContext's log is reset when a request starts.
    queries = []
    with connection.execute_wrapper(lambda execute, sql, *rest: queries.append(sql) or execute(sql, *rest)):
        client.get(url, **headers)
    timings, cpu = [], []
    for _ in range(requests):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, **headers)
        timings.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200, response.status_code
    return timings, cpu, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--user", default="engineer")
    parser.add_argument("--extra", action="store_true", help="also time the person page")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    user = get_user_model().objects.get(username=args.user)
    client = Client()
    client.force_login(user)
    print(
        f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}; "
        f"{Person.objects.count()} people, {UsageRecord.objects.count():,} usage records; "
        f"user {args.user}; {args.requests} timed requests per page; load average {load:.2f} on {os.cpu_count()} CPUs"
    )
    pages = list(PAGES)
    if args.extra:
        person = Person.objects.filter(user=user).first() or Person.objects.first()
        pages.append(("person page", f"/people/{person.pk}/", {}))
    print(f"{'page':28} {'median ms':>10} {'min ms':>8} {'p90 ms':>8} {'cpu ms':>8} {'queries':>8}")
    for label, url, headers in pages:
        timings, cpu, queries = measure(client, url, headers, args.requests)
        timings.sort()
        p90 = timings[max(int(len(timings) * 0.9) - 1, 0)]
        print(
            f"{label:28} {statistics.median(timings):10.1f} {timings[0]:8.1f} {p90:8.1f} "
            f"{statistics.median(cpu):8.1f} {queries:8d}"
        )


if __name__ == "__main__":
    main()
