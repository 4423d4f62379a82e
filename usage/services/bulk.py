"""Bulk writes for the import pipeline: rows are loaded into a temporary staging table, then merged into the
real table with one `INSERT … SELECT … ON CONFLICT DO UPDATE`.

One code path for both databases; only the loading differs. PostgreSQL loads with `COPY … FROM STDIN`
(psycopg adapts each value in C, or a CSV file is streamed as it is); SQLite, the embedded default, loads with
`executemany`, each value prepared by its model field as `bulk_create` would. The merge statement, its natural
key and its update list are the same on both. Call inside the import's transaction: the staging table is
created and dropped in it, so a failed import leaves nothing behind.
"""

from __future__ import annotations

import csv
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import IO

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

logger = logging.getLogger(__name__)

LOAD_BATCH = 5000  # rows per executemany where there is no COPY (SQLite)
COPY_BLOCK = 1 << 20


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


class StagingTable:
    """A temporary table of the given columns (name, SQL type), created empty; load rows, then merge."""

    def __init__(self, name: str, columns: Sequence[tuple[str, str]]):
        self.name, self.columns = name, [column for column, _type in columns]
        definition = ", ".join(f"{quote(column)} {sql_type}" for column, sql_type in columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"CREATE TEMPORARY TABLE {quote(name)} ({definition})")

    @property
    def table(self) -> str:
        # PostgreSQL: pg_temp names the session's own temporary schema, never a real table of the same name.
        return f"pg_temp.{quote(self.name)}" if connection.vendor == "postgresql" else f"temp.{quote(self.name)}"

    def load_rows(self, rows: Iterable[Sequence], prepare: Sequence | None = None) -> int:
        """Load tuples in column order; `prepare` (for SQLite) holds one callable or None per column that turns
        a Python value into what the database stores. Returns how many rows."""
        loaded = 0
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # psycopg's own copy: wrapped so its errors are Django's, as every other query's (a cut connection
                # is then an OperationalError, which the import requeues rather than fails).
                with (
                    connection.wrap_database_errors,
                    cursor.cursor.copy(f"COPY {self.table} ({self._column_list}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
                        loaded += 1
                return loaded
            insert = f"INSERT INTO {self.table} ({self._column_list}) VALUES ({', '.join(['%s'] * len(self.columns))})"
            converters = [(index, convert) for index, convert in enumerate(prepare or ()) if convert is not None]
            batch: list[Sequence] = []
            for row in rows:
                if converters:
                    row = list(row)
                    for index, convert in converters:
                        row[index] = convert(row[index])
                batch.append(row)
                if len(batch) == LOAD_BATCH:
                    cursor.executemany(insert, batch)
                    loaded += len(batch)
                    batch = []
            if batch:
                cursor.executemany(insert, batch)
                loaded += len(batch)
        return loaded

    def load_csv(self, file: IO[str], *, not_null_text: Sequence[str] = ()) -> None:
        """Load a CSV text file (no header) in column order. `not_null_text`: text columns where an empty cell is
        the empty string (PostgreSQL's CSV reads an unquoted empty cell as NULL otherwise)."""
        file.seek(0)
        if connection.vendor == "postgresql":
            copy_csv(self.table, self.columns, file, not_null_text=not_null_text)
        else:
            self.load_rows(csv.reader(file))

    def merge_into(
        self,
        model: type[models.Model],
        columns: Sequence[str],
        *,
        select: Sequence[str] | None = None,
        joins: str = "",
        unique: Sequence[str],
        updated: Sequence[str],
        group_by: Sequence[str] = (),
        adding: bool = False,
    ) -> int:
        """INSERT INTO the model's table (columns) SELECT `select` (default: the same columns) FROM this table
        [joins] [GROUP BY], in natural-key order (index pages are then filled in order, not at random),
        ON CONFLICT (unique) DO UPDATE SET each updated column to the new value (`adding`: to the stored value
        plus the new one). Returns the rows written."""
        target = quote(model._meta.db_table)
        selected = ", ".join(select or [quote(column) for column in columns])
        key = ", ".join(quote(column) for column in unique)
        updates = ", ".join(
            f"{quote(column)} = " + (f"{target}.{quote(column)} + " if adding else "") + f"EXCLUDED.{quote(column)}"
            for column in updated
        )
        grouping = f" GROUP BY {', '.join(group_by)}" if group_by else ""
        # "WHERE 1 = 1": SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT (its parser's ambiguity).
        order = ", ".join(str(columns.index(column) + 1) for column in unique)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {target} ({', '.join(quote(column) for column in columns)}) "
                f"SELECT {selected} FROM {self.table} {joins} WHERE 1 = 1{grouping} ORDER BY {order} "
                f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
            )
            return cursor.rowcount

    def empty(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"TRUNCATE {self.table}" if connection.vendor == "postgresql" else f"DELETE FROM {self.table}"
            )

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {self.table}")

    @property
    def _column_list(self) -> str:
        return ", ".join(quote(column) for column in self.columns)


def field_preparers(model_fields: Sequence[models.Field]) -> list:
    """Per field, what turns a Python value into the stored one where the database has no type for it (dates,
    times, decimals on SQLite): the field's own get_db_prep_save, as bulk_create uses. None: stored as it is."""
    if connection.vendor == "postgresql":
        return [None] * len(model_fields)
    return [
        (lambda value, field=field: field.get_db_prep_save(value, connection))
        if isinstance(field, (models.DateField, models.DecimalField, models.TimeField))
        else None
        for field in model_fields
    ]


def copy_csv(table: str, columns: Sequence[str], file: IO[str], *, not_null_text: Sequence[str] = ()) -> None:
    """PostgreSQL: `COPY table (columns) FROM STDIN` of a CSV text file (no header), from where it is read."""
    options = "FORMAT csv"
    if not_null_text:
        options += f", FORCE_NOT_NULL ({', '.join(quote(column) for column in not_null_text)})"
    copying = f"COPY {table} ({', '.join(quote(column) for column in columns)}) FROM STDIN ({options})"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(copying) as copy:
        # wrap_database_errors: psycopg's copy raises Django's errors, as every other query (see load_rows)
        while block := file.read(COPY_BLOCK):
            copy.write(block)


def staged_upsert(
    model: type[models.Model],
    names: Sequence[str],
    rows: Iterable[Sequence],
    *,
    unique: Sequence[str],
    updated: Sequence[str],
) -> int:
    """Insert or update `model` rows given as tuples of the fields `names` (foreign keys as ids) on the natural
    key `unique`, setting the `updated` fields of an existing row. Rows are streamed; returns how many."""
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    columns = [field.column for field in fields]
    stage = StagingTable(f"{meta.db_table}_stage", [(field.column, field.db_type(connection)) for field in fields])
    written = stage.load_rows(rows, field_preparers(fields))
    stage.merge_into(
        model,
        columns,
        unique=[meta.get_field(name).column for name in unique],
        updated=[meta.get_field(name).column for name in updated],
    )
    stage.drop()
    return written


class BackgroundWrites:
    """Database work run in a thread, in order, on the caller's own connection and so inside its open
    transaction, while the caller goes on (the import parses the rest of its file). psycopg releases the GIL
    while PostgreSQL works, so Python and the database each use a core.

    At most `depth` items wait, so memory stays bounded however far the caller runs ahead. The caller must not
    use the connection while the thread may: `wait()` first. An error in the thread is raised in the caller at
    its next `send`, `wait` or `close` (and the items after it are dropped): it fails the caller's work, never
    lost. Leaving the block on an exception stops the thread before the caller's transaction is rolled back."""

    _STOP = object()

    def __init__(self, work: Callable[[object], None], *, depth: int = 2, name: str = "background-writes"):
        self.work = work
        self.items: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.wrapper = connections[DEFAULT_DB_ALIAS]
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> BackgroundWrites:
        self.wrapper.ensure_connection()
        self.wrapper.inc_thread_sharing()
        self.thread.start()
        return self

    def __exit__(self, exc_type, exc, _traceback) -> None:
        self._stop()
        if exc_type is None:
            self._raise()
        elif self.error is not None and self.error is not exc:
            logger.error("background writes failed while the caller was failing too", exc_info=self.error)

    def send(self, item: object) -> None:
        self._raise()
        self.items.put(item)

    def wait(self) -> None:
        """Until every item sent so far is written; the caller may use the connection then."""
        self.items.join()
        self._raise()

    def _stop(self) -> None:
        if self.thread.is_alive():
            self.items.put(self._STOP)
            self.thread.join()
        self.wrapper.dec_thread_sharing()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        connections[DEFAULT_DB_ALIAS] = self.wrapper  # this thread's queries go to the caller's connection
        while (item := self.items.get()) is not self._STOP:
            try:
                if self.error is None:
                    self.work(item)
            except BaseException as error:  # raised in the caller
                self.error = error
            finally:
                self.items.task_done()
        self.items.task_done()
