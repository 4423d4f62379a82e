"""How long a rebuild's connections waited for each other, read from PostgreSQL's log.

`rebuild_rollups` runs its jobs on several connections (one backend each) and each level of windows waits for its
last job. Run the server with `log_min_duration_statement = 1000` and `log_line_prefix = '%m [%p] '`, run the
rebuild, then give this script the log lines of that rebuild and the process id of the refresh's own backend
(the one that logged `SELECT DISTINCT "usage_usagerecord"."day"` first):

    sed -n 'FIRST,LASTp' /path/to/postgresql.log > rebuild.log
    python bench/rebuild_idle.py rebuild.log 7366

A job's span runs from its backend's first logged statement to its last (statements under a second are not
logged). At any moment a connection with no job running is idle; the script prints the connection-idle seconds
summed and every stretch over 2 s. A parallel index build counts its leader only: its workers keep the cores busy.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from pathlib import Path

STATEMENT = re.compile(r"^(\S+ \S+) UTC \[(\d+)\] LOG:  duration: ([\d.]+) ms  statement: ")
SHOWN_IDLE_SECONDS = 2


def job_spans(log: Path, refresh_pid: str) -> list[tuple[datetime, datetime]]:
    """(start, end) of each worker backend's statements over the log."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for line in log.read_text().splitlines():
        if not (match := STATEMENT.match(line)) or match[2] == refresh_pid:
            continue
        end = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S.%f")
        start = end - timedelta(milliseconds=float(match[3]))
        first, last = spans.get(match[2], (start, end))
        spans[match[2]] = (min(first, start), max(last, end))
    return sorted(spans.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", type=Path, help="the server log lines of one rebuild")
    parser.add_argument("refresh_pid", help="the refresh's own backend, which is not a worker")
    parser.add_argument("--connections", type=int, default=2, help="the rebuild's --workers (default 2)")
    args = parser.parse_args()
    spans = job_spans(args.log, args.refresh_pid)
    if not spans:
        raise SystemExit(f"{args.log}: no statement of a worker backend (is log_min_duration_statement set?)")
    began = spans[0][0]
    changes = sorted([(start, 1) for start, _end in spans] + [(end, -1) for _start, end in spans])
    running, since, idle = 0, began, 0.0
    for moment, change in changes:
        seconds = (moment - since).total_seconds()
        waiting = max(0, args.connections - running)
        idle += waiting * seconds
        if waiting and seconds > SHOWN_IDLE_SECONDS:
            print(
                f"  {(since - began).total_seconds():7.1f} s to {(moment - began).total_seconds():7.1f} s: {waiting} idle"
            )
        running += change
        since = moment
    span = (max(end for _start, end in spans) - began).total_seconds()
    print(f"workers' span {span:.1f} s; connection-idle {idle:.1f} s")


if __name__ == "__main__":
    main()
