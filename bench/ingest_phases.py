"""Where an import's time goes: one import of a bench/ingest.py export, timed by pipeline step.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tb_bench .venv/bin/python bench/ingest_phases.py openai 1000000

Uses bench/ingest.py's exports (generated if missing) and its database reset (so the same scratch-database rule:
the name must contain "bench"; its usage data is wiped). Runs import_batch_process once in this process and prints
its wall and CPU time, rows/s, peak RSS (VmHWM) and, per step, wall and CPU seconds and how much the peak RSS rose
while it ran (which step raised the peak): parse (read, parse and aggregate the file), identities, superseded (the
newer-export check), records (the daily records' upsert), replace (records the export no longer has), hours (the
hourly shape's merge), mark usage (the standings marks), parse then store (the plain path: the parse, then the
transaction, its COMMIT included). A pipelined import (PostgreSQL, the default) has no "hours" and no "parse then
store": its transaction spans the parse ("pipelined", COMMIT included), the hours are merged in a thread while it
parses ("hour merges"; "parse waits" and "end waits": the parse waiting for that thread), and "outcome" is what is
stored after the parse. No ranking read: unlike bench/ingest.py it does not check the ranking's total, so it also
serves sizes where the anomaly check holds days for review (10M Cursor events). The database reset runs in a forked
process, so the import's peak memory is its own.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # noqa: E402  (bench/ingest.py, beside this file)

TIMED_STEPS = {
    "parse": "_parse",
    "parse then store": "_parse_then_store",
    "pipelined": "_parse_and_store",
    "outcome": "_store_outcome",
    "identities": "identities_resolve",
    "superseded": "_scopes_with_newer_exports",
    "records": "usage_records_upsert",
    "replace": "_scopes_replace",
    "hours": "usage_hours_upsert",
    "mark usage": "standings_mark_usage",
    "  records added": "_records_add_summed",
}


def reset_apart(fmt: str) -> None:
    """bench/ingest.py's database reset in a forked process: seeding 85,000 people (openai-org) here would leave
    this process's peak memory, which the import's is read against, 10–50 MB higher."""
    from django.db import connections

    connections.close_all()  # the child opens its own
    seeding = multiprocessing.get_context("fork").Process(target=ingest.database_reset, args=(fmt,))
    seeding.start()
    seeding.join()
    if seeding.exitcode:
        sys.exit(f"the database reset failed (exit code {seeding.exitcode})")


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ingest.FORMATS:
        sys.exit(f"usage: bench/ingest_phases.py {{{','.join(ingest.FORMATS)}}} ROWS")
    fmt, rows = sys.argv[1], int(sys.argv[2].replace("_", ""))
    ingest.require_postgres()
    ingest.OUT.mkdir(parents=True, exist_ok=True)
    ingest.database_create_if_missing()
    ingest.django_setup()
    ingest.database_prepare()
    path, _twin, _facts = ingest.export_for(fmt, rows)
    reset_apart(fmt)

    from usage.models import ImportSource
    from usage.services import imports

    seconds: dict[str, list[float]] = {}

    def timed(step: str, function):
        def run(*args, **kwargs):
            wall, cpu, peak = time.perf_counter(), time.process_time(), ingest.peak_rss_mb()
            try:
                return function(*args, **kwargs)
            finally:
                spent = seconds.setdefault(step, [0.0, 0.0, 0.0])
                spent[0] += time.perf_counter() - wall
                spent[1] += time.process_time() - cpu
                spent[2] += ingest.peak_rss_mb() - peak

        return run

    for step, name in TIMED_STEPS.items():
        setattr(imports, name, timed(step, getattr(imports, name)))
    # A pipelined import: its hours' merges (in their thread; its CPU is the process's, so only wall counts), and
    # how long the parse waited for them (a full queue, or the connection needed for new identities).
    from usage.services import bulk, outcomes

    outcomes.HoursMerge.__call__ = timed("hour merges", outcomes.HoursMerge.__call__)
    outcomes.HourSpool.add_summed = timed("  hours sent", outcomes.HourSpool.add_summed)
    # … and their parts: new hours copied straight into UsageHour; those met before copied into the stage, then
    # merged into UsageHour (the records' merge is in "records").
    outcomes.copy_csv = timed("  copy", outcomes.copy_csv)
    bulk.StagingTable.load_csv = timed("  COPY", bulk.StagingTable.load_csv)
    bulk.StagingTable.merge_into = timed("  merge", bulk.StagingTable.merge_into)
    bulk.BackgroundWrites.send = timed("parse waits", bulk.BackgroundWrites.send)
    bulk.BackgroundWrites.wait = timed("end waits", bulk.BackgroundWrites.wait)

    started_mb = ingest.peak_rss_mb()
    with open(path, "rb") as handle:
        batch = imports.import_batch_create(file=handle, name=path.name, source=ImportSource.COMMAND, queue=False)
    wall, cpu = time.perf_counter(), time.process_time()
    batch = imports.import_batch_process(batch.pk)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{fmt} {batch.rows_read:,} rows, {batch.records_written:,} records: {batch.status} {batch.error_summary}\n"
        f"wall {wall:.2f} s, cpu {cpu:.2f} s, {batch.rows_read / wall:,.0f} rows/s, "
        f"{batch.rows_read / cpu:,.0f} rows/cpu-s, peak RSS {ingest.peak_rss_mb():.0f} MB"
    )
    print(
        f"  (peak + MB = how much the process's peak resident memory rose while the step ran; {started_mb:.0f} MB before)"
    )
    for step, (step_wall, step_cpu, raised_mb) in seconds.items():
        print(f"  {step:11} wall {step_wall:7.2f} s  cpu {step_cpu:7.2f} s  peak +{raised_mb:4.0f} MB")


if __name__ == "__main__":
    main()
