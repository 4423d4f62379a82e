"""Time the anomaly check of an import's people on a bench database, as the refresh after the import runs it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenboard_bench85 TIME_ZONE=America/Los_Angeles \\
        .venv/bin/python bench/anomaly_check.py 2026-09-01 2026-09-30 --runs 3

The people are the 500 that `bench/rankings.py --import-file` links an export's users to; run it after such an
import, so their days have the export's hours. Each run is rolled back (no hold is kept). Prints the median,
fastest and slowest run of the people's days (`_person_days`: their usage and hourly sums), their history and
the whole `anomalies_flag`.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leaderboard.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from usage.models import Person  # noqa: E402
from usage.services import anomalies  # noqa: E402

IMPORT_PEOPLE = 500  # bench/ingest.py's PEOPLE, spread over the org as bench/rankings.py links them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=date.fromisoformat)
    parser.add_argument("last", type=date.fromisoformat)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if "bench" not in connection.settings_dict["NAME"]:
        sys.exit("point DATABASE_URL at a bench database (its name contains 'bench')")
    days = {args.first + timedelta(days=n) for n in range((args.last - args.first).days + 1)}
    everyone = list(Person.objects.order_by("pk").values_list("pk", flat=True))
    people = set(everyone[:: len(everyone) // IMPORT_PEOPLE][:IMPORT_PEOPLE])
    reach = timedelta(days=settings.TOKENBOARD_ANOMALY_RULES["baseline"]["history_days"])
    steps = (
        ("the people's days", lambda: anomalies._person_days(days, None, people)),
        ("their history", lambda: anomalies._history(people, min(days) - reach, max(days))),
        ("anomalies_flag", lambda: anomalies.anomalies_flag(days, people=people)),
    )
    for name, step in steps:
        seconds = []
        for _run in range(args.runs):
            with transaction.atomic():
                started = time.perf_counter()
                found = step()
                seconds.append(time.perf_counter() - started)
                transaction.set_rollback(True)
        print(
            f"{name}: median {statistics.median(seconds):.2f} s ({min(seconds):.2f}–{max(seconds):.2f}), "
            f"{len(found):,} found; load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
