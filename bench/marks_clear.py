"""Time how a refresh clears an import's marks when the marks table's statistics say it is empty.

    DATABASE_URL=postgres://postgres@127.0.0.1:5433/tokenboard_bench85 .venv/bin/python bench/marks_clear.py --runs 3

Once autovacuum has seen the marks table emptied by a refresh, its statistics say the table's pages hold no rows
(seen on the bench cluster: 221 pages, 0 rows), and the next import's marks are planned as one row. Each run
marks 15,000 (day, identity) pairs, as a 500-person month does, sets those statistics inside its transaction,
times `_Marks.clear()` and rolls back: nothing is kept, not even the statistics. Prints each run and the median.
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

from django.db import connection, transaction  # noqa: E402

from usage.models import StandingsDirtyIdentity  # noqa: E402
from usage.services import standings  # noqa: E402

IDENTITIES, DAYS = 5000, 3  # 15,000 pairs, within SCOPED_MOST_IDENTITIES: marked per identity, not whole days
FIRST_DAY, FIRST_IDENTITY = date(2026, 9, 1), 10_000_000  # no identity of the bench's org


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if connection.vendor != "postgresql" or "bench" not in connection.settings_dict["NAME"]:
        sys.exit("point DATABASE_URL at a PostgreSQL bench database (its name contains 'bench')")
    table = StandingsDirtyIdentity._meta.db_table
    pairs = [(FIRST_DAY + timedelta(days=day), FIRST_IDENTITY + n) for day in range(DAYS) for n in range(IDENTITIES)]
    seconds = []
    for run in range(args.runs):
        with transaction.atomic():
            standings.standings_mark_usage(pairs)
            with connection.cursor() as cursor:
                # Pages but no rows: what autovacuum records of the emptied table (needs a superuser).
                cursor.execute("UPDATE pg_class SET reltuples = 0, relpages = 200 WHERE oid = %s::regclass", [table])
            marks = standings._Marks.read()
            started = time.perf_counter()
            marks.clear()
            seconds.append(time.perf_counter() - started)
            left = StandingsDirtyIdentity.objects.count()
            transaction.set_rollback(True)
        print(
            f"run {run + 1}: {len(marks.dirty_identities):,} marks cleared in {seconds[-1] * 1000:,.0f} ms, {left} left"
        )
    print(f"median {statistics.median(seconds) * 1000:,.0f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
