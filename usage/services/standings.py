"""Keep the read models current: daily rollups and standings (docs/architecture.md, Read models).

A change to usage marks its days dirty in the same transaction (`standings_mark_days` and friends). One refresh
at a time (`standings_refresh`, under the StandingsState row lock) then, in one transaction:

1. rewrites the DailyRollup rows of the dirty days from UsageRecord;
2. brings every stored window that contains a dirty day up to date: when few days changed, by adding each day's
   differences (new rollups less old) to the windows kept before (_DayChanges); otherwise, and for new windows,
   by recomputing them — days first, then weeks, months, quarters, years, then all time and the rolling windows,
   because each is summed from the smaller stored windows inside it (usage.periods.cover), not from raw rows;
3. makes sure today's windows exist (the rolling windows move at the org's midnight) and drops rolling windows
   that no longer end today or on a previous window's end;
4. clears the dirty days it read and records when it finished.

A refresh that fails or is killed rolls back whole: the last good standings keep serving, the dirty days stay
marked, and the next refresh completes the work. Its failure is recorded on StandingsState for the pages.
"""

from __future__ import annotations

import logging
import operator
import sys
import threading
import time
import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import NamedTuple, TypeVar

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

from usage import queue
from usage.figures import (
    COST_REPORT_KIND,
    COUNT_FIGURES,
    EFFICIENCY_METRICS,
    KEPT_METRICS,
    METRICS,
    SUMMED_FIGURES,
    UNREPORTED_FIGURES,
)
from usage.models import (
    CatalogModel,
    DailyRollup,
    HoldStatus,
    Identity,
    ImportBatch,
    Membership,
    ModelAlias,
    Person,
    SourcePrecedence,
    StandingOrder,
    StandingsDirtyDay,
    StandingsDirtyIdentity,
    StandingsDirtyPerson,
    StandingsState,
    StandingWindow,
    Team,
    TeamMemberStanding,
    TeamStanding,
    UsageHold,
    UsageRecord,
)
from usage.periods import (
    PIECE_SIZES,
    ROLLING_PERIODS,
    Window,
    calendar_windows_containing,
    cover,
    current_windows,
    day_ranges,
    org_today,
)
from usage.services.anomalies import anomalies_flag
from usage.services.bulk import staged_upsert
from usage.services.planner import hash_joins, index_lookups, planner_settings, sorted_grouping

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Cost reports (usage kind "cost": OpenAI Costs API, Anthropic cost_report) carry billed cost, no tokens. A row
# whose identity (a key, project or workspace) is owned by a person is that person's bill: billed beats estimated,
# so it replaces the cost of the person's usage rows of that provider and day. The rest stays account-level, for
# reconciliation (/reconciliation/), counted for nobody.
ALL_PROVIDERS = ""
# Which smaller stored windows a window is summed from (the largest piece usage.periods.cover may use).
LARGEST_PIECE = {"week": "day", "month": "week", "quarter": "month", "year": "month"}
COMPUTE_ORDER = {period: order for order, period in enumerate(("day", "week", "month", "quarter", "year"))}


def quoted_table(model) -> str:
    """The model's table name, quoted for raw SQL."""
    return connection.ops.quote_name(model._meta.db_table)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


FIGURE_COLUMNS = ", ".join(SUMMED_FIGURES)


def figure_sums(table: str = "", *, named: bool = True, figures: Iterable[str] = SUMMED_FIGURES) -> str:
    """SQL summing each of `figures` of `table`'s rows. A count's SUM is NUMERIC in PostgreSQL, slow to add,
    compare and sort at millions of rows: it is cast back to BIGINT (a window's counts stay far below 2^63)."""
    prefix = f"{table}." if table else ""
    sums = []
    for name in figures:
        total = f"CAST(SUM({prefix}{name}) AS BIGINT)" if name in COUNT_FIGURES else f"SUM({prefix}{name})"
        sums.append(f"{total} AS {name}" if named else total)
    return ", ".join(sums)


SUM_FIGURES = figure_sums()


def reported_days(name: str) -> str:
    """The kept rows' count of their days that report an unreported figure (usage.models.KeptFigures)."""
    return f"{name}_reported_days"


REPORTED_DAYS = tuple(reported_days(name) for name in UNREPORTED_FIGURES)
KEPT_FIGURES = (*SUMMED_FIGURES, "active_days", *REPORTED_DAYS)  # each kept row's (usage.models.KeptFigures)
KEPT_COLUMNS = ", ".join(KEPT_FIGURES)


def kept_columns(table: str) -> str:
    """SQL: the kept figures of `table`'s rows (an alias), as they are."""
    return ", ".join(f"{table}.{name}" for name in KEPT_FIGURES)


def reported_flags(table: str) -> str:
    """SQL: for each unreported figure, 1 where any of a group of rollup rows `table` reports it, else 0 (a
    day's count of reported days)."""
    return "".join(
        f", MAX(CASE WHEN {table}.{name} IS NOT NULL THEN 1 ELSE 0 END) AS {reported_days(name)}"
        for name in UNREPORTED_FIGURES
    )


def reported_days_sums(table: str = "") -> str:
    """SQL: the reported days of a group of kept (or change) rows `table`, summed."""
    prefix = f"{table}." if table else ""
    return "".join(f", CAST(SUM({prefix}{column}) AS INTEGER) AS {column}" for column in REPORTED_DAYS)


# --- Marking what changed ------------------------------------------------------------------------------------


def standings_mark_days(days: Iterable[date]) -> None:
    """Mark days whose usage changed; a refresh is queued once the transaction commits."""
    days = set(days)
    if not days:
        return
    _marks_upsert(StandingsDirtyDay, ["day"], [{"day": day, "whole": True} for day in days], ["marked_at", "whole"])
    queue.standings_refresh_on_commit()


SCOPED_MOST_IDENTITIES = 5000  # more identities changed (an org's pull): whole days cost less than their scope


def standings_mark_usage(changed: Iterable[tuple[date, int]]) -> None:
    """Mark the (day, identity id) pairs whose usage changed (an import). The refresh then rewrites only those
    identities' people's rollups of the days: for a team's month at 85,000 people, a few hundred people's rows
    instead of every row of 30 days. A change to more than SCOPED_MOST_IDENTITIES identities marks whole days.
    `changed` is read once, and its pairs are held only up to that many identities: a month of a large org's daily
    usage has millions of them."""
    days: set[date] = set()
    days_of: dict[int, set[date]] | None = {}  # identity → its changed days; None: whole days from here on
    for day, identity in changed:
        days.add(day)
        if days_of is not None:
            days_of.setdefault(identity, set()).add(day)
            if len(days_of) > SCOPED_MOST_IDENTITIES:
                days_of = None
    if days_of is None:
        standings_mark_days(days)
        return
    if not days:
        return
    scoped_days = [{"day": day, "whole": False} for day in days]
    _marks_upsert(StandingsDirtyDay, ["day"], scoped_days, ["marked_at"])  # a day marked whole stays whole
    # Staged (COPY on PostgreSQL), not bulk_create: a 1M-row export marks 45,000–85,000 pairs, and building that many
    # model instances and parameters was a tenth of such an import's time after its parse.
    now = timezone.now()
    staged_upsert(
        StandingsDirtyIdentity,
        ["day", "identity_id", "marked_at"],
        ((day, identity, now) for identity, its_days in days_of.items() for day in its_days),
        unique=["day", "identity_id"],
        updated=["marked_at"],
    )
    queue.standings_refresh_on_commit()


def _marks_upsert(model, key: list[str], values: list[dict], updated: tuple[str, ...] = ("marked_at",)) -> None:
    """Mark the values (StandingsDirtyDay days, StandingsDirtyIdentity identities' days, StandingsDirtyPerson
    people). One already marked gets the new time: a refresh that read the old mark leaves this one in place
    (_clear_marks)."""
    now = timezone.now()
    model.objects.bulk_create(
        [model(**value, marked_at=now) for value in values],
        update_conflicts=True,
        unique_fields=key,
        update_fields=list(updated),
    )


MARK_CHUNK = 5000  # ids per query: an org import may touch every person


def standings_mark_identities(identity_ids: Iterable[int]) -> None:
    """An identity's owner changed: every day it has usage moves between people."""
    ids = list(identity_ids)
    for start in range(0, len(ids), MARK_CHUNK):
        usage = UsageRecord.objects.filter(identity_id__in=ids[start : start + MARK_CHUNK])
        standings_mark_days(usage.values_list("day", flat=True).distinct())


def standings_mark_people(person_ids: Iterable[int]) -> None:
    """People's names, memberships or identities changed: every day they have usage may rank or count for
    another team, and their places on the boards are found again (a new name reorders a tie)."""
    ids = list(person_ids)
    _marks_upsert(StandingsDirtyPerson, ["person_id"], [{"person_id": pk} for pk in ids])
    for start in range(0, len(ids), MARK_CHUNK):
        usage = UsageRecord.objects.filter(identity__person_id__in=ids[start : start + MARK_CHUNK])
        standings_mark_days(usage.values_list("day", flat=True).distinct())


def standings_mark_all() -> None:
    """The team tree changed: every day with usage counts for other subtrees."""
    standings_mark_days(UsageRecord.objects.values_list("day", flat=True).distinct())


# --- Refresh -------------------------------------------------------------------------------------------------


@dataclass
class RefreshResult:
    days: int
    windows: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, in the order they ran
    workers: int = 1  # connections that built a rebuild at once; its phases are their seconds summed


class _Phases(dict):
    """Seconds spent per refresh step, summed over the step's statements (and over a rebuild's connections)."""

    def __init__(self):
        super().__init__()
        self._adding = threading.Lock()

    @contextmanager
    def timed(self, name: str):
        started = time.monotonic()
        try:
            yield
        finally:
            with self._adding:
                self[name] = self.get(name, 0.0) + time.monotonic() - started


def standings_refresh(*, today: date | None = None, all_days: bool = False, workers: int = 1) -> RefreshResult | None:
    """Bring rollups and standings up to date; None when another refresh holds the lock (it will pick up
    whatever is dirty before it finishes, and the queued task retries). `all_days` rebuilds everything
    (rebuild_rollups), as does the refresh after a migration that asked for it (StandingsState.rebuild_requested);
    on PostgreSQL by `workers` connections at once."""
    started = time.monotonic()
    today = today or org_today()
    phases = _Phases()
    runner = _InTransaction()
    # The worker's refresh is its own transaction: its anomaly check can then run beside it (_AnomalyCheck).
    anomalies_apart = connection.vendor == "postgresql" and not connection.in_atomic_block
    StandingsState.objects.get_or_create(pk=1)
    try:
        with transaction.atomic():
            state = StandingsState.objects.select_for_update(skip_locked=True).filter(pk=1).first()
            if state is None:
                return None
            _sort_memory_raise()
            rebuilt = all_days or state.rebuild_requested
            if rebuilt:
                if workers > 1 and connection.vendor == "postgresql":
                    runner = _RebuildWorkers(workers)
                days, window_count, marks = _rebuild(today, runner, phases)
                state.rebuild_requested = False
            else:
                with phases.timed("marks"):
                    marks = _Marks.read()
                    days = marks.days()
                if not days and state.rolled_on == today:
                    marks.clear()  # people without usage: on no board
                    return RefreshResult(0, 0, time.monotonic() - started)
                window_count = _update(
                    marks, today, roll=state.rolled_on != today, phases=phases, anomalies_apart=anomalies_apart
                )
            with phases.timed("marks"):
                marks.clear()
            state.refreshed_at = timezone.now()
            state.generation = uuid.uuid4()
            if (held := _held_generation.get()) is not None:
                held.clear()  # read again: this request ran a refresh (an eager task)
            state.rolled_on = today
            state.last_error = ""
            state.last_error_at = None
            state.save()
            committing = time.monotonic()
        phases["commit"] = time.monotonic() - committing
    except DatabaseError as error:
        StandingsState.objects.filter(pk=1).update(
            last_error=f"{type(error).__name__}: {error}"[:2000], last_error_at=timezone.now()
        )
        raise
    if rebuilt:
        with phases.timed("vacuum"):
            _rebuilt_tables_vacuum(runner.count)
    result = RefreshResult(len(days), window_count, time.monotonic() - started, dict(phases), runner.count)
    logger.info(
        "standings refreshed: %d days, %d windows in %.1f s (%s)",
        result.days,
        result.windows,
        result.seconds,
        ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items()),
    )
    return result


def _update(marks: _Marks, today: date, *, roll: bool, phases: _Phases, anomalies_apart: bool) -> int:
    """The refresh after changes: the dirty days' rollups and every window containing them, and today's windows
    when the day has turned (`roll`). Returns how many windows it brought up to date."""
    with phases.timed("marks"):
        days, scope = marks.days(), marks.scope()
    with _AnomalyCheck(days, scope, phases, apart=anomalies_apart) as anomalies:
        # A few changed days are added to the windows kept before as differences (_DayChanges); a new day or many
        # changed days recompute the windows from their pieces.
        changes = None
        if not roll and len(days) <= CHANGES_MOST_DAYS:
            with phases.timed("changes measured"):
                changes = _DayChanges.before(days, marks.people(), scope)
        with phases.timed("daily rollups"):
            _rollups_rewrite(days - scope.days)
            _rollups_rewrite(scope.days, scope)
        if held := anomalies.held():
            with phases.timed("daily rollups"):
                _held_rollups_rewrite(held)
    with phases.timed("windows listed"):
        windows = _windows_to_compute(days, today, roll=roll, scope=scope)
        ancestors = team_ancestors()
    window_count = len(windows)
    if changes is not None:
        with phases.timed("changes measured"):
            changes.measure()
        windows = changes.add_to_kept(windows, ancestors, phases)
    _standings_compute(windows, ancestors, phases, _InTransaction())
    with phases.timed("old standings deleted"):
        _drop_stale_moving_windows(today)
    scope.tables_drop()
    return window_count


class _AnomalyCheck:
    """The anomaly check of a refresh's days, which holds a day before its rollups are written: a day held never
    reaches a ranking. On a day marked for some identities, only their people can have a new anomaly.

    `apart` (PostgreSQL, the refresh its own transaction: the worker's) runs it on a connection of its own beside
    the refresh's first steps, which took 2.5–3 s of an import's 15 at 85,000 people (docs/PERFORMANCE.md). It
    reads only committed usage and writes only holds, which it commits apart, as the rebuild's check does: if the
    refresh then fails, the next one finds them held. `held` waits for it and gives the (person, day) pairs it
    held, whose rollups the refresh writes again. Otherwise it runs at once in the refresh's transaction, and
    `held` is empty: the rollups written after it already left its holds out."""

    def __init__(self, days: set[date], scope: _Scope, phases: _Phases, *, apart: bool):
        self._check = partial(self._held, days, scope)
        self._phases = phases
        self._pool = None
        if apart:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anomaly-check")
            self._held = self._pool.submit(_on_own_connection, self._timed_apart)
        else:
            with phases.timed("anomaly check"):
                self._check()

    def __enter__(self) -> _AnomalyCheck:
        return self

    def __exit__(self, _type, raised: BaseException | None, _traceback) -> None:
        if self._pool is None:
            return
        self._pool.shutdown()  # it commits or fails on its own
        failed = self._held.exception()
        if raised is not None and failed is not None and failed is not raised:  # else held raised it
            logger.error("standings refresh: the anomaly check beside it failed too", exc_info=failed)

    @staticmethod
    def _held(days: set[date], scope: _Scope) -> set[tuple[int, date]]:
        holds = anomalies_flag(days - scope.days) + anomalies_flag(scope.days, people=scope.people)
        return {(hold.person_id, hold.day) for hold in holds}

    def _timed_apart(self) -> set[tuple[int, date]]:
        with self._phases.timed("anomaly check, beside"):
            return self._check()

    def held(self) -> set[tuple[int, date]]:
        if self._pool is None:
            return set()
        with self._phases.timed("anomaly check"):  # only the time the refresh waited for it
            return self._held.result()


def _rebuild(today: date, runner: _InTransaction | _RebuildWorkers, phases: _Phases) -> tuple[set[date], int, _Marks]:
    """Every rollup and standing again from the usage records, into emptied read models (on PostgreSQL new tables
    built aside and swapped in at the end, _ReadModelsAside). Returns the days, the windows and the marks read,
    which the rebuild takes in."""
    aside = _read_models_emptied(runner)
    try:
        days = set(UsageRecord.objects.values_list("day", flat=True).distinct())
        # A day's check reads only its own history: the connections check a run of days each (53 s of work at
        # 85,000 people × 365 days, docs/PERFORMANCE.md).
        runner.run(
            [
                partial(_timed, phases, "anomaly check", partial(_anomalies_hold, run))
                for run in _runs(days, runner.count)
            ]
        )
        # Read after the holds were marked, and before the rollups read the usage: whatever an import marks
        # from here on stays marked for the next refresh.
        marks = _Marks.read()
        _rollups_rebuild(days, runner, phases)
        windows = runner.run([partial(_windows_to_compute, days, today, roll=True)])[0]
        unread = runner.run([partial(_indexes_drop, TeamMemberStanding, REBUILD_UNREAD_INDEXES)])[0]
        _standings_compute(windows, team_ancestors(), phases, runner)
        runner.run([partial(_timed, phases, "indexes", partial(_execute, definition)) for definition in unread])
        tables = (TeamMemberStanding, TeamStanding, StandingOrder, StandingWindow)
        runner.run([partial(_timed, phases, "statistics", partial(_analyze, model)) for model in tables])
        runner.run([partial(_drop_stale_moving_windows, today)])
        if aside is not None:
            with phases.timed("swap"):
                aside.put_in_place()
    except BaseException:
        runner.leftovers_drop()
        raise
    return days, len(windows), marks


def _rebuilt_tables_vacuum(connections: int) -> None:
    """VACUUM the swapped-in read models (PostgreSQL), once their rows are committed: otherwise the first refreshes
    after a rebuild set each new row's hint bits as they visit it, and the first import's refresh took 1.4–7× its
    usual time at 85,000 people (docs/PERFORMANCE.md). A rebuild by several connections vacuums the rollups and the
    standings tables, of about one size, on two of its own at once. VACUUM cannot run in a transaction: a caller's
    (a test's) leaves it to autovacuum. The rebuild has committed, so a failure here is logged, not raised."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    if connections == 1:
        _vacuum([quoted_table(model) for model in READ_MODELS])
        return
    rollups = [quoted_table(DailyRollup)]
    standing_tables = [quoted_table(model) for model in READ_MODELS if model is not DailyRollup]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vacuum") as pool:
        list(pool.map(partial(_vacuum, own_connection=True), [rollups, standing_tables]))


def _vacuum(tables: list[str], *, own_connection: bool = False) -> None:
    """VACUUM the tables (SQL names); on this thread's own connection, closed after, when `own_connection`."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {', '.join(tables)}")
    except DatabaseError:
        logger.exception(
            "rebuild: the new read models are in place, but VACUUM of %s failed; autovacuum will", ", ".join(tables)
        )
    finally:
        if own_connection:
            connection.close()


def _runs(days: set[date], count: int) -> list[set[date]]:
    """The days cut into at most `count` runs of consecutive days, as even as can be."""
    ordered = sorted(days)
    size = max(1, -(-len(ordered) // count))
    return [set(ordered[start : start + size]) for start in range(0, len(ordered), size)]


def _anomalies_hold(days: set[date]) -> None:
    """Hold the anomalous days (anomalies_flag) and mark them dirty. A rebuild by several connections commits the
    holds apart from the standings: if it then fails, the next refresh takes the held days out of the rankings."""
    standings_mark_days({hold.day for hold in anomalies_flag(days)})


def _sort_memory_raise() -> None:
    """Give this refresh's transaction settings.TOKENBOARD_REFRESH_WORK_MEM for its sorts and hashes, and for the
    index builds of a rebuild (PostgreSQL): with the server's defaults (4 MB, 64 MB) they spill to temporary files."""
    if connection.vendor == "postgresql" and settings.TOKENBOARD_REFRESH_WORK_MEM:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('work_mem', %s, true), set_config('maintenance_work_mem', %s, true)",
                [settings.TOKENBOARD_REFRESH_WORK_MEM] * 2,
            )


@dataclass
class _Marks:
    """The marks a refresh read, as (pk, …, marked_at): it clears exactly these as it commits, unless a change
    marked the same again since (a new time)."""

    dirty_days: list[tuple[int, date, object, bool]]  # …, day, marked_at, whole
    dirty_identities: list[tuple[int, date, int, object]]  # …, day, identity id, marked_at
    dirty_people: list[tuple[int, int, object]]  # …, person id, marked_at

    @classmethod
    def read(cls) -> _Marks:
        # The days before their identities: an identity marked in between is taken in now, and its day, marked
        # again, next time (as a whole day, if none of its identities is left marked).
        return cls(
            list(StandingsDirtyDay.objects.values_list("pk", "day", "marked_at", "whole")),
            list(StandingsDirtyIdentity.objects.values_list("pk", "day", "identity_id", "marked_at")),
            list(StandingsDirtyPerson.objects.values_list("pk", "person_id", "marked_at")),
        )

    def days(self) -> set[date]:
        return {day for _pk, day, _marked_at, _whole in self.dirty_days}

    def people(self) -> set[int]:
        """Marked people: placed again on the boards even if their figures did not change."""
        return {person for _pk, person, _marked_at in self.dirty_people}

    def scope(self) -> _Scope:
        """The days marked for some identities only, with those identities."""
        marked = {day for _pk, day, _identity, _marked_at in self.dirty_identities}
        days = {day for _pk, day, _marked_at, whole in self.dirty_days if not whole and day in marked}
        return _Scope(days, {identity for _pk, day, identity, _marked_at in self.dirty_identities if day in days})

    def clear(self) -> None:
        _clear_marks(StandingsDirtyDay, [(pk, marked_at) for pk, _day, marked_at, _whole in self.dirty_days])
        _clear_marks(StandingsDirtyIdentity, [(pk, marked_at) for pk, *_key, marked_at in self.dirty_identities])
        _clear_marks(StandingsDirtyPerson, [(pk, marked_at) for pk, _person, marked_at in self.dirty_people])


MARKS_CLEARED_AT_ONCE = 1000  # SQLite: two parameters each, within its 32,766


def _clear_marks(model, read: list[tuple[int, object]]) -> None:
    """Delete the marks read, (pk, marked_at) each, unless marked again since."""
    if not read:
        return
    table = quoted_table(model)
    if connection.vendor == "postgresql":
        # One statement, joined by hashing: with statistics taken while the table was empty, PostgreSQL compared
        # every mark with every pair read, 3.3 s a thousand of an import's 15,000 (docs/PERFORMANCE.md).
        with connection.cursor() as cursor, hash_joins():
            cursor.execute(
                f"DELETE FROM {table} m USING unnest(%s::bigint[], %s::timestamptz[]) AS r(id, marked_at) "
                "WHERE m.id = r.id AND m.marked_at = r.marked_at",
                [[pk for pk, _marked_at in read], [marked_at for _pk, marked_at in read]],
            )
        return
    # A statement per thousand marks: a Q of that many alternatives took Django 3 s to build for 15,000.
    adapt = connection.ops.adapt_datetimefield_value  # as the ORM writes it (text without an offset)
    with connection.cursor() as cursor:
        for start in range(0, len(read), MARKS_CLEARED_AT_ONCE):
            chunk = read[start : start + MARKS_CLEARED_AT_ONCE]
            pairs = ", ".join(["(%s, %s)"] * len(chunk))
            cursor.execute(
                f"DELETE FROM {table} WHERE (id, marked_at) IN (VALUES {pairs})",
                [value for pk, marked_at in chunk for value in (pk, adapt(marked_at))],
            )


class _Scope:
    """Days on which only some identities' usage changed (an import), and those identities. Their rollups are
    rewritten for the identities' people alone, with every identity of those people (a person's figures combine
    them: the cost report and source precedence rules), and for the identities themselves where no person counts
    them. Nothing else of those days can have changed."""

    def __init__(
        self, days: set[date], identities: set[int], *, people: set[int] | None = None, name: str = "standings_scope"
    ):
        """`people`: the scope's people when known (then `identities` may leave theirs out), else those of the
        identities."""
        self.days = days
        self.people: set[int] = set()
        self._identities, self._people = f"{name}_identities", f"{name}_people"  # temporary tables of their ids
        if days:
            if people is None:
                people = set(
                    Identity.objects.filter(pk__in=identities, person__isnull=False).values_list("person_id", flat=True)
                )
            self.people = people
            theirs = set(Identity.objects.filter(person_id__in=self.people).values_list("pk", flat=True))
            _ids_table(self._identities, identities | theirs)
            _ids_table(self._people, self.people)

    @property
    def usage_sql(self) -> str:
        """SQL true for a usage row `u` in the scope."""
        return f"u.identity_id IN (SELECT id FROM {self._identities})"

    def rollup_sql(self, table: str = "r") -> str:
        """SQL true for a rollup row of `table` (an alias; empty: unqualified) in the scope."""
        column = f"{table}." if table else ""
        return f"({self.person_sql(f'{column}person_id')} OR {column}identity_id {_among(self._identities)})"

    def person_sql(self, column: str) -> str:
        """SQL true for a person id `column` of the scope's people."""
        return f"{column} {_among(self._people)}"

    def tables_drop(self) -> None:
        if self.days:
            with connection.cursor() as cursor:
                for table in (self._identities, self._people):
                    cursor.execute(f"DROP TABLE {table}")


def _held_rollups_rewrite(held: set[tuple[int, date]]) -> None:
    """Write again the rollups of the (person, day) pairs held after they were written (_AnomalyCheck apart): a
    hold takes one person's usage of one day out, so only the held people's rows are read and compared, not those
    of every person the refresh's days were marked for."""
    days = {day for _person, day in held}
    # Every day from the first held to the last: a few people's rows of the days between are read for nothing,
    # but in one statement of each kind rather than one per run of held days.
    span = {min(days) + timedelta(days=n) for n in range((max(days) - min(days)).days + 1)}
    scope = _Scope(span, set(), people={person for person, _day in held}, name="standings_held")
    _rollups_rewrite(scope.days, scope)
    scope.tables_drop()


def _among(ids_table: str) -> str:
    """SQL: a column's value is one of the ids of `ids_table`. PostgreSQL looks `= ANY(ARRAY(…))` up in an index on
    either side of an OR; `IN (SELECT …)` it checked row by row over every rollup of the days (2.9M rows for 500
    people's 31 days at 85,000 people, against 63,000 looked up)."""
    if connection.vendor == "postgresql":
        return f"= ANY(ARRAY(SELECT id FROM {ids_table}))"
    return f"IN (SELECT id FROM {ids_table})"


def _ids_table(name: str, ids: set[int]) -> None:
    """A temporary table `name` of the ids (column `id`), with statistics (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TEMPORARY TABLE {name} (id bigint PRIMARY KEY)")
        cursor.executemany(f"INSERT INTO {name} (id) VALUES (%s)", [(pk,) for pk in sorted(ids)])
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {name}")


# Within one_generation(): the standings' generation as first read, in a list (empty until then).
_held_generation: ContextVar[list | None] = ContextVar("standings_generation", default=None)


@contextmanager
def one_generation():
    """Read the standings' generation (standings_generation) once within, unless a refresh runs there: a page
    asks for a dozen answers kept per refresh (a person page's rank history reads twelve boards), each keyed on
    it, and every answer of the request then names the same refresh."""
    token = _held_generation.set([])
    try:
        yield
    finally:
        _held_generation.reset(token)


def standings_generation() -> uuid.UUID | None:
    """StandingsState.generation: new at every refresh, None before the first."""
    held = _held_generation.get()
    if held is None:
        return _generation_read()
    if not held:
        held.append(_generation_read())
    return held[0]


def _generation_read() -> uuid.UUID | None:
    return StandingsState.objects.filter(pk=1).values_list("generation", flat=True).first()


def standings_status() -> StandingsState:
    """How current the standings are (a fresh install has never refreshed)."""
    return StandingsState.objects.filter(pk=1).first() or StandingsState(pk=1)


# Indexes the rebuild's own statements never read (the refresh's do): built once after the load rather than row by
# row, about 3 of a rebuild's 25 minutes at 85,000 people (docs/PERFORMANCE.md).
REBUILD_UNREAD_INDEXES = ("team_member_standing_person",)
READ_MODELS = (DailyRollup, TeamMemberStanding, TeamStanding, StandingOrder, StandingWindow)
REBUILD_SCHEMA = "tokenboard_rebuild"  # where rebuild_rollups builds the read models (PostgreSQL)
SWAP_LOCK_TIMEOUT = "500ms"  # below PostgreSQL's deadlock_timeout (1 s): a reader in the way wins, we retry
SWAP_ATTEMPTS = 240


REBUILD_CLEANUP_LOCK_TIMEOUT = "5s"  # a failed rebuild's tables: dropped now if free, else by the next rebuild


def _read_models_emptied(runner: _InTransaction | _RebuildWorkers) -> _ReadModelsAside | None:
    """Empty read models for a rebuild: on PostgreSQL new ones built aside, to be put in place before the commit;
    SQLite deletes the rows in the transaction (its readers see the last commit), and there is nothing to put in
    place."""
    if connection.vendor == "postgresql":
        return _ReadModelsAside(runner)
    with connection.cursor() as cursor:
        for model in READ_MODELS:
            cursor.execute(f"DELETE FROM {quoted_table(model)}")
    return None


class _ReadModelsAside:
    """The read models of a rebuild on PostgreSQL, built aside: empty copies of the tables (same columns,
    constraints and index names) in a schema of their own, put first on the search_path of the rebuild's jobs,
    so the refresh's SQL fills them unchanged. `put_in_place` then swaps them for the live tables just before the
    commit. Readers keep the last standings until then; emptying the live tables with TRUNCATE would lock them
    out for the whole rebuild (22–33 minutes at 85,000 people, docs/PERFORMANCE.md)."""

    def __init__(self, runner: _InTransaction | _RebuildWorkers):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema(), current_setting('search_path')")
            self.live_schema, self.search_path = cursor.fetchone()
        runner.search_path_set(f"{_q(REBUILD_SCHEMA)}, {self.search_path}")
        runner.run([partial(_aside_tables_create, self.live_schema)])

    def put_in_place(self) -> None:
        """In the refresh's transaction: the live tables dropped, the copies moved into their schema."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('search_path', %s, true)", [self.search_path])
            live = [f"{_q(self.live_schema)}.{quoted_table(model)}" for model in READ_MODELS]
            _lock_for_swap(cursor, live)
            options = [_storage_options(cursor, table) for table in live]
            cursor.execute(f"DROP TABLE {', '.join(live)}")
            for model, table, table_options in zip(READ_MODELS, live, options, strict=True):
                cursor.execute(
                    f"ALTER TABLE {_q(REBUILD_SCHEMA)}.{quoted_table(model)} SET SCHEMA {_q(self.live_schema)}"
                )
                cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")  # the live table's own, again
                if table_options:
                    cursor.execute(f"ALTER TABLE {table} SET ({table_options})")
            cursor.execute(f"DROP SCHEMA {_q(REBUILD_SCHEMA)}")


def _aside_tables_create(live_schema: str) -> None:
    with connection.cursor() as cursor:
        # A rebuild by several connections commits its tables as it goes, so one that was killed leaves them;
        # the refresh lock is held, so no other rebuild is building there.
        cursor.execute(f"DROP SCHEMA IF EXISTS {_q(REBUILD_SCHEMA)} CASCADE")
        cursor.execute(f"CREATE SCHEMA {_q(REBUILD_SCHEMA)}")
        for model in READ_MODELS:
            _empty_copy(cursor, model._meta.db_table, live_schema, REBUILD_SCHEMA)
            # Statistics autovacuum took of a level's first batches said every window was among them: the next
            # batches' team totals, planned for one row each, joined row by row for over 19 minutes at 85,000
            # people (docs/PERFORMANCE.md). The rebuild analyzes its tables once they are whole.
            cursor.execute(f"ALTER TABLE {_q(REBUILD_SCHEMA)}.{quoted_table(model)} SET (autovacuum_enabled = off)")


class _InTransaction:
    """Runs a refresh's jobs one after another in its own transaction; in a rebuild on PostgreSQL, with the
    aside schema first on the transaction's search_path. A failure rolls everything back."""

    count = 1

    def search_path_set(self, search_path: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])

    def run(self, jobs: list[Callable[[], T]]) -> list[T]:
        return [job() for job in jobs]

    def leftovers_drop(self) -> None:
        """Nothing: the rollback takes what the rebuild made."""


class _RebuildWorkers:
    """Runs a rebuild's jobs on `count` connections of their own (PostgreSQL, `rebuild_rollups`: one per core),
    each job in a transaction of its own with the aside schema first on its search_path. The jobs given to one
    `run` call run at once and have committed when it returns, so the next call's jobs read what they wrote (a
    level of windows is summed from the level below). The refresh's transaction holds the lock throughout, never
    touches the aside tables until it swaps them in, and is the one that commits the swap."""

    def __init__(self, count: int):
        self.count = count
        self.search_path = ""

    def search_path_set(self, search_path: str) -> None:
        self.search_path = search_path

    def run(self, jobs: list[Callable[[], T]]) -> list[T]:
        with ThreadPoolExecutor(max_workers=self.count, thread_name_prefix="rebuild") as pool:
            futures = [pool.submit(self._job, job) for job in jobs]
            try:
                return [future.result() for future in futures]
            except BaseException:
                pool.shutdown(cancel_futures=True)  # the jobs already running finish (or fail) first
                raise

    def _job(self, job: Callable[[], T]) -> T:
        return _on_own_connection(job, self.search_path)

    def leftovers_drop(self) -> None:
        """Drop the aside tables the jobs committed, while the refresh lock still keeps other rebuilds out. The
        swap's failure may leave the refresh's transaction holding them until it rolls back: then the next
        rebuild drops them."""
        if not self.search_path:
            return
        try:
            self.run([_aside_schema_drop])
        except DatabaseError:
            logger.exception("rebuild: could not drop the schema %s; the next rebuild drops it", REBUILD_SCHEMA)


def _on_own_connection(job: Callable[[], T], search_path: str = "") -> T:
    """Run `job` on this thread's own connection (a worker thread's), in a transaction of its own with the
    refresh's sort memory (and `search_path` first, when given), and close the connection after."""
    try:
        with transaction.atomic():
            if search_path:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])
            _sort_memory_raise()
            return job()
    finally:
        connection.close()


def _aside_schema_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [REBUILD_CLEANUP_LOCK_TIMEOUT])
        cursor.execute(f"DROP SCHEMA IF EXISTS {_q(REBUILD_SCHEMA)} CASCADE")


def _empty_copy(cursor, table: str, source_schema: str, schema: str) -> None:
    """An empty `schema.table` like `source_schema.table`: columns, defaults, checks and identity from LIKE; its
    storage parameters (fillfactor); its primary key, unique constraints and indexes under their own names
    (migrations find them by name), its grants, and its identity going on where the source's is (ids are not
    reused)."""
    # Spelled as pg_get_indexdef spells them (quoted only where needed), to be found in the index definitions.
    cursor.execute("SELECT format('%%I.%%I', %s, %s), format('%%I.%%I', %s, %s)", [source_schema, table, schema, table])
    source, copy = cursor.fetchone()
    cursor.execute(f"CREATE TABLE {copy} (LIKE {source} INCLUDING ALL EXCLUDING INDEXES)")
    if options := _storage_options(cursor, source):  # a fillfactor (migration 0026), which LIKE does not copy
        cursor.execute(f"ALTER TABLE {copy} SET ({options})")
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f', 'x') ORDER BY conname",
        [source],
    )
    for name, definition in cursor.fetchall():
        cursor.execute(f"ALTER TABLE {copy} ADD CONSTRAINT {_q(name)} {definition}")
    for _name, definition in _plain_indexes(cursor, source):
        on_source = f" ON {source} "
        if on_source not in definition:
            raise DatabaseError(f"rebuild: cannot copy the index {definition!r}: it does not name {source}")
        cursor.execute(definition.replace(on_source, f" ON {copy} ", 1))
    cursor.execute(
        "SELECT acl.privilege_type, CASE acl.grantee WHEN 0 THEN 'PUBLIC' ELSE acl.grantee::regrole::text END, "
        "acl.is_grantable FROM pg_class, aclexplode(pg_class.relacl) acl "
        "WHERE pg_class.oid = %s::regclass AND acl.grantee <> pg_class.relowner",
        [source],
    )
    for privilege, grantee, grantable in cursor.fetchall():  # a reporting role's SELECT, say
        cursor.execute(f"GRANT {privilege} ON {copy} TO {grantee}{' WITH GRANT OPTION' if grantable else ''}")
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id'), pg_get_serial_sequence(%s, 'id')", [source, copy])
    source_sequence, sequence = cursor.fetchone()
    cursor.execute(f"SELECT last_value, is_called FROM {source_sequence}")
    last_value, is_called = cursor.fetchone()
    cursor.execute("SELECT setval(%s, %s, %s)", [sequence, last_value, is_called])


def _storage_options(cursor, table: str) -> str:
    """The table's storage parameters as ALTER TABLE … SET takes them ("fillfactor=90"); empty if none."""
    cursor.execute("SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = %s::regclass", [table])
    return cursor.fetchone()[0] or ""


def _lock_for_swap(cursor, tables: list[str]) -> None:
    """Take the live tables for the swap. A request reading them holds its lock for a moment, but one that
    already holds one of them while we wait for it would deadlock with us, and PostgreSQL would then cancel the
    request or the rebuild: each attempt gives up before the deadlock check runs, lets the readers through and
    tries again."""
    cursor.execute("SELECT current_setting('lock_timeout')")
    (lock_timeout,) = cursor.fetchone()
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [SWAP_LOCK_TIMEOUT])
                cursor.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
            return
        except OperationalError as error:
            if attempt == SWAP_ATTEMPTS:
                raise OperationalError(
                    f"rebuild: the rankings' tables stayed in use through {SWAP_ATTEMPTS} attempts to swap in the "
                    "rebuilt ones, so nothing was changed; end the long transaction reading them (pg_stat_activity, "
                    "state 'idle in transaction') and run rebuild_rollups again"
                ) from error
            logger.info("rebuild: the read models are in use, attempt %d of %d to swap them", attempt, SWAP_ATTEMPTS)
            time.sleep(0.05)


def _plain_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that no constraint owns (PostgreSQL; `table` as SQL)."""
    cursor.execute(
        "SELECT index_class.relname, pg_get_indexdef(pg_index.indexrelid) FROM pg_index "
        "JOIN pg_class index_class ON index_class.oid = pg_index.indexrelid "
        "WHERE pg_index.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = pg_index.indexrelid) ORDER BY 1",
        [table],
    )
    return cursor.fetchall()


def _rollups_rebuild(days: set[date], runner: _InTransaction | _RebuildWorkers, phases: _Phases) -> None:
    """Every day's rollups into the emptied table, a chunk of days per job. On PostgreSQL the table's primary key
    and plain indexes are built once after the load rather than row by row, then its statistics gathered."""

    def timed(job: Callable[[], T]) -> Callable[[], T]:
        return partial(_timed, phases, "daily rollups", job)

    indexes = runner.run([timed(partial(_indexes_drop, DailyRollup))])[0]
    chunks = _chunks(day_ranges(days), ROLLUP_CHUNK_DAYS)
    runner.run([timed(partial(_rollups_insert, first, last)) for first, last in chunks])
    runner.run([timed(partial(_execute, definition)) for definition in indexes])
    runner.run([timed(partial(_analyze, DailyRollup))])


def _timed(phases: _Phases, name: str, job: Callable[[], T]) -> T:
    """Run the job, its seconds counted in the step `name` (a rebuild's connections' seconds are summed)."""
    with phases.timed(name):
        return job()


def _indexes_drop(model, plain: Collection[str] | None = None) -> list[str]:
    """Drop the table's primary key and its plain indexes, or those of them `plain` names (PostgreSQL); the SQL
    that builds them again. A rebuild loads its tables without the indexes it does not read and builds them from
    the whole table: kept up row by row, the rollups' and member rows' primary keys were 70M index entries and
    4.8 GB of a rebuild's WAL at 85,000 people, and the rebuild took 43 s longer (docs/PERFORMANCE.md)."""
    if connection.vendor != "postgresql":
        return []
    table = quoted_table(model)
    with connection.cursor() as cursor:
        indexes = [(name, sql) for name, sql in _plain_indexes(cursor, table) if plain is None or name in plain]
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {_q(name)}")
        # The table named with its schema, as the indexes' definitions name it: the SQL runs in a later job.
        cursor.execute(
            "SELECT format('%%I.%%I', n.nspname, t.relname), c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
            [table],
        )
        keys = cursor.fetchall()
        for qualified, name, _definition in keys:
            cursor.execute(f"ALTER TABLE {qualified} DROP CONSTRAINT {_q(name)}")
    return [
        *(definition for _name, definition in indexes),
        *(f"ALTER TABLE {qualified} ADD CONSTRAINT {_q(name)} {definition}" for qualified, name, definition in keys),
    ]


def _execute(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)


def _analyze(*models) -> None:
    """Fresh planner statistics after a bulk load (PostgreSQL): statistics gathered while a table was empty
    made a 30-day titles query sort millions of rows on disk at 85,000 people (docs/PERFORMANCE.md), and
    autovacuum may be off or late."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {quoted_table(model)}")


def reported_by_preferred_source_sql() -> str:
    """SQL true for a usage row `u` (its identity `i`, its import `b`) that a preferred source also reports: the
    same person's use of the same provider on the same day, in an import of a source that a SourcePrecedence
    rule puts first. Such a row is not counted (one count per use)."""
    return f"""
    i.attribution = 'personal' AND i.person_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM {quoted_table(SourcePrecedence)} p
        JOIN {quoted_table(UsageRecord)} w ON w.day = u.day AND w.provider = u.provider AND w.usage_kind <> '{COST_REPORT_KIND}'
        JOIN {quoted_table(ImportBatch)} wb ON wb.id = w.import_batch_id AND wb.detected_format = p.preferred
        JOIN {quoted_table(Identity)} wi ON wi.id = w.identity_id AND wi.person_id = i.person_id
             AND wi.attribution = 'personal'
        WHERE p.provider = u.provider AND p.over = b.detected_format AND (p.usage_kind = '' OR p.usage_kind = u.usage_kind)
    )"""


ROLLUP_CHUNK_DAYS = 31  # days per rollup statement: keeps its sorts and hash tables in memory at any org size


ROLLUP_NEW = "standings_rollup_new"
ROLLUP_COLUMN_NAMES = (
    "day",
    "provider",
    "model",
    "model_family",
    "person_id",
    "team_id",
    "identity_id",
    *SUMMED_FIGURES,
)
ROLLUP_COLUMNS = ", ".join(ROLLUP_COLUMN_NAMES)
# DailyRollup's columns that may be empty, and a value none of them holds, to compare rows with `=`, which
# PostgreSQL can hash, rather than IS NOT DISTINCT FROM, which it can only loop over.
ROLLUP_NULLABLE = {"identity_id": 0, "person_id": 0, "team_id": 0, "requests": -1}
ROLLUP_SAME = " AND ".join(  # rollup rows `r` and `n` are the same in every column
    f"COALESCE(r.{name}, {ROLLUP_NULLABLE[name]}) = COALESCE(n.{name}, {ROLLUP_NULLABLE[name]})"
    if name in ROLLUP_NULLABLE
    else f"r.{name} = n.{name}"
    for name in ROLLUP_COLUMN_NAMES
)

# Rollups are stored a day and a provider at a time: their reads name days (and a provider), and the rows of a day
# spread over a 31-day chunk made each such read touch the whole chunk (the rebuild's team members took a third
# longer at 10,000 people; docs/PERFORMANCE.md).
ROLLUP_ORDER = "ORDER BY {0}.day, {0}.provider"


@dataclass(frozen=True)
class _RulesInForce:
    """Which of the rollups' rules can take usage out on some days: a hold on one of them, a source that a
    precedence rule puts second. A rule that cannot is left out of their SQL: anti-joined to every usage row though
    their sets were empty, the two took 2.2–2.8 s of the 15.6–16.6 that a month's rollups took to compute at 85,000
    people (docs/PERFORMANCE.md)."""

    holds: bool
    sources_put_second: bool

    @classmethod
    def on(cls, first: date, last: date) -> _RulesInForce:
        held = UsageHold.objects.filter(day__range=(first, last)).exclude(status=HoldStatus.CLEARED)
        put_second = ImportBatch.objects.filter(detected_format__in=SourcePrecedence.objects.values("over"))
        return cls(holds=held.exists(), sources_put_second=put_second.exists())


def _rollups_sql(rules: _RulesInForce, scope: _Scope | None = None) -> str:
    """SQL: the rollups of the days from %(first)s to %(last)s, from the usage records (%(cost)s: the cost
    reports' usage kind); those of the `scope`'s people and identities alone when given. The `rules` not in force
    on those days are left out."""
    usage, identity, membership = quoted_table(UsageRecord), quoted_table(Identity), quoted_table(Membership)
    batch, precedence = quoted_table(ImportBatch), quoted_table(SourcePrecedence)
    alias, catalog = quoted_table(ModelAlias), quoted_table(CatalogModel)
    # Held and confirmed days (usage.services.anomalies) stay out of the rollups, so out of every ranking,
    # team total and title, until an admin clears them (usage.services.review).
    not_held = (
        f"NOT EXISTS (SELECT 1 FROM {quoted_table(UsageHold)} h WHERE h.person_id = i.person_id "
        f"AND h.day = u.day AND h.status <> '{HoldStatus.CLEARED}')"
    )
    sums = ", ".join(f"SUM(u.{name}) AS {name}" for name in COUNT_FIGURES)
    # Only personal identities count for their person (and the team covering the day); a shared identity counts
    # for its team only, a service identity for no one. Usage no person counts for keeps its identity.
    personal = "i.attribution = 'personal'"
    person = f"CASE WHEN {personal} THEN i.person_id END"
    team = "CASE WHEN i.attribution = 'shared' THEN i.shared_team_id ELSE m.team_id END"
    kept_identity = f"CASE WHEN i.person_id IS NULL OR NOT {personal} THEN u.identity_id END"
    # A source a rule puts second counts only where the source it puts first does not report the same use.
    not_outranked = f"""NOT EXISTS (
              SELECT 1 FROM outranked o
              WHERE o.person_id = i.person_id AND o.provider = u.provider AND o.day = u.day
                AND o.over = b.detected_format AND (o.usage_kind = '' OR o.usage_kind = u.usage_kind)
                AND {personal}
          )"""
    # The catalog's canonical model where an alias maps the exported spelling, else the spelling as exported.
    model, family = "COALESCE(c.name, u.model)", "COALESCE(c.family, '')"
    # Billed beats estimated: a usage row whose person has a cost report of the same provider and day (a key,
    # project or workspace they own) counts no cost; the report counts it. That rule and the one of
    # reported_by_preferred_source_sql are applied as sets joined once rather than as subqueries per usage row
    # (the rollups of a year at 85,000 people are 33M rows).
    billed_elsewhere = "bd.person_id IS NOT NULL"
    owned = "{0}.attribution = 'personal' AND {0}.person_id IS NOT NULL"
    # A scope's usage rows are all of its people's: the rules' sets need only theirs (read whole, a day's sets
    # took 0.3 s at 85,000 people for a rewrite of one person's day).
    owned_in_scope = owned + (f" AND {scope.person_sql('{0}.person_id')}" if scope else "")
    return f"""
        WITH billed AS (  -- a person's cost report, by provider and day
            SELECT DISTINCT ci.person_id, c.provider, c.day
            FROM {usage} c JOIN {identity} ci ON ci.id = c.identity_id
            WHERE c.day BETWEEN %(first)s AND %(last)s AND c.usage_kind = %(cost)s AND {owned_in_scope.format("ci")}
        ),
        replaceable AS (  -- a person's usage from a source some rule puts second
            SELECT DISTINCT ri.person_id, r.provider, r.day
            FROM {usage} r JOIN {identity} ri ON ri.id = r.identity_id
            WHERE r.day BETWEEN %(first)s AND %(last)s AND {owned_in_scope.format("ri")}
              AND r.import_batch_id IN (SELECT rb.id FROM {batch} rb JOIN {precedence} rp ON rp.over = rb.detected_format)
        ),
        outranked AS (  -- … that a source the rule puts first also reports: the rule's source counts
            SELECT DISTINCT x.person_id, x.provider, x.day, p.over, p.usage_kind
            FROM replaceable x
            JOIN {identity} wi ON wi.person_id = x.person_id AND wi.attribution = 'personal'
            JOIN {usage} w ON w.identity_id = wi.id AND w.day = x.day AND w.provider = x.provider
                 AND w.usage_kind <> %(cost)s
            JOIN {batch} wb ON wb.id = w.import_batch_id
            JOIN {precedence} p ON p.preferred = wb.detected_format AND p.provider = x.provider
        )
        SELECT u.day, u.provider, {model} AS model, {family} AS model_family, {person} AS person_id,
               {team} AS team_id, {kept_identity} AS identity_id, {sums},
               SUM(CASE WHEN {billed_elsewhere} THEN 0 ELSE u.cost_usd END) AS cost_usd,
               SUM(CASE WHEN {billed_elsewhere} THEN 0 WHEN u.cost_source = 'billed' THEN u.cost_usd ELSE 0 END)
                   AS billed_cost_usd
        FROM {usage} u
        JOIN {identity} i ON i.id = u.identity_id
        JOIN {batch} b ON b.id = u.import_batch_id
        LEFT JOIN {alias} a ON a.spelling = LOWER(u.model)
        LEFT JOIN {catalog} c ON c.id = a.model_id
        LEFT JOIN {membership} m ON {personal} AND m.person_id = i.person_id AND m.start <= u.day
             AND (m.{_q("end")} IS NULL OR m.{_q("end")} >= u.day)
        LEFT JOIN billed bd ON u.usage_kind <> %(cost)s AND {personal} AND bd.person_id = i.person_id
             AND bd.provider = u.provider AND bd.day = u.day
        WHERE u.day BETWEEN %(first)s AND %(last)s {f"AND {scope.usage_sql}" if scope else ""}
          AND (u.usage_kind <> %(cost)s OR ({owned.format("i")}))
          {f"AND {not_held}" if rules.holds else ""}
          {f"AND {not_outranked}" if rules.sources_put_second else ""}
        -- the numbers before the model's text: sorting a month's 2.8M rows then compares text only between one
        -- person's models of a day (4.6 s rather than 8.2 at 85,000 people)
        GROUP BY u.day, u.provider, {person}, {team}, {kept_identity}, {model}, {family}
        """


def _rollups_params(first: date, last: date) -> dict:
    return {"first": first, "last": last, "cost": COST_REPORT_KIND}


def _rollups_insert(first: date, last: date) -> None:
    """The rollups of days that have none (a rebuild). Its rules' sets (cost reports, sources put second, holds)
    are usually empty or small: merge-joined to them, a month's 2.8M usage rows were sorted for nothing, 5 s of the
    statement's 25 at 85,000 people (docs/PERFORMANCE.md)."""
    with connection.cursor() as cursor, planner_settings(enable_mergejoin="off"):
        cursor.execute(
            f"INSERT INTO {quoted_table(DailyRollup)} ({ROLLUP_COLUMNS}) "
            f"{_rollups_sql(_RulesInForce.on(first, last))} {ROLLUP_ORDER.format('u')}",
            _rollups_params(first, last),
        )


def _rollups_rewrite(days: set[date], scope: _Scope | None = None) -> None:
    """Write the days' rollups again from the usage records (only the `scope`'s, when given): only the rows that
    changed are deleted and inserted. An import restating a few people's day leaves the day's other rows and their
    index entries as they were (rewriting a whole day cost 5 s at 85,000 people, 1.7 s now)."""
    rollup = quoted_table(DailyRollup)
    # Rows of the scope: the others of the chunk are neither compared nor read.
    in_scope, r_in_scope = (f"AND {scope.rollup_sql('')}", f"AND {scope.rollup_sql('r')}") if scope else ("", "")
    with connection.cursor() as cursor:
        for first, last in _chunks(day_ranges(days), ROLLUP_CHUNK_DAYS):
            _temporary_table(
                ROLLUP_NEW, _rollups_sql(_RulesInForce.on(first, last), scope), _rollups_params(first, last)
            )
            cursor.execute(
                f"DELETE FROM {rollup} WHERE day BETWEEN %s AND %s {in_scope} AND id NOT IN "
                f"(SELECT r.id FROM {rollup} r JOIN {ROLLUP_NEW} n ON {ROLLUP_SAME} "
                f"WHERE r.day BETWEEN %s AND %s {r_in_scope})",
                [first, last, first, last],
            )
            cursor.execute(
                f"INSERT INTO {rollup} ({ROLLUP_COLUMNS}) SELECT {ROLLUP_COLUMNS} FROM {ROLLUP_NEW} n WHERE NOT EXISTS "
                f"(SELECT 1 FROM {rollup} r WHERE r.day BETWEEN %s AND %s {r_in_scope} AND {ROLLUP_SAME}) "
                f"{ROLLUP_ORDER.format('n')}",
                [first, last],
            )
            cursor.execute(f"DROP TABLE {ROLLUP_NEW}")


def _chunks(ranges: Iterable[tuple[date, date]], most_days: int) -> Iterator[tuple[date, date]]:
    """The day ranges, each cut into as few pieces of at most `most_days` days as it takes, all of about one size:
    a rebuild's connections then finish their last chunks together (a year in 31-day chunks ended on one of 24)."""
    for first, last in ranges:
        days = (last - first).days + 1
        pieces = -(-days // most_days)
        for piece in range(pieces):
            yield (
                first + timedelta(days=days * piece // pieces),
                first + timedelta(days=days * (piece + 1) // pieces - 1),
            )


def _providers(days: set[date], scope: _Scope | None = None) -> list[str]:
    """All providers together, and each provider with usage on the days or standings already kept. On the days
    of the `scope` only its rollups can have changed: read through their people's and identities' indexes, not
    the whole days (a month of everyone's rollups at 85,000 people: 3M rows)."""
    providers = set(StandingWindow.objects.exclude(provider=ALL_PROVIDERS).values_list("provider", flat=True))
    scoped = scope.days if scope is not None else set()
    for first, last in day_ranges(days - scoped):
        providers |= set(
            DailyRollup.objects.filter(day__range=(first, last)).values_list("provider", flat=True).distinct()
        )
    with connection.cursor() as cursor:
        for first, last in day_ranges(scoped):
            cursor.execute(
                f"SELECT DISTINCT provider FROM {quoted_table(DailyRollup)} r "
                f"WHERE r.day BETWEEN %s AND %s AND {scope.rollup_sql('r')}",
                [first, last],
            )
            providers |= {provider for (provider,) in cursor.fetchall()}
    return [ALL_PROVIDERS, *sorted(providers)]


def _windows_to_compute(
    days: set[date], today: date, *, roll: bool, scope: _Scope | None = None
) -> list[tuple[Window, str]]:
    """Every window to recompute, smaller before larger (a window is summed from the smaller ones inside it):
    those that contain a dirty day and, when the day has turned (`roll`), today's windows. On the `scope`'s days
    only its identities' usage changed."""
    windows: set[Window] = set()
    for day in days:
        windows.update(calendar_windows_containing(day))
    for first, last in day_ranges(days):
        for period, start, end in (
            StandingWindow.objects.filter(start__lte=last, end__gte=first, provider=ALL_PROVIDERS)
            .values_list("period", "start", "end")
            .distinct()
        ):
            windows.add(Window(period, start, end))
    if roll:
        windows.update(current_windows(today))
    ordered = sorted(windows, key=lambda w: (COMPUTE_ORDER.get(w.period, len(COMPUTE_ORDER)), w.start, w.end))
    # One provider's day is read from the rollups when asked for: keeping a day board per provider would
    # double the largest level of standings for a filter that a day's rollups answer quickly.
    return [
        (window, provider)
        for provider in _providers(days, scope)
        for window in ordered
        if provider == ALL_PROVIDERS or window.period != "day"
    ]


# Windows that move every day: kept for today only (with the windows they compare against).
MOVING_PERIODS = (*ROLLING_PERIODS, "all", "custom")


def _drop_stale_moving_windows(today: date) -> None:
    """Rolling windows and the comparison windows of the periods in progress move every day; keep only
    today's."""
    keep = {(w.period, w.start, w.end) for w in current_windows(today) if w.period in MOVING_PERIODS}
    stale = [
        pk
        for pk, period, start, end in StandingWindow.objects.filter(period__in=MOVING_PERIODS).values_list(
            "pk", "period", "start", "end"
        )
        if (period, start, end) not in keep
    ]
    _delete_rows(stale)
    StandingWindow.objects.filter(pk__in=stale).delete()


def _delete_rows(window_ids: list[int]) -> None:
    for model in (TeamMemberStanding, TeamStanding, StandingOrder):
        model.objects.filter(window_id__in=window_ids).delete()


# --- Adding a few days' changes to the kept windows ----------------------------------------------------------
# A window kept before this refresh is the sum of the rollups it covers as the last refresh left them. When few
# days changed, the refresh adds each changed day's difference (its new rollups less its old, per team and person)
# to the kept windows containing it instead of summing each window again from its pieces: at 85,000 people a day
# of everyone's usage changes ~50,000 rows of a window, while summing a year again reads over a million
# (docs/PERFORMANCE.md). New windows and the windows of a change that cannot be added are recomputed.

CHANGES_MOST_DAYS = 62  # more changed days (a team tree change marks every day): recomputing costs less
CHANGES_MOST_SHARE = 4  # changes to more than a quarter of the windows' rows: recomputing costs less
DAY_BEFORE, DAY_CHANGE = "standings_day_before", "standings_day_change"
WINDOW_CHANGE = "standings_window_change"
MEMBER_CHANGE = "standings_member_change"
CHANGE_TABLES = (DAY_BEFORE, DAY_CHANGE, WINDOW_CHANGE, MEMBER_CHANGE)
CLOSURE, TEAM_PAIRS, WATCHED_ROWS = "standings_closure", "standings_team_pairs", "standings_watched_rows"
TEAM_CHANGE, TOPS_AGAIN = "standings_team_change", "standings_tops_again"
LOST_SUBTREES, LOST_PEOPLE = "standings_lost_subtrees", "standings_lost_people"
TEAM_CHANGE_TABLES = (CLOSURE, TEAM_PAIRS, WATCHED_ROWS, TEAM_CHANGE, LOST_SUBTREES, LOST_PEOPLE, TOPS_AGAIN)


class _DayChanges:
    """The changed days' counted rollup figures per (day, provider scope, team, person), read before the rollups
    are rewritten, then their differences, in temporary tables of the refresh's transaction.

    A figure some sources do not report (usage.figures.UNREPORTED_FIGURES: requests) is summed over the days that
    report it, NULL when none does. The kept rows count those days (KeptFigures.requests_reported_days), and a
    change carries its day's difference of that count (1: reports it now, -1: no longer does), so a day that stops
    reporting is taken away like any other figure: the sum becomes NULL when the row's count reaches 0."""

    def __init__(self, days: Iterable[date], people: set[int], scope: _Scope):
        self.days = sorted(days)
        self.people = people  # marked: to be placed again on the boards even if their figures did not change
        self.scope = scope  # days on which only some people's and identities' rows can change
        self.whole_days = [day for day in self.days if day not in scope.days]
        self.scoped_days = [day for day in self.days if day in scope.days]

    @classmethod
    def before(cls, days: Iterable[date], people: set[int], scope: _Scope) -> _DayChanges:
        changes = cls(days, people, scope)
        _temporary_table(DAY_BEFORE, changes._figures_sql(), changes._days_params())
        return changes

    def _days_sql(self) -> str:
        """SQL true for a rollup row `r` of the changed days that may have changed."""
        parts = [f"r.day IN ({', '.join(['%s'] * len(self.whole_days))})"] if self.whole_days else []
        if self.scoped_days:
            parts.append(f"(r.day IN ({', '.join(['%s'] * len(self.scoped_days))}) AND {self.scope.rollup_sql()})")
        return f"({' OR '.join(parts)})"

    def _days_params(self) -> list[date]:
        """The parameters of _figures_sql: the whole days, then the scoped ones."""
        return [*self.whole_days, *self.scoped_days]

    def _figures_sql(self) -> str:
        """The days' counted rollups per day, scope (each provider, and all: '' as in StandingWindow), team and
        person, with whether each unreported figure was reported (1) or not (0). All providers' rows are summed
        from each provider's: the rollups are read once."""
        reported = "".join(f", {column}" for column in REPORTED_DAYS)
        reported_any = "".join(f", MAX(p.{column}) AS {column}" for column in REPORTED_DAYS)
        return f"""
            WITH per_provider AS (
                SELECT r.day, r.provider, r.team_id, r.person_id, {figure_sums("r")}{reported_flags("r")}
                FROM {quoted_table(DailyRollup)} r
                WHERE {COUNTED_ROLLUP} AND {self._days_sql()}
                GROUP BY r.day, r.provider, r.team_id, r.person_id
            )
            SELECT day, provider AS scope, team_id, person_id, {FIGURE_COLUMNS}, 1 AS active_days{reported}
            FROM per_provider
            UNION ALL
            SELECT p.day, '{ALL_PROVIDERS}', p.team_id, p.person_id, {figure_sums("p")}, 1{reported_any}
            FROM per_provider p
            GROUP BY p.day, p.team_id, p.person_id"""

    def measure(self) -> None:
        """DAY_CHANGE: the rows whose figures, presence (active_days: 1 a new row, -1 a row gone) or reporting
        (reported days: 1 or -1) changed, with the differences, now that the rollups are rewritten."""
        key = "day, scope, team_id, person_id"
        figures = KEPT_FIGURES
        signed = ", ".join(f"SUM(sign * {name}) AS {name}" for name in figures)
        changed = " OR ".join(f"COALESCE(SUM(sign * {name}), 0) <> 0" for name in figures)
        columns = ", ".join(figures)
        _temporary_table(
            DAY_CHANGE,
            f"""
            SELECT {key}, {signed}
            FROM (
                SELECT -1 AS sign, {key}, {columns} FROM {DAY_BEFORE}
                UNION ALL
                SELECT 1 AS sign, {key}, {columns} FROM ({self._figures_sql()}) now_
            ) both_
            GROUP BY {key}
            HAVING {changed}
            """,
            self._days_params(),
        )

    def add_to_kept(
        self, windows: list[tuple[Window, str]], ancestors: dict[int, list[int]], phases: _Phases
    ) -> list[tuple[Window, str]]:
        """Add the changes to every window of `windows`; return the windows left to compute (all of them, when the
        changes touch most of the kept windows' rows). A window not kept before starts empty: a window is kept for
        every period with usage of its provider scope, so one not kept had none, and the changes are all of it. The
        first import of a new provider then adds its people's changes to its new windows instead of summing them
        from every person's rollups of the days they span (docs/PERFORMANCE.md)."""
        if not windows:
            return []
        kept = self._kept(windows)
        stored = _windows_upsert(windows)  # creates the new ones; stamps them all computed now
        window_ids = {(w, provider): stored[(w.period, w.start, w.end, provider)] for w, provider in windows}
        ids, kept_ids = list(window_ids.values()), list(kept.values())
        new_ids = [pk for pair, pk in window_ids.items() if pair not in kept]
        windows_sql = ", ".join(f"({int(pk)}, %s, %s, %s)" for pk in ids)
        windows_params = [value for window, provider in window_ids for value in (window.start, window.end, provider)]
        # Not when the changes touch most kept rows: recomputing writes each row once, adding updates it twice.
        added = self._per_window(windows_sql, windows_params, kept_ids) * CHANGES_MOST_SHARE <= _people_kept(kept_ids)
        if added:
            with phases.timed("team members"):
                self._members_change()
            with phases.timed("team totals"):
                self._teams_watch(ids, ancestors)
            with phases.timed("team members"):
                _changes_add(TeamMemberStanding, MEMBER_CHANGE, ids, ("window_id", "team_id", "person_id"))
            with phases.timed("people"):
                moved = _people_moved(ids, KEPT_METRICS, self.people)
                _people_count_change(moved)
            with phases.timed("orders"):
                _orders_merge(KEPT_METRICS, moved)
                _orders_write([pk for pk in new_ids if pk not in moved], KEPT_METRICS)  # nobody on them: empty
            with phases.timed("team totals"):
                self._teams_change()
                self._teams_add(ids)
        with connection.cursor() as cursor:
            for table in (*CHANGE_TABLES, *TEAM_CHANGE_TABLES):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
        return [] if added else windows

    def _kept(self, windows: list[tuple[Window, str]]) -> dict[tuple[Window, str], int]:
        """The windows of `windows` kept before this refresh, with their ids; the others are new."""
        stored = StandingWindow.objects.filter(
            start__gte=min(w.start for w, _p in windows), end__lte=max(w.end for w, _p in windows)
        ).values_list("pk", "period", "start", "end", "provider")
        ids = {(Window(period, start, end), provider): pk for pk, period, start, end, provider in stored}
        return {pair: ids[pair] for pair in windows if pair in ids}

    def _per_window(self, windows_sql: str, params: list, kept_ids: list[int]) -> int:
        """WINDOW_CHANGE: the changes summed per window (kept and new), team and person; returns how many of those
        rows are in the kept windows (`kept_ids`), the kept member rows the changes touch. (A bound from the changes'
        counts per day, which counts a person changed on 30 days 30 times in a month window, sent a 500-person month
        at 10,000 people to be recomputed: docs/PERFORMANCE.md.)"""
        _temporary_table(
            WINDOW_CHANGE,
            f"""
            WITH windows(window_id, first_day, last_day, scope) AS (VALUES {windows_sql})
            SELECT w.window_id, c.team_id, c.person_id, {figure_sums("c")},
                   CAST(SUM(c.active_days) AS INTEGER) AS active_days{reported_days_sums("c")}
            FROM {DAY_CHANGE} c JOIN windows w ON c.scope = w.scope AND c.day BETWEEN w.first_day AND w.last_day
            GROUP BY w.window_id, c.team_id, c.person_id
            """,
            params,
        )
        if not kept_ids:
            return 0
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {WINDOW_CHANGE} WHERE window_id IN ({ids_sql(kept_ids)})")
            return cursor.fetchone()[0]

    def _members_change(self) -> None:
        """MEMBER_CHANGE: WINDOW_CHANGE with the id of the window's row each change is to (none: a new row),
        looked up in team_member_standing_key. Its key's columns may be empty (a person in no team, a team's shared
        identities; never both), which equality does not match: the three cases are joined apart."""
        members = quoted_table(TeamMemberStanding)
        matched = {
            "t.team_id = changed.team_id AND t.person_id = changed.person_id": (
                "changed.team_id IS NOT NULL AND changed.person_id IS NOT NULL"
            ),
            "t.team_id IS NULL AND t.person_id = changed.person_id": "changed.team_id IS NULL",
            "t.team_id = changed.team_id AND t.person_id IS NULL": "changed.person_id IS NULL",
        }
        _temporary_table(
            MEMBER_CHANGE,
            " UNION ALL ".join(
                f"""SELECT changed.*, t.id AS row_id
                FROM {WINDOW_CHANGE} changed LEFT JOIN {members} t ON t.window_id = changed.window_id AND {joined}
                WHERE {case}"""
                for joined, case in matched.items()
            ),
        )

    def _teams_watch(self, ids: list[int], ancestors: dict[int, list[int]]) -> None:
        """Before the member changes are added: TEAM_PAIRS, the kept team rows (window, team and its current top
        person on each kept metric) whose subtree a change touches, and WATCHED_ROWS, the member rows of the
        people who can move a team's top person: the changed people and the current tops."""
        _temporary_table(CLOSURE, f"WITH {team_closure_sql(ancestors)} SELECT team_id, ancestor_id FROM closure")
        tops = "".join(f", s.top_{m}" for m in KEPT_METRICS)
        _temporary_table(
            TEAM_PAIRS,
            f"""
            SELECT p.window_id, p.team_id, s.id AS row_id{tops}
            FROM (
                SELECT DISTINCT m.window_id, c.ancestor_id AS team_id
                FROM {MEMBER_CHANGE} m JOIN {CLOSURE} c ON c.team_id = m.team_id
            ) p LEFT JOIN {quoted_table(TeamStanding)} s ON s.window_id IN ({ids_sql(ids)})
                AND s.window_id = p.window_id AND s.team_id = p.team_id
            """,
        )
        watched = " UNION ".join(
            [
                f"SELECT window_id, person_id FROM {MEMBER_CHANGE} WHERE person_id IS NOT NULL",
                *(f"SELECT window_id, top_{m} FROM {TEAM_PAIRS} WHERE top_{m} IS NOT NULL" for m in KEPT_METRICS),
            ]
        )
        _temporary_table(
            WATCHED_ROWS,
            f"""
            SELECT t.window_id, t.team_id, t.person_id, t.active_days{"".join(f", t.{m}" for m in KEPT_METRICS)}
            FROM ({watched}) w JOIN {quoted_table(TeamMemberStanding)} t  -- team_member_standing_person
                 ON t.window_id = w.window_id AND t.person_id = w.person_id
            WHERE t.team_id IS NOT NULL
            """,
        )

    def _teams_change(self) -> None:
        """TEAM_CHANGE: the member changes summed for the team rows of TEAM_PAIRS, once they are added to the
        member rows: figures and active days as differences; active members and top people from the watched
        people's rows before and after; and whether the team's top person lost usage or left (`top_lost`: someone
        not watched may now be ahead)."""

        def per_person(rows: str) -> str:
            return _subtree_people_sql(
                rows,
                CLOSURE,
                figure_sums("t", figures=KEPT_METRICS),
                joined=f"JOIN {TEAM_PAIRS} p ON p.window_id = t.window_id AND p.team_id = c.ancestor_id",
            )

        kept = ", ".join(KEPT_METRICS)
        rows_after = f"""
            SELECT window_id, team_id, person_id, {figure_sums(figures=KEPT_METRICS)}
            FROM (
                SELECT window_id, team_id, person_id, active_days, {kept} FROM {WATCHED_ROWS}
                UNION ALL
                SELECT window_id, team_id, person_id, active_days, {kept} FROM {MEMBER_CHANGE}
                WHERE person_id IS NOT NULL AND team_id IS NOT NULL
            ) both_
            GROUP BY window_id, team_id, person_id HAVING SUM(active_days) > 0"""
        lost_top = " OR ".join(
            f"""EXISTS (SELECT 1 FROM before_ b LEFT JOIN per_person a ON a.window_id = b.window_id
                        AND a.team_id = b.team_id AND a.person_id = b.person_id
                        WHERE b.window_id = p.window_id AND b.team_id = p.team_id AND b.person_id = p.top_{m}
                        AND (a.person_id IS NULL OR a.{m} < b.{m}))"""
            for m in KEPT_METRICS
        )
        _temporary_table(
            TEAM_CHANGE,
            f"""
            WITH before_ AS ({per_person(WATCHED_ROWS)}),
            per_person AS ({per_person(f"({rows_after})")}),
            {_top_people_sql(KEPT_METRICS)},
            members AS (
                SELECT window_id, team_id, SUM(presence) AS active_members
                FROM (
                    SELECT window_id, team_id, 1 AS presence FROM per_person
                    UNION ALL
                    SELECT window_id, team_id, -1 AS presence FROM before_
                ) both_
                GROUP BY window_id, team_id
            ),
            figures AS (
                SELECT m.window_id, c.ancestor_id AS team_id, {figure_sums("m")},
                       SUM(CASE WHEN m.person_id IS NOT NULL THEN m.active_days ELSE 0 END) AS active_days
                       {reported_days_sums("m")}
                FROM {MEMBER_CHANGE} m JOIN {CLOSURE} c ON c.team_id = m.team_id
                GROUP BY m.window_id, c.ancestor_id
            )
            SELECT p.window_id, p.team_id, p.row_id, {", ".join(f"f.{n}" for n in SUMMED_FIGURES)}, f.active_days,
                   {"".join(f"f.{column}, " for column in REPORTED_DAYS)}COALESCE(n.active_members, 0) AS active_members,
                   {", ".join(f"t.top_{m}" for m in KEPT_METRICS)},
                   CASE WHEN {lost_top} THEN 1 ELSE 0 END AS top_lost
            FROM {TEAM_PAIRS} p
            JOIN figures f ON f.window_id = p.window_id AND f.team_id = p.team_id
            LEFT JOIN members n ON n.window_id = p.window_id AND n.team_id = p.team_id
            LEFT JOIN contributors t ON t.window_id = p.window_id AND t.team_id = p.team_id
            """,
        )

    def _teams_add(self, ids: list[int]) -> None:
        """Write TEAM_CHANGE to the team rows: update, delete those whose subtree has no member row left, insert
        the new ones, and find the lost top people again."""
        table, members = quoted_table(TeamStanding), quoted_table(TeamMemberStanding)
        figures = KEPT_FIGURES
        tops = [f"top_{m}" for m in KEPT_METRICS]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(f'{name} = {_added(table, name)}' for name in figures)}, "
                f"active_members = {table}.active_members + c.active_members, "
                f"{', '.join(f'{top} = c.{top}' for top in tops)} "
                f"FROM {TEAM_CHANGE} c WHERE {table}.window_id IN ({ids_sql(ids)}) AND {table}.id = c.row_id"
            )
            cursor.execute(
                f"""DELETE FROM {table} WHERE id IN (
                    SELECT c.row_id FROM {TEAM_CHANGE} c JOIN {table} s ON s.id = c.row_id
                    WHERE s.active_members = 0 AND NOT EXISTS (
                        SELECT 1 FROM {members} t JOIN {CLOSURE} cl ON cl.team_id = t.team_id
                        WHERE t.window_id = c.window_id AND cl.ancestor_id = c.team_id
                    )
                )"""
            )
            cursor.execute(
                f"INSERT INTO {table} (window_id, team_id, {', '.join(figures)}, active_members, {', '.join(tops)}) "
                f"SELECT c.window_id, c.team_id, {', '.join(_new(name) for name in figures)}, c.active_members, "
                f"{', '.join(f'c.{top}' for top in tops)} FROM {TEAM_CHANGE} c WHERE c.row_id IS NULL"
            )
        # Each lost team's subtree teams first, then their member rows, looked up in team_member_standing_key
        # whatever the statistics say. Joined from the rows, PostgreSQL read each window's rows once per lost team
        # (6M rows for 4,035 teams at 85,000 people); planned from the table's average rows per team, it read all
        # 36.6M (32 s), though most subtree teams hold none (groups; a provider's windows).
        _temporary_table(
            LOST_SUBTREES,
            f"""SELECT l.window_id, l.team_id, c.team_id AS member_team_id
            FROM {TEAM_CHANGE} l JOIN {CLOSURE} c ON c.ancestor_id = l.team_id
            WHERE l.top_lost = 1""",
        )
        with index_lookups():
            _temporary_table(
                LOST_PEOPLE,
                f"""SELECT s.window_id, s.team_id, t.person_id, {figure_sums("t", figures=KEPT_METRICS)}
                FROM {LOST_SUBTREES} s JOIN {members} t ON t.window_id = s.window_id AND t.team_id = s.member_team_id
                GROUP BY s.window_id, s.team_id, t.person_id""",
            )
        _temporary_table(
            TOPS_AGAIN,
            f"WITH per_person AS (SELECT * FROM {LOST_PEOPLE}), {_top_people_sql(KEPT_METRICS)} SELECT * FROM contributors",
        )
        # Joined, not a subquery per row: PostgreSQL scanned TOPS_AGAIN once per lost team (1.1 s at 85,000 people).
        # A team left with nobody is in no row of TOPS_AGAIN: its tops become empty.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(f'{top} = a.{top}' for top in tops)} "
                f"FROM (SELECT l.row_id{''.join(f', t.{top}' for top in tops)} FROM {TEAM_CHANGE} l "
                f"LEFT JOIN {TOPS_AGAIN} t ON t.window_id = l.window_id AND t.team_id = l.team_id "
                f"WHERE l.top_lost = 1) a WHERE {table}.id = a.row_id"
            )


def _people_kept(window_ids: Iterable[int]) -> int:
    return sum(StandingWindow.objects.filter(pk__in=list(window_ids)).values_list("people", flat=True))


def _changes_add(model, changes: str, window_ids: list[int], key: tuple[str, ...]) -> None:
    """Add a change table's rows to the rows of `model` they name (row_id), insert those that are new, and delete
    the rows left with no day of usage."""
    table = quoted_table(model)
    figures = KEPT_FIGURES
    with connection.cursor() as cursor:
        cursor.execute(  # by id: the change rows name theirs
            f"UPDATE {table} SET {', '.join(f'{name} = {_added(table, name)}' for name in figures)} "
            f"FROM {changes} c WHERE {table}.window_id IN ({ids_sql(window_ids)}) AND {table}.id = c.row_id"
        )
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(key)}, {', '.join(figures)}) "
            f"SELECT {', '.join(f'c.{k}' for k in key)}, {', '.join(_new(name) for name in figures)} "
            f"FROM {changes} c WHERE c.row_id IS NULL AND c.active_days > 0"
        )
        cursor.execute(
            f"DELETE FROM {table} WHERE active_days <= 0 AND id IN (SELECT row_id FROM {changes} WHERE active_days < 0)"
        )


def _added(table: str, name: str) -> str:
    """SQL: a figure of a kept row of `table` plus a change table's (`c`) difference; an unreported figure is
    unknown (NULL) once none of the row's days reports it."""
    if name in UNREPORTED_FIGURES:
        days = reported_days(name)
        return f"CASE WHEN {table}.{days} + c.{days} > 0 THEN COALESCE({table}.{name}, 0) + COALESCE(c.{name}, 0) END"
    return f"{table}.{name} + c.{name}"


def _new(name: str) -> str:
    """SQL: a figure of a new row from a change table's (`c`) difference."""
    return f"CASE WHEN c.{reported_days(name)} > 0 THEN c.{name} END" if name in UNREPORTED_FIGURES else f"c.{name}"


def _temporary_table(name: str, select: str, params: list | None = None) -> None:
    """(Re)create a temporary table of the refresh's transaction from a SELECT, with statistics (PostgreSQL):
    autovacuum never sees a temporary table, and the planner's guess of its size picked nested loops over a
    million rows."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TEMPORARY TABLE {name} AS {select}", params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {name}")


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)  # SQLite returns text


# --- Computing windows ----------------------------------------------------------------------------------------
# Windows are computed a level at a time (all days, then all weeks, …), each level in a few set-based
# statements over every window of the level and every provider scope: a rebuild is a few dozen statements,
# not a dozen per window.

LEVEL_BATCH = 40  # windows per statement: keeps each statement's sorts (ranks per window) in memory


def _standings_compute(
    windows: list[tuple[Window, str]],
    ancestors: dict[int, list[int]],
    phases: _Phases,
    runner: _InTransaction | _RebuildWorkers,
) -> None:
    """The windows' standings, a level at a time; a level's batches are the runner's jobs (a rebuild's run at
    once on several connections, _RebuildWorkers)."""
    ids = runner.run([partial(_windows_upsert, windows)])[0]
    closure = team_closure_sql(ancestors)
    levels: dict[int, list[tuple[Window, str]]] = {}
    for window, provider in windows:
        levels.setdefault(COMPUTE_ORDER.get(window.period, len(COMPUTE_ORDER)), []).append((window, provider))
    for _order, level in sorted(levels.items()):
        # In order of time, so that each batch holds every provider scope's windows of its weeks (or months…):
        # one provider's windows cost more than all providers' (its days are read from the rollups), and a batch
        # of them alone was the level's last to finish.
        level.sort(key=lambda pair: (pair[0].start, pair[0].end, pair[0].period, pair[1]))
        size = _batch_size(len(level), runner.count)
        batches = [
            [(ids[(w.period, w.start, w.end, provider)], w, provider) for w, provider in level[start : start + size]]
            for start in range(0, len(level), size)
        ]
        runner.run([partial(_batch_compute, batch, closure, phases) for batch in batches])


def _batch_size(windows: int, connections: int) -> int:
    """Windows per batch: at most LEVEL_BATCH, in as many batches as the connections take in full turns, all of
    about one size. A level's last turn then keeps every connection busy: 365 days in batches of 40 left one
    connection idle 21 s while the other wrote the last 40 (docs/PERFORMANCE.md)."""
    batches = max(1, -(-windows // LEVEL_BATCH))
    batches = -(-batches // connections) * connections
    return max(1, -(-windows // batches))


def _batch_compute(batch: list[tuple[int, Window, str]], closure: str, phases: _Phases) -> None:
    """One batch of a level's windows, (id, window, provider scope) each, written again whole."""
    batch_ids = [pk for pk, _window, _provider in batch]
    with phases.timed("old standings deleted"):
        _delete_rows(batch_ids)
    with phases.timed("team members"):
        _team_members_from_rollup([(pk, w.start, p) for pk, w, p in batch if w.period == "day"])
        _team_members_from_pieces([(pk, w, p) for pk, w, p in batch if w.period != "day"])
    with phases.timed("people"):
        _people_count(batch_ids)
    with phases.timed("orders"):
        _orders_write(batch_ids, KEPT_METRICS)
    with phases.timed("team totals"):
        _teams_total(batch_ids, closure, KEPT_METRICS)


def _windows_upsert(windows: list[tuple[Window, str]]) -> dict[tuple, int]:
    """The StandingWindow id of every window (created where new), all stamped with this computation's time."""
    keys = {(w.period, w.start, w.end, provider) for w, provider in windows}
    if not keys:
        return {}
    now = timezone.now()
    StandingWindow.objects.bulk_create(
        [StandingWindow(period=p, start=s, end=e, provider=provider, computed_at=now) for p, s, e, provider in keys],
        ignore_conflicts=True,  # the kept ones stay, with their ids
    )
    rows = StandingWindow.objects.filter(
        start__gte=min(k[1] for k in keys), end__lte=max(k[2] for k in keys)
    ).values_list("pk", "period", "start", "end", "provider")
    ids = {key: pk for pk, *rest in rows if (key := tuple(rest)) in keys}
    for start in range(0, len(ids), 1000):
        StandingWindow.objects.filter(pk__in=list(ids.values())[start : start + 1000]).update(computed_at=now)
    return ids


def ids_sql(ids: Iterable[int]) -> str:
    return ", ".join(str(int(pk)) for pk in ids)


def ids_values_sql(ids: Iterable[int]) -> str:
    """The ids as the rows of a VALUES list: "(1), (2)"."""
    return ", ".join(f"({int(pk)})" for pk in ids)


# Rollup rows that count for someone: a person's, or a team's shared identities (person empty, team set). Their
# TeamMemberStanding rows keep the person empty: they add to the team's totals, not to any person's.
COUNTED_ROLLUP = "(r.person_id IS NOT NULL OR r.team_id IS NOT NULL)"


def _team_members_from_rollup(days: list[tuple[int, date, str]]) -> None:
    """Day windows from the daily rollups: (window id, day, provider scope)."""
    if not days:
        return
    windows, params = _window_days_values(days)
    sums = figure_sums("r", named=False)
    with connection.cursor() as cursor, sorted_grouping():
        cursor.execute(
            f"""
            WITH day_windows(window_id, day, provider) AS ({windows})
            INSERT INTO {quoted_table(TeamMemberStanding)} (window_id, team_id, person_id, {KEPT_COLUMNS})
            SELECT w.window_id, r.team_id, r.person_id, {sums}, 1{reported_flags("r")}
            FROM {quoted_table(DailyRollup)} r
            JOIN day_windows w ON r.day = w.day AND (w.provider = '' OR r.provider = w.provider)
            WHERE {COUNTED_ROLLUP} AND r.day BETWEEN %s AND %s
            GROUP BY w.window_id, r.team_id, r.person_id
            """,
            [*params, min(d for _p, d, _v in days), max(d for _p, d, _v in days)],
        )


def _sorted_values(rows: Iterable[str]) -> str:
    """SQL of these VALUES rows (window id, then day or piece, …) sorted on their first two columns, in the SQL so
    that PostgreSQL knows it: the rows it joins to them then come a window's day (or piece) at a time, and grouping
    them sorts one window's rows in memory, not the whole batch's on disk (docs/PERFORMANCE.md)."""
    return f"SELECT * FROM (VALUES {', '.join(rows)}) AS v ORDER BY 1, 2"


def _window_days_values(days: list[tuple[int, date, str]]) -> tuple[str, list]:
    """The (window id, day, provider scope) rows as _sorted_values, and their parameters."""
    rows = (f"({int(pk)}, %s, %s)" for pk, _day, _scope in days)
    return _sorted_values(rows), [value for _pk, day, scope in days for value in (day, scope)]


def pieces_of(window: Window, provider: str, kept: dict[tuple, int], *, largest: str = "year"):
    """The kept windows (ids) and the days not kept (read from the rollups) whose union is the window."""
    ids, days = [], []
    for piece in cover(window.start, window.end, largest=largest):
        pk = kept.get((piece.period, piece.start, piece.end, provider))
        if pk is not None:
            ids.append(pk)
        elif piece.period == "day" and provider != ALL_PROVIDERS:
            days.append(piece.start)
    return ids, days


def kept_windows(first: date, last: date) -> dict[tuple, int]:
    """Kept calendar pieces between the dates: (period, start, end, provider) → id."""
    rows = StandingWindow.objects.filter(period__in=PIECE_SIZES, start__gte=first, end__lte=last)
    return {tuple(rest): pk for pk, *rest in rows.values_list("pk", "period", "start", "end", "provider")}


def _team_members_from_pieces(windows: list[tuple[int, Window, str]]) -> None:
    """Longer windows summed from the kept windows that cover them, and for one provider's days from the
    rollups: (window id, window, provider scope). Windows summed from kept windows alone, from rollup days alone,
    and from both are summed in a statement each: PostgreSQL knows no order in the rows of a union, and sorted a
    whole batch of weeks on disk to group them (10M rows, 1 GB at 85,000 people), where one kind's rows come a
    window at a time (docs/PERFORMANCE.md)."""
    if not windows:
        return
    kept = kept_windows(min(w.start for _pk, w, _p in windows), max(w.end for _pk, w, _p in windows))
    by_kind: dict[tuple[bool, bool], tuple[list, list]] = {}
    for pk, window, provider in windows:
        ids, rollup_days = pieces_of(window, provider, kept, largest=LARGEST_PIECE.get(window.period, "year"))
        pairs, days = by_kind.setdefault((bool(ids), bool(rollup_days)), ([], []))
        pairs += [(pk, piece) for piece in ids]
        days += [(pk, day, provider) for day in rollup_days]
    for pairs, days in by_kind.values():
        _team_members_sum(pairs, days)


def _team_members_sum(pairs: list[tuple[int, int]], days: list[tuple[int, date, str]]) -> None:
    """Member rows of windows summed from kept windows' rows, (window id, piece id), and from the rollups' days,
    (window id, day, provider scope)."""
    members, rollup = quoted_table(TeamMemberStanding), quoted_table(DailyRollup)
    parts, ctes, params = [], [], []
    if pairs:
        ctes.append(f"pieces(window_id, piece_id) AS ({_sorted_values(f'({int(a)}, {int(b)})' for a, b in pairs)})")
        parts.append(
            f"""SELECT p.window_id, t.team_id, t.person_id, {kept_columns("t")}
            FROM {members} t JOIN pieces p ON t.window_id = p.piece_id
            WHERE t.window_id IN ({ids_sql(b for _a, b in pairs)})"""
        )
    if days:
        rollup_days, rollup_days_params = _window_days_values(days)
        ctes.append(f"rollup_days(window_id, day, provider) AS ({rollup_days})")
        params += rollup_days_params
        parts.append(
            f"""SELECT d.window_id, r.team_id, r.person_id, {figure_sums("r")},
                   1 AS active_days{reported_flags("r")}
            FROM {rollup} r JOIN rollup_days d ON r.day = d.day AND r.provider = d.provider
            WHERE {COUNTED_ROLLUP}
            GROUP BY d.window_id, r.day, r.team_id, r.person_id"""
        )
    if not parts:
        return
    with connection.cursor() as cursor, sorted_grouping(whole_sorts=False):
        cursor.execute(
            f"""
            WITH {", ".join(ctes)}
            INSERT INTO {members} (window_id, team_id, person_id, {KEPT_COLUMNS})
            SELECT window_id, team_id, person_id, {SUM_FIGURES}, SUM(active_days){reported_days_sums()}
            FROM ({" UNION ALL ".join(parts)}) AS counted
            GROUP BY window_id, team_id, person_id
            """,
            params,
        )


def _people_count(window_ids: list[int]) -> None:
    """Each window's people (StandingWindow.people): the people with a team-member row in it."""
    window_table = quoted_table(StandingWindow)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {window_table} SET people = (
                SELECT COUNT(DISTINCT t.person_id) FROM {quoted_table(TeamMemberStanding)} t
                JOIN {quoted_table(Person)} p ON p.id = t.person_id
                WHERE t.window_id = {window_table}.id
            ) WHERE id IN ({ids_sql(window_ids)})
            """
        )


def _person_totals_sql(window_ids: Iterable[int], figures: Iterable[str]) -> str:
    """SQL of each person's totals of `figures` in the windows: their team-member rows summed (a person has one
    row, or one per team when they moved within the window). Rows of a team's shared identities have no person:
    left out. Columns: window_id, person_id, then the figures."""
    return f"""
        SELECT window_id, person_id, {figure_sums(figures=figures)}
        FROM {quoted_table(TeamMemberStanding)}
        WHERE window_id IN ({ids_sql(window_ids)}) AND person_id IS NOT NULL
        GROUP BY window_id, person_id"""


def _orders_write(window_ids: list[int], metrics: tuple[str, ...]) -> None:
    """Write each window's StandingOrder on each of `metrics` (KEPT_METRICS: counts) whole, from its people's totals.
    People with none of a metric (zero, or a figure their sources do not report: NULL) are not on its board. A
    window where nobody is gets an empty order: a kept window always has its orders."""
    StandingOrder.objects.filter(window_id__in=window_ids).delete()
    if not window_ids:
        return
    for metric in metrics:
        assert metric in COUNT_FIGURES, f"a kept order is packed as integers, and {metric} is not a count"
        rows = f"""
            FROM ({_person_totals_sql(window_ids, [metric])}) t JOIN {quoted_table(Person)} p ON p.id = t.person_id
            WHERE t.{metric} > 0
        """
        board_order = f"t.{metric} DESC, p.display_name, p.id"
        if connection.vendor == "postgresql":  # sorted and packed in the database: 1.8M rows stay there
            with connection.cursor() as cursor, hash_joins():
                cursor.execute(
                    f"""
                    INSERT INTO {quoted_table(StandingOrder)} (window_id, metric, board)
                    SELECT w.id, %s, COALESCE(o.board, ''::bytea)
                    FROM (VALUES {ids_values_sql(window_ids)}) AS w(id)
                    LEFT JOIN (
                        SELECT t.window_id,
                               string_agg(int8send(t.person_id) || int8send(t.{metric}), ''::bytea ORDER BY {board_order})
                               AS board
                        {rows} GROUP BY t.window_id
                    ) o ON o.window_id = w.id
                    """,
                    [metric],
                )
            continue
        boards: dict[int, tuple[array, array]] = {pk: (array("q"), array("q")) for pk in window_ids}
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT t.window_id, t.person_id, t.{metric} {rows} ORDER BY t.window_id, {board_order}")
            for window_id, person_id, total in cursor.fetchall():
                boards[window_id][0].append(person_id)
                boards[window_id][1].append(total)
        StandingOrder.objects.bulk_create(
            StandingOrder(window_id=pk, metric=metric, board=board_packed(*board)) for pk, board in boards.items()
        )


MERGE_MOST_SHARE = 10  # more than a tenth of a board moved: sorting its rows again costs less


def _orders_merge(metrics: tuple[str, ...], moved: dict[int, dict[int, _Moved]]) -> None:
    """Place the people who moved in each window (_people_moved) again on the window's kept boards: taken off,
    then put back by their new totals, instead of sorting every row of the window again (4–5 s for a small import
    at 85,000 people). A window without its boards, or of which more than a tenth moved, gets them written whole
    (_orders_write)."""
    boards = {
        (window_id, metric): board_pairs(board)
        for window_id, metric, board in StandingOrder.objects.filter(
            window_id__in=moved.keys(), metric__in=metrics
        ).values_list("window_id", "metric", "board")
    }
    whole, merges = [], []
    for window_id, window_moved in moved.items():
        window_boards = [boards.get((window_id, metric)) for metric in metrics]
        if None in window_boards or len(window_moved) * MERGE_MOST_SHARE > min(len(p) for p, _t in window_boards):
            whole.append(window_id)
            continue
        for index, (metric, (board_people, totals)) in enumerate(zip(metrics, window_boards, strict=True)):
            totals_now = {person: m.now[index] for person, m in window_moved.items()}
            totals_before = {person: m.before[index] for person, m in window_moved.items()}
            merges.append(((window_id, metric), _BoardMerge(board_people, totals, totals_now, totals_before)))
    _orders_write(whole, metrics)
    tie_order = _names_order({person for _key, merge in merges for person in merge.tied()})
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {quoted_table(StandingOrder)} SET board = %s WHERE window_id = %s AND metric = %s",
            [(board_packed(*merge.merged(tie_order)), window_id, metric) for (window_id, metric), merge in merges],
        )


class _Moved(NamedTuple):
    """A person's place on a window's boards, before and after a refresh's changes."""

    now: tuple  # their figures on the kept metrics now; None: no row left
    before: tuple  # their figures on the window's boards, from before the changes; each None: unknown
    days_now: int  # their active days in the window now; 0: not in it
    days_before: int


def _people_moved(window_ids: list[int], metrics: tuple[str, ...], people: set[int]) -> dict[int, dict[int, _Moved]]:
    """window id → {person id → _Moved} for the people whose member rows MEMBER_CHANGE changed (`changed`: its
    changes summed per person, not a team's shared usage), now that it is added to those rows, and the marked
    `people` (whose names may have changed) with a row in the window. Only people who exist: the boards and the
    people counts join Person."""
    members = quoted_table(TeamMemberStanding)
    marked = (
        f"""UNION SELECT t.window_id, t.person_id FROM {members} t
            WHERE t.window_id IN ({ids_sql(window_ids)}) AND t.person_id IN ({ids_sql(people)})"""
        if people
        else ""
    )
    moved: dict[int, dict[int, _Moved]] = {}
    with connection.cursor() as cursor:
        cursor.execute(  # each person's rows looked up in team_member_standing_person
            f"""
            WITH changed AS (
                SELECT window_id, person_id, {figure_sums(figures=metrics)}, SUM(active_days) AS active_days
                FROM {MEMBER_CHANGE} WHERE person_id IS NOT NULL
                GROUP BY window_id, person_id
            ),
            m AS (SELECT window_id, person_id FROM changed {marked}),
            now_ AS (
                SELECT m.window_id, m.person_id, SUM(t.active_days) AS active_days,
                       {figure_sums("t", figures=metrics)}
                FROM m JOIN {quoted_table(Person)} p ON p.id = m.person_id
                LEFT JOIN {members} t ON t.window_id = m.window_id AND t.person_id = m.person_id
                GROUP BY m.window_id, m.person_id
            )
            SELECT n.window_id, n.person_id, n.active_days, c.active_days,
                   {", ".join(f"n.{metric}, c.{metric}" for metric in metrics)}
            FROM now_ n LEFT JOIN changed c ON c.window_id = n.window_id AND c.person_id = n.person_id
            """
        )
        for window_id, person_id, days_now, days_changed, *figures in cursor.fetchall():
            totals, changes = figures[0::2], figures[1::2]
            if days_now is None:  # no row now: the rows deleted had exactly what the change took away
                now, totals = (None,) * len(metrics), (0,) * len(metrics)
            else:
                now = tuple(totals)
            before = tuple(
                None if total is None else total - (change or 0)  # None: an unreported figure, unknown
                for total, change in zip(totals, changes, strict=True)
            )
            days_now = days_now or 0
            moved.setdefault(window_id, {})[person_id] = _Moved(now, before, days_now, days_now - (days_changed or 0))
    return moved


def _names_order(people: set[int]) -> dict[int, int]:
    """Each person's position when sorted by display name, then id, as the database sorts them (its collation,
    as _orders_write's sort): how a board orders a tie."""
    if not people:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {quoted_table(Person)} WHERE id IN ({ids_sql(people)}) ORDER BY display_name, id"
        )
        return {person: position for position, (person,) in enumerate(cursor.fetchall())}


class _BoardMerge:
    """A board with some people placed again: those of `totals_now` are taken off, and those with some of the
    metric now are put back among the rest by total; within a tie, by name then id (_names_order). Each is found
    on the board by their total before (`totals_before`, None: unknown)."""

    def __init__(
        self, people: array, totals: array, totals_now: dict[int, int | None], totals_before: dict[int, int | None]
    ):
        taken = _board_places(people, totals, totals_before)
        self.people, self.totals = array("q"), array("q")
        start = 0
        for place in [*taken, len(people)]:
            self.people += people[start:place]
            self.totals += totals[start:place]
            start = place + 1
        self.returning: dict[int, list[int]] = {}  # total → the people put back with it
        for person, total in totals_now.items():
            if total is not None and total > 0:
                self.returning.setdefault(total, []).append(person)
        # Where each returning total goes among the rest: [first, last) of the rest's people with that total.
        self.spans = {total: _tie_span(self.totals, total) for total in self.returning}

    def tied(self) -> Iterator[int]:
        """The people whose order needs their names: those sharing a total with someone put back."""
        for total, returning in self.returning.items():
            first, last = self.spans[total]
            if len(returning) + last - first > 1:
                yield from returning
                yield from self.people[first:last]

    def merged(self, tie_order: dict[int, int]) -> tuple[array, array]:
        people, totals = array("q"), array("q")
        start = 0
        for total in sorted(self.returning, reverse=True):
            first, last = self.spans[total]
            people += self.people[start:first]
            totals += self.totals[start:first]
            tie = [*self.people[first:last], *self.returning[total]]
            tie.sort(key=lambda person: (tie_order.get(person, len(tie_order)), person))
            people += array("q", tie)
            totals += array("q", [total] * len(tie))
            start = last
        people += self.people[start:]
        totals += self.totals[start:]
        return people, totals


def _board_places(people: array, totals: array, totals_before: dict[int, int | None]) -> list[int]:
    """The places on a board (people, totals) of the people of `totals_before`, those with some of the metric
    before: each found among the people tied at their total (a bisection), not by reading every place (5 ms
    a board of 85,000 people in Python). A person with none was on no board. Read whole if a total is unknown
    or a person is not where their total puts them, which the boards kept with the rows rule out."""
    places = []
    for person, total in totals_before.items():
        if total is None:
            return _board_places_read(people, totals_before)
        if total <= 0:
            continue
        first, last = _tie_span(totals, total)
        try:
            places.append(first + people[first:last].index(person))
        except ValueError:
            logger.warning("standings: person %s is not at total %s on a kept board; reading it whole", person, total)
            return _board_places_read(people, totals_before)
    return sorted(places)


def _board_places_read(people: array, wanted: Collection[int]) -> list[int]:
    return [place for place, person in enumerate(people) if person in wanted]


def _tie_span(totals: array, total: int) -> tuple[int, int]:
    """[first, last) of the places with `total` on a board's totals (largest first)."""
    first = bisect_left(totals, -total, key=operator.neg)
    return first, bisect_right(totals, -total, lo=first, key=operator.neg)


def board_packed(people: array, totals: array) -> bytes:
    """A StandingOrder's board from its people and their totals in board order: (person id, total) pairs of
    8-byte big-endian integers, as PostgreSQL's int8send writes them."""
    numbers = array("q", bytes(16 * len(people)))
    numbers[0::2] = people
    numbers[1::2] = totals
    if sys.byteorder == "little":
        numbers.byteswap()
    return numbers.tobytes()


def board_pairs(board: bytes | memoryview) -> tuple[array, array]:
    """A StandingOrder's board read back: (person ids, totals), in board order."""
    numbers = array("q")
    numbers.frombytes(board)
    if sys.byteorder == "little":
        numbers.byteswap()
    return numbers[0::2], numbers[1::2]


def _people_count_change(moved: dict[int, dict[int, _Moved]]) -> None:
    """StandingWindow.people after the member changes were added: plus the people who have a row now and had none,
    less those who had one and have none now (counting each window's people again took 0.5 s for a small import
    at 85,000 people)."""
    counted = []
    for window_id, window_moved in moved.items():
        change = sum((m.days_now > 0) - (m.days_before > 0) for m in window_moved.values())
        if change:
            counted.append((change, window_id))
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {quoted_table(StandingWindow)} SET people = people + %s WHERE id = %s", counted)


def team_ancestors(parents: dict[int, int | None] | None = None) -> dict[int, list[int]]:
    """Each team with itself and every team above it, from each team's parent (read here when not given)."""
    if parents is None:
        parents = dict(Team.objects.values_list("id", "parent_id"))
    ancestors = {}
    for team_id in parents:
        chain, current = [], team_id
        while current is not None and current not in chain:
            chain.append(current)
            current = parents.get(current)
        ancestors[team_id] = chain
    return ancestors


def _subtree_people_sql(rows: str, closure: str, sums: str, *, joined: str = "", where: str = "") -> str:
    """SQL: each person's figures (`sums` over member rows `t` of the table or subquery `rows`) in every team
    subtree holding their rows, through a closure `c` (team_id, ancestor_id): window_id, team_id (the subtree's
    top team), person_id and the sums. `joined` and `where` narrow the rows."""
    return f"""SELECT t.window_id, c.ancestor_id AS team_id, t.person_id, {sums}
        FROM {rows} t JOIN {closure} c ON c.team_id = t.team_id {joined}
        {where}
        GROUP BY t.window_id, c.ancestor_id, t.person_id"""


def team_closure_sql(ancestors: dict[int, list[int]]) -> str:
    """A CTE `closure(team_id, ancestor_id)`: each team with itself and every team above it."""
    pairs = [(team, ancestor) for team, chain in ancestors.items() for ancestor in chain]
    values = ", ".join(f"({int(team)}, {int(ancestor)})" for team, ancestor in pairs) or "(0, 0)"
    return f"closure(team_id, ancestor_id) AS (VALUES {values})"


def _top_people_sql(metrics: tuple[str, ...]) -> str:
    """CTEs `best` and `contributors` over a CTE `per_person(window_id, team_id, person_id, <metric>…)` (person
    empty: a team's shared usage): each team's largest contributor on each metric as `top_<metric>` (ties: the
    lowest person id; nobody with any of it: the lowest person id). Two aggregations, each team's largest
    figure then who has it, rather than a sort per metric."""
    best = ", ".join(f"MAX({m}) AS best_{m}" for m in metrics)
    tops = ", ".join(
        f"MIN(CASE WHEN b.best_{m} IS NULL OR c.{m} = b.best_{m} THEN c.person_id END) AS top_{m}" for m in metrics
    )
    return f"""
        best AS (
            SELECT window_id, team_id, {best} FROM per_person WHERE person_id IS NOT NULL GROUP BY window_id, team_id
        ),
        contributors AS (
            SELECT c.window_id, c.team_id, {tops}
            FROM per_person c JOIN best b ON b.window_id = c.window_id AND b.team_id = c.team_id
            WHERE c.person_id IS NOT NULL
            GROUP BY c.window_id, c.team_id
        )"""


def _teams_total(window_ids: list[int], closure: str, metrics: tuple[str, ...]) -> None:
    """Team standings: each subtree's usage (the days each person was in it, and its shared identities'), active
    members, and the largest contributor on each of `metrics` (ties: the lowest person id; nobody with any of it:
    the lowest person id). Shared usage (person empty) is neither a member nor a contributor, and adds no active
    days.

    Summed per team, then up the tree. Only a person with rows in two teams of the window (who moved during it)
    needs a sum per subtree: anyone else's one row is their figure in every subtree above it. Summing everyone
    per person and subtree handled three times the rows and was half of the rebuild's day windows."""
    members = quoted_table(TeamMemberStanding)
    batch = f"t.window_id IN ({ids_sql(window_ids)}) AND t.team_id IS NOT NULL"

    def each(template: str) -> str:  # the template's SQL once per metric
        return ", ".join(template.format(m=m) for m in metrics)

    with connection.cursor() as cursor, hash_joins():  # whatever the statistics say of the windows' rows
        cursor.execute(
            f"""
            WITH {closure},
            batch_rows AS (  -- read once, not by index in each step: 40 weeks' totals in a refresh 28 s, now 11
                SELECT t.window_id, t.team_id, t.person_id, {kept_columns("t")} FROM {members} t WHERE {batch}
            ),
            movers AS (
                SELECT t.window_id, t.person_id FROM batch_rows t
                WHERE t.person_id IS NOT NULL
                GROUP BY t.window_id, t.person_id HAVING COUNT(*) > 1
            ),
            own AS (  -- each team's own rows
                SELECT t.window_id, t.team_id, {figure_sums("t")},
                       SUM(CASE WHEN t.person_id IS NOT NULL THEN t.active_days ELSE 0 END) AS active_days,
                       COUNT(t.person_id) AS people{reported_days_sums("t")}
                FROM batch_rows t
                GROUP BY t.window_id, t.team_id
            ),
            settled AS (  -- the rows of people with one team in the window
                SELECT t.window_id, t.team_id, t.person_id, {each("t.{m}")}
                FROM batch_rows t LEFT JOIN movers v ON v.window_id = t.window_id AND v.person_id = t.person_id
                WHERE t.person_id IS NOT NULL AND v.person_id IS NULL
            ),
            settled_best AS (
                SELECT window_id, team_id, {each("MAX({m}) AS best_{m}")} FROM settled GROUP BY window_id, team_id
            ),
            settled_top AS (  -- each team's largest contributor among them, with their figure
                SELECT s.window_id, s.team_id,
                       {each("MAX(b.best_{m}) AS value_{m}, MIN(CASE WHEN b.best_{m} IS NULL OR s.{m} = b.best_{m} THEN s.person_id END) AS person_{m}")}
                FROM settled s JOIN settled_best b ON b.window_id = s.window_id AND b.team_id = s.team_id
                GROUP BY s.window_id, s.team_id
            ),
            moved AS (  -- each mover's figures in each subtree holding their rows
                SELECT t.window_id, c.ancestor_id AS team_id, t.person_id, COUNT(*) AS team_rows,
                       {figure_sums("t", figures=metrics)}
                FROM batch_rows t JOIN movers v ON v.window_id = t.window_id AND v.person_id = t.person_id
                JOIN closure c ON c.team_id = t.team_id
                GROUP BY t.window_id, c.ancestor_id, t.person_id
            ),
            candidates AS (  -- for each subtree: its teams' settled tops, and its movers
                SELECT o.window_id, c.ancestor_id AS team_id, {each("o.value_{m}, o.person_{m}")}
                FROM settled_top o JOIN closure c ON c.team_id = o.team_id
                UNION ALL
                SELECT window_id, team_id, {each("{m} AS value_{m}, person_id AS person_{m}")} FROM moved
            ),
            best AS (
                SELECT window_id, team_id, {each("MAX(value_{m}) AS best_{m}")} FROM candidates GROUP BY window_id, team_id
            ),
            contributors AS (
                SELECT c.window_id, c.team_id,
                       {each("MIN(CASE WHEN b.best_{m} IS NULL OR c.value_{m} = b.best_{m} THEN c.person_{m} END) AS top_{m}")}
                FROM candidates c JOIN best b ON b.window_id = c.window_id AND b.team_id = c.team_id
                GROUP BY c.window_id, c.team_id
            ),
            subtrees AS (
                SELECT o.window_id, c.ancestor_id AS team_id, {figure_sums("o")},
                       SUM(o.active_days) AS active_days, SUM(o.people) AS people{reported_days_sums("o")}
                FROM own o JOIN closure c ON c.team_id = o.team_id
                GROUP BY o.window_id, c.ancestor_id
            ),
            counted_twice AS (  -- a mover counts once in a subtree holding several of their rows
                SELECT window_id, team_id, SUM(team_rows - 1) AS extra FROM moved GROUP BY window_id, team_id
            )
            INSERT INTO {quoted_table(TeamStanding)} (window_id, team_id, {KEPT_COLUMNS}, active_members,
                                                {each("top_{m}")})
            SELECT s.window_id, s.team_id, {kept_columns("s")},
                   s.people - COALESCE(x.extra, 0), {each("c.top_{m}")}
            FROM subtrees s
            LEFT JOIN counted_twice x ON x.window_id = s.window_id AND x.team_id = s.team_id
            LEFT JOIN contributors c ON c.window_id = s.window_id AND c.team_id = s.team_id
            """
        )


def team_top_people(window_id: int, metric: str, ancestors: dict[int, list[int]]) -> dict[int, int]:
    """Each team subtree's largest contributor on `metric` in a kept window, as _teams_total keeps them for
    KEPT_METRICS: team id → person id. Not for an efficiency ratio (its top would be whoever has the fewest
    tokens at 100 %)."""
    if metric not in METRICS or metric in EFFICIENCY_METRICS:  # it is written into the SQL
        raise ValueError(f"no team top person on {metric!r}")
    people = _subtree_people_sql(
        quoted_table(TeamMemberStanding), "closure", f"SUM(t.{metric}) AS {metric}", where="WHERE t.window_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH {team_closure_sql(ancestors)},
            per_person AS ({people}),
            {_top_people_sql((metric,))}
            SELECT team_id, top_{metric} FROM contributors
            """,
            [window_id],
        )
        return dict(cursor.fetchall())
