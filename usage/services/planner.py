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
