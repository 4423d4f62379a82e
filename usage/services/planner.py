"""PostgreSQL planner settings for the statements of a block, where a statement's shape calls for a plan that the
planner's statistics would not choose (a refresh's tables are rewritten in bulk, and a rebuild reads a year at a
time). Other databases have no such settings: the block runs as it is."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection


@contextmanager
def planner_settings(**settings: str):
    """The planner settings for the statements inside, restored after (within the transaction: `true` in
    set_config)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:  # each setting read before it is set: left to right
        cursor.execute(
            f"SELECT {', '.join(['current_setting(%s), set_config(%s, %s, true)'] * len(settings))}",
            [value for name, setting in settings.items() for value in (name, name, setting)],
        )
        before = dict(zip(settings, cursor.fetchone()[::2], strict=True))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(['set_config(%s, %s, true)'] * len(before))}",
                [value for pair in before.items() for value in pair],
            )


def hash_joins():
    """Join by hashing, not row by row, in a statement that reads every row of its windows or tables, such as a
    board joining each person row to its person, or the marks cleared."""
    return planner_settings(enable_nestloop="off")


def index_lookups():
    """Join row by row, looking each row up by index, in a statement that reads a few rows of a large table for each
    row of a small one, such as the member rows of the teams whose top person is found again."""
    return planner_settings(enable_hashjoin="off", enable_mergejoin="off")


def sorted_grouping(*, whole_sorts: bool = True):
    """Group by sorting, not hashing, in a statement whose rows come in the order of the grouping's first column (a
    window, a day): each value's rows are then sorted alone. Hashed, the 14M day rows of 40 weeks spilled 1.4 GB to
    disk: 69 s, against 49 s sorted a week at a time at 85,000 people (docs/PERFORMANCE.md). `whole_sorts=False`
    holds the planner to that even where it expects fewer rows than come: expecting a sixth of a batch of weeks'
    rows, it sorted them whole, on disk."""
    return planner_settings(enable_hashagg="off", **({} if whole_sorts else {"enable_sort": "off"}))
