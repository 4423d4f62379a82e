"""Read side: rankings of people and teams for a window, shared by the pages, the CSV exports and the API.

Everything is read from the read models that usage.services.standings keeps (docs/architecture.md):

- a stored window (every calendar day, week, month, quarter and year with usage, all time and the rolling
  7/30/90 days up to today), all providers or one provider: the board is a range of its StandingOrder, a page's
  figures are its people's team-member rows, the viewer's own rank and the previous ranks are lookups by person;
- any other window (custom ranges, rolling windows anchored in the past) is summed from the stored windows
  that exactly cover it (usage.periods.cover), and a team filter reads the team-member rows of those windows;
- a model filter sums the daily rollups of the window.

Team figures use the membership that covered each usage day, so a mid-window team move splits a person's usage
between the two teams. Only usage of identities assigned to a person is ranked; unassigned usage is counted
separately for admins.
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from copy import copy
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from usage.access import (
    Viewer,
    can_rank_by_cost,
    can_see_person_detail,
    can_see_team_detail,
    can_see_team_figures,
    people_with_detail,
    person_display_name,
    team_subtree_ids,
)
from usage.figures import (
    COST_METRICS,
    COUNT_FIGURES,
    EFFICIENCY_METRICS,
    KEPT_METRICS,
    MONEY_FIGURES,
    SHARE_METRICS,
    SUMMED_FIGURES,
    UNREPORTED_FIGURES,
    metric_figures,
    metric_order_sql,
    metric_sort_key,
    metric_value,
)
from usage.models import (
    DailyRollup,
    HoldStatus,
    Identity,
    IdentityAttribution,
    ImportBatch,
    Membership,
    Person,
    Provider,
    StandingOrder,
    StandingsDirtyDay,
    StandingsState,
    StandingWindow,
    Team,
    TeamMemberStanding,
    UsageHold,
    UsageRecord,
)
from usage.models import (
    TeamStanding as TeamStandingRow,
)
from usage.services.catalog import model_spelled_as
from usage.services.imports import data_as_of, latest_data
from usage.services.standings import (
    ALL_PROVIDERS,
    COST_REPORT_KIND,
    board_pairs,
    figure_sums,
    ids_sql,
    kept_windows,
    pieces_of,
    quoted_table,
    reported_by_preferred_source_sql,
    standings_generation,
    team_ancestors,
    team_closure_sql,
    team_top_people,
)

from .windows import RankingQuery, Window, comparison_window


@dataclass
class Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0
    requests: int | None = None  # None: no source of it reports requests (usage.figures.UNREPORTED_FIGURES)
    cost_usd: Decimal = Decimal(0)
    billed_cost_usd: Decimal = Decimal(0)
    active_days: int = 0

    def metric(self, name: str):
        return metric_value(name, self)

    def add(self, other: Totals) -> None:
        for name in TOTALS_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs if mine is None else mine if theirs is None else mine + theirs)

    @classmethod
    def of(cls, row) -> Totals:
        """From a mapping or an object that has every figure (a rollup or standing row)."""
        get = row.get if isinstance(row, dict) else lambda name: getattr(row, name, None)
        values = {name: get(name) for name in TOTALS_FIELDS}
        return cls(**{name: value for name, value in values.items() if value is not None})


TOTALS_FIELDS = tuple(f.name for f in fields(Totals))


def efficiency_figures(totals: Totals, *, cost: bool) -> dict:
    """The efficiency metrics of some totals, as the CSV exports and the API give them: ratios to 6 places
    (None when undefined), cost per million tokens only where the viewer may see cost."""
    figures = {}
    for metric in EFFICIENCY_METRICS:
        if metric in COST_METRICS and not cost:
            continue
        value = totals.metric(metric)
        if value is not None and metric in SHARE_METRICS:
            value = round(float(value), 6)
        elif value is not None and metric == "cost_per_mtok":
            value = Decimal(value).quantize(Decimal("0.000001"))
        figures[metric] = value
    return figures


def _sums(prefix: str = "") -> dict:
    sums = {
        name: Sum(f"{prefix}{name}") if name in UNREPORTED_FIGURES else Coalesce(Sum(f"{prefix}{name}"), 0)
        for name in COUNT_FIGURES
    }
    sums.update({name: Coalesce(Sum(f"{prefix}{name}"), Decimal(0)) for name in SUMMED_FIGURES[len(COUNT_FIGURES) :]})
    return sums


def competition_ranks(values: list) -> list[int]:
    """Ranks for values sorted descending; ties share a rank ("1, 1, 3")."""
    ranks, previous = [], object()
    for position, value in enumerate(values, start=1):
        ranks.append(ranks[-1] if value == previous else position)
        previous = value
    return ranks


def _ranked_ids(totals: dict[int, Totals], metric: str, tie_names: dict[int, str]) -> list[tuple[int, int]]:
    ordered = sorted(
        totals, key=lambda pid: (metric_sort_key(metric, totals[pid].metric(metric)), tie_names.get(pid, ""), pid)
    )
    return list(zip(ordered, competition_ranks([totals[pid].metric(metric) for pid in ordered]), strict=True))


# --- Where a window's figures are kept --------------------------------------------------------------------------


def _keeps(metric: str | None) -> bool:
    """Whether a kept window's order on `metric` is kept (KEPT_METRICS); without a metric, its figures."""
    return not metric or metric in KEPT_METRICS


def stored_window(window: Window, provider: str = "", metric: str | None = None) -> StandingWindow | None:
    """The stored standings of exactly this window, if kept (with its order on `metric`, when given)."""
    if not _keeps(metric):
        return None
    provider = provider or ALL_PROVIDERS
    # Read once per refresh in this process: a ranking looks up its window and its comparison window two or three
    # times each, a database round trip every time.
    return per_refresh(
        "window",
        (window.period, window.start, window.end, provider),
        lambda: StandingWindow.objects.filter(
            period=window.period, start=window.start, end=window.end, provider=provider
        ).first(),
        shared=False,
    )


def stored_windows(windows: list[Window], provider: str, metric: str) -> dict[Window, int]:
    """The ids of the kept ones among the windows, in one query."""
    if not _keeps(metric):
        return {}
    wanted = {(w.period, w.start, w.end): w for w in windows}
    if not wanted:
        return {}
    rows = StandingWindow.objects.filter(
        provider=provider or ALL_PROVIDERS,
        period__in={period for period, _s, _e in wanted},
        start__gte=min(w.start for w in wanted.values()),
        end__lte=max(w.end for w in wanted.values()),
    ).values_list("pk", "period", "start", "end")
    return {wanted[key]: pk for pk, *rest in rows if (key := tuple(rest)) in wanted}


def rollups_in_window(
    window: Window, *, provider: str = "", model: str = "", model_family: str = "", team_id: int | None = None
) -> QuerySet:
    """Daily rollup rows of the window, filtered (models by canonical name and family, usage.models.CatalogModel);
    with a team, only days the person was in its subtree."""
    rows = DailyRollup.objects.filter(day__gte=window.start, day__lte=window.end)
    if provider:
        rows = rows.filter(provider=provider)
    if model:
        rows = rows.filter(model=model)
    if model_family:
        rows = rows.filter(model_family=model_family)
    if team_id is not None:
        rows = rows.filter(team_id__in=team_subtree_ids([team_id]))
    return rows


def usage_records_in_window(
    window: Window, *, provider: str = "", model: str = "", model_family: str = "", team_id: int | None = None
) -> QuerySet:
    """The raw usage records the rollups of the window sum (cost reports, held days and records a preferred
    source also reports excluded), for the /usage/ list; a model or family matches every spelling the catalog
    maps to it; with a team, only days the person was in its subtree."""
    records = UsageRecord.objects.filter(day__gte=window.start, day__lte=window.end).exclude(
        usage_kind=COST_REPORT_KIND
    )
    # Held and confirmed days are in no ranking (usage.services.anomalies), so not in this list either.
    held = UsageHold.objects.filter(person_id=OuterRef("identity__person_id"), day=OuterRef("day")).exclude(
        status=HoldStatus.CLEARED
    )
    records = records.exclude(Exists(held))
    # One count per use (usage.services.precedence): what a preferred source also reports is in no ranking.
    outranked = RawSQL(
        f"SELECT u.id FROM {quoted_table(UsageRecord)} u JOIN {quoted_table(Identity)} i ON i.id = u.identity_id "
        f"JOIN {quoted_table(ImportBatch)} b ON b.id = u.import_batch_id "
        f"WHERE u.day BETWEEN %s AND %s AND {reported_by_preferred_source_sql()}",
        [window.start, window.end],
    )
    records = records.exclude(pk__in=outranked)
    if provider:
        records = records.filter(provider=provider)
    if model or model_family:
        records = records.filter(model_spelled_as(model=model, family=model_family))
    if team_id is not None:
        subtree = team_subtree_ids([team_id])
        in_team_that_day = Membership.objects.filter(
            Q(end__isnull=True) | Q(end__gte=OuterRef("day")),
            person_id=OuterRef("identity__person_id"),
            team_id__in=subtree,
            start__lte=OuterRef("day"),
        )
        # As the team's totals count: its people's personal identities, and its shared identities.
        records = records.filter(
            Q(Exists(in_team_that_day), identity__attribution=IdentityAttribution.PERSONAL)
            | Q(identity__attribution=IdentityAttribution.SHARED, identity__shared_team_id__in=subtree)
        )
    return records


def person_totals(
    window: Window,
    *,
    provider: str = "",
    model: str = "",
    model_family: str = "",
    team_id: int | None = None,
    people: Collection[int] | None = None,
) -> dict[int, Totals]:
    """Each person's totals in the window (only `people`'s, when given), filtered (the days in a team's subtree
    only, with a team). A team's shared identities count for no person: they are not in it."""
    rows = _totals_rows(window, provider, model, team_id, model_family=model_family, people=people)
    return {person_id: _sql_totals(figures) for person_id, *figures in rows}


# --- People --------------------------------------------------------------------------------------------------


@dataclass
class PersonStanding:
    rank: int
    previous_rank: int | None
    person_id: int
    display_name: str
    email: str | None
    team_id: int | None
    team_name: str
    totals: Totals
    detail: bool
    share_of_leader: float = 0.0
    percentile_tier: str = ""
    is_viewer: bool = False

    @property
    def rank_change(self) -> int | None:
        return None if self.previous_rank is None else self.previous_rank - self.rank


def current_teams(person_ids) -> dict[int, tuple[int, str]]:
    return {
        m["person_id"]: (m["team_id"], m["team__name"])
        for m in Membership.objects.filter(person_id__in=person_ids, end__isnull=True).values(
            "person_id", "team_id", "team__name"
        )
    }


def _tier(rank: int, count: int) -> str:
    if count >= 100 and rank <= max(1, count // 100):
        return "top 1%"
    if count >= 10 and rank <= max(1, count // 10):
        return "top 10%"
    if count >= 4 and rank <= max(1, count // 4):
        return "top 25%"
    return ""


def _sql_totals(row) -> Totals:
    """Totals from the figures of a raw SQL row (SUMMED_FIGURES, then active_days), whatever types the
    database summed them into: PostgreSQL sums bigints as numeric, SQLite sums decimals as floats."""
    figures = dict(zip((*SUMMED_FIGURES, "active_days"), row, strict=True))
    for name in (*COUNT_FIGURES, "active_days"):
        unknown = figures[name] is None and name in UNREPORTED_FIGURES
        figures[name] = None if unknown else int(figures[name] or 0)
    for name in MONEY_FIGURES:
        value = figures[name] or 0
        figures[name] = value if isinstance(value, Decimal) else Decimal(str(value)).quantize(Decimal("0.000001"))
    return Totals(**figures)


@dataclass
class _Ranked:
    """One ranked person before the viewer's rules are applied; a ranking reads the figures of the people it
    shows only (PeopleRanking._with_totals)."""

    person_id: int
    rank: int
    totals: Totals | None


# Rollup rows that count toward rankings: a person's, or a team's shared identities (team set, person empty).
COUNTED_ROWS = "(person_id IS NOT NULL OR team_id IS NOT NULL)"
ROW_FIGURES = (*SUMMED_FIGURES, "active_days")  # the figures of a totals row, in order (_sql_totals)


def _summed(figures: tuple[str, ...]) -> str:
    """SUM of each figure, named after it; counts cast back to BIGINT (usage.services.standings.figure_sums)."""
    return ", ".join(f"SUM({n}) AS {n}" if n in MONEY_FIGURES else f"CAST(SUM({n}) AS BIGINT) AS {n}" for n in figures)


def _totals_sql(
    window: Window,
    provider: str,
    model: str,
    team_id: int | None,
    group_by: tuple[str, ...] = ("person_id",),
    *,
    model_family: str = "",
    figures: Collection[str] = ROW_FIGURES,
    people: Collection[int] | None = None,
) -> tuple[str, list]:
    """SQL of the totals (group_by…, then `figures` in ROW_FIGURES order) per person — or per (team, person) —
    in a window: its kept standings, else the kept windows that cover it plus one provider's days from the
    rollups (one provider's days are not kept); with a model or family filter, the rollups of the window. With
    a team, only the days each person was in its subtree; with `people`, only theirs (a page's figures are read
    after the ranking, which sums only the figures its metric needs). Rows of a team's shared identities have
    no person: totals per person leave them out, team totals keep them. The one way the read side sums a
    window."""
    figures = tuple(n for n in ROW_FIGURES if n in figures)
    summed = tuple(n for n in figures if n != "active_days")
    group = ", ".join(group_by)
    conditions = ""
    if team_id is not None:
        conditions += f" AND team_id IN ({ids_sql(team_subtree_ids([team_id])) or '0'})"
    if people is not None:
        conditions += f" AND person_id IN ({ids_sql(people) or '0'})"
    elif group_by == ("person_id",):
        conditions += " AND person_id IS NOT NULL"  # a team's shared identities: no person's
    rollup = quoted_table(DailyRollup)
    if model or model_family:
        wanted = [("model", model), ("model_family", model_family), ("provider", provider)]
        columns = [_summed(summed)] if summed else []
        if "active_days" in figures:
            columns.append("COUNT(DISTINCT day) AS active_days")
        return (
            f"SELECT {group}, {', '.join(columns)} FROM {rollup} "
            f"WHERE day BETWEEN %s AND %s{''.join(f' AND {column} = %s' for column, value in wanted if value)} "
            f"AND {COUNTED_ROWS}{conditions} GROUP BY {group}",
            [window.start, window.end, *(value for _column, value in wanted if value)],
        )
    stored = stored_window(window, provider)
    if stored is not None:
        ids, days = [stored.pk], []
    else:
        ids, days = pieces_of(window, provider or ALL_PROVIDERS, kept_windows(window.start, window.end))
    members = quoted_table(TeamMemberStanding)  # a person's row per team (one, unless they moved in the window)
    parts = [
        f"SELECT {group}, {', '.join(figures)} FROM {members} WHERE window_id IN ({ids_sql(ids) or '0'}){conditions}"
    ]
    params: list = []
    if days:
        day_figures = [_summed(summed)] if summed else []
        if "active_days" in figures:
            day_figures.append("1 AS active_days")
        parts.append(
            f"SELECT {group}, {', '.join(day_figures)} FROM {rollup} "
            f"WHERE day IN ({', '.join(['%s'] * len(days))}) AND provider = %s AND {COUNTED_ROWS}{conditions} "
            f"GROUP BY day, {group}"
        )
        params += [*days, provider]
    return (
        f"SELECT {group}, {_summed(figures)} FROM ({' UNION ALL '.join(parts)}) AS counted GROUP BY {group}",
        params,
    )


def _totals_rows(
    window,
    provider,
    model,
    team_id,
    group_by: tuple[str, ...] = ("person_id",),
    *,
    model_family: str = "",
    people: Collection[int] | None = None,
) -> list[tuple]:
    sql, params = _totals_sql(window, provider, model, team_id, group_by, model_family=model_family, people=people)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class RankedOrder(Sequence):
    """A ranking's people in board order with their ranks (0: listed apart, not ranked), kept as two arrays of
    integers; the rows asked for are made into _Ranked. At 85,000 people making every row costs more than the
    rest of a request. Shared by the requests of a process until the next refresh (ranked_order, stored_order),
    with an index of each person's place built by the first that looks one up."""

    def __init__(self, ids: array, ranks: array):
        self.ids, self.ranks = ids, ranks
        self._places: array | dict | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [_Ranked(pid, rank, None) for pid, rank in zip(self.ids[index], self.ranks[index], strict=True)]
        return _Ranked(self.ids[index], self.ranks[index], None)

    def _place(self, person_id: int) -> int:
        """The person's place (1-based), 0 if not in the order. Scanning the order for each person on a page
        cost a request 17 ms at 85,000 people (docs/PERFORMANCE.md)."""
        places = self._places
        if places is None:
            top = max(self.ids, default=0)
            if top <= 4 * len(self.ids) + 1024:  # ids mostly dense: 4 bytes an id, looked up by position
                places = array("i", bytes(4 * (top + 1)))
                for place, pid in enumerate(self.ids, start=1):
                    places[pid] = place
            else:
                places = {pid: place for place, pid in enumerate(self.ids, start=1)}
            self._places = places
        if isinstance(places, dict):
            return places.get(person_id, 0)
        return places[person_id] if 0 <= person_id < len(places) else 0

    def find(self, person_id: int) -> _Ranked | None:
        place = self._place(person_id)
        return self[place - 1] if place else None

    def ranks_of(self, person_ids: Collection[int]) -> dict[int, int]:
        """The ranks of those of these people who are in the order."""
        return {pid: self.ranks[place - 1] for pid in person_ids if (place := self._place(pid))}

    def split(self) -> tuple[RankedOrder, RankedOrder]:
        """(the ranked, the people listed apart): the latter come last."""
        if not self.ranks or self.ranks[-1] != 0:
            return self, RankedOrder(array("q"), array("q"))
        ranked = len(self.ranks) - self.ranks.count(0)
        return (
            RankedOrder(self.ids[:ranked], self.ranks[:ranked]),
            RankedOrder(self.ids[ranked:], self.ranks[ranked:]),
        )

    def ranks_by_person(self) -> dict[int, int]:
        return {pid: rank for pid, rank in zip(self.ids, self.ranks, strict=True) if rank}


def ranked_order(window, provider, model, team_id, metric: str, *, model_family: str = "") -> RankedOrder:
    """Everyone with the metric in the window, in board order: the metric, then name, then id. People with none
    of it (zero, or a figure their sources do not report) are not in it; on an efficiency metric the people
    under the minimum volume come last with rank 0 (listed apart). Summed once per refresh: ranking a window
    that is not kept reads up to a million rows at 85,000 people, and paging through it, or its comparison
    window, asks again."""
    team_ids = sorted(team_subtree_ids([team_id])) if team_id is not None else None
    return per_refresh(
        "ranked-order",  # a RankedOrder (before: a pair of arrays)
        (window.start, window.end, provider, model, model_family, team_ids, metric),
        lambda: RankedOrder(*_ranked_arrays(window, provider, model, team_id, metric, model_family=model_family)),
    )


T = TypeVar("T")
PER_REFRESH_CACHE_SECONDS = 24 * 3600  # a refresh changes the key at least daily (the midnight roll)


# The last answers of per_refresh and stored_order this process read, by key: a computed order is 1.4 MB at
# 85,000 people, and
# reading it back from the shared cache cost a page on another metric 20–30 ms (docs/PERFORMANCE.md). Safe to
# keep without expiry: a key names one refresh's standings, and the oldest are dropped first.
PER_REFRESH_IN_PROCESS = 32
_in_process: OrderedDict[str, object] = OrderedDict()
_in_process_lock = threading.Lock()


def per_refresh(name: str, asked: tuple, compute: Callable[[], T], *, shared: bool = True) -> T:
    """compute(), kept in the shared cache until the next refresh (and the last few in this process; only there
    when not `shared`): the standings change only in one (StandingsState.generation names each). Before the
    first refresh there is nothing to keep, and None is never kept. Callers must not change what it returns: the
    process's copy is shared."""
    key = _refresh_key(name, asked)
    if key is None:
        return compute()
    found = _process_kept(key)
    if found is None:
        found = cache.get(key) if shared else None
        if found is None:
            found = compute()
            if shared:
                cache.set(key, found, PER_REFRESH_CACHE_SECONDS)
        if found is not None:
            _process_keep(key, found)
    return found


def stored_order(window_id: int, metric: str) -> RankedOrder | None:
    """A kept window's StandingOrder on a kept metric, with its ranks, read once per refresh in this process
    (1.4 MB and ~20 ms at 85,000 people; not worth the shared cache's copy). None if the window has none."""
    return per_refresh("order", (window_id, metric), lambda: _stored_order_read(window_id, metric), shared=False)


def _stored_order_read(window_id: int, metric: str) -> RankedOrder | None:
    board = StandingOrder.objects.filter(window_id=window_id, metric=metric).values_list("board", flat=True).first()
    if board is None:
        return None
    people, totals = board_pairs(board)
    return RankedOrder(people, array("q", competition_ranks(totals)))


def _refresh_key(name: str, asked: tuple) -> str | None:
    """A cache key naming this refresh's standings; None before the first refresh."""
    generation = standings_generation()
    if generation is None:
        return None
    return f"{name}:{generation.hex}:{hashlib.sha256(repr(asked).encode()).hexdigest()}"


def _process_kept(key: str):
    with _in_process_lock:
        if key in _in_process:
            _in_process.move_to_end(key)
            return _in_process[key]
    return None


def _process_keep(key: str, value) -> None:
    with _in_process_lock:
        _in_process[key] = value
        while len(_in_process) > PER_REFRESH_IN_PROCESS:
            _in_process.popitem(last=False)


def efficiency_eligible_sql(volume_rank: str, people: str, total_tokens: str) -> str:
    """Whether a person is ranked on the efficiency metrics: at least settings.TOKENBOARD_EFFICIENCY_MIN_TOKENS
    in the window, or when that is 0 the top half by total tokens (a rank by volume within the first
    ceil(people / 2), so ties at the edge are all in)."""
    minimum = int(settings.TOKENBOARD_EFFICIENCY_MIN_TOKENS)
    if minimum > 0:
        return f"({total_tokens} >= {minimum})"
    return f"({total_tokens} > 0 AND {volume_rank} <= ({people} + 1) / 2)"


def _ranked_arrays(window, provider, model, team_id, metric: str, *, model_family: str = "") -> tuple[array, array]:
    """ranked_order's people and ranks (8-byte integers: 1.4 MB for 85,000 people), from the read models. Only
    the figures the metric is computed from are summed: at 85,000 people a window's full figures cost several
    times its ranking (docs/PERFORMANCE.md)."""
    sql, params = _totals_sql(
        window, provider, model, team_id, model_family=model_family, figures={*metric_figures(metric), "total_tokens"}
    )
    order = metric_order_sql(metric, "t")
    if metric in EFFICIENCY_METRICS:
        eligible = efficiency_eligible_sql("t.volume_rank", "t.people", "t.total_tokens")
        rank = f"CASE WHEN {eligible} THEN RANK() OVER (PARTITION BY {eligible} ORDER BY {order}) ELSE 0 END"
        ordered, where = f"CASE WHEN {eligible} THEN 0 ELSE 1 END, {order}", ""
        sized = "RANK() OVER (ORDER BY total_tokens DESC) AS volume_rank, COUNT(*) OVER () AS people"
    else:
        rank, ordered, where, sized = f"RANK() OVER (ORDER BY {order})", order, f"WHERE t.{metric} > 0 ", "1"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH totals AS ({sql}), sized AS (SELECT totals.*, {sized} FROM totals) "
            f"SELECT t.person_id, {rank} "
            f"FROM sized t JOIN {quoted_table(Person)} p ON p.id = t.person_id {where}"
            f"ORDER BY {ordered}, p.display_name, p.id",
            params,
        )
        rows = cursor.fetchall()
    return array("q", [person_id for person_id, _rank in rows]), array("q", [rank for _person_id, rank in rows])


FIGURES_BY_PERSON_MOST = 2000  # a computed ranking reads at most this many people's figures by id
MOVERS_KEPT = 15  # the movers page's lists (leaderboard.insights.movers_from)


class PeopleRanking(Sequence):
    """Everyone with usage in the window, ranked on the query's metric (ties share a rank, then by name).

    A lazy sequence of PersonStanding over the board's RankedOrder: a kept window's StandingOrder, else the order
    computed once per refresh (ranked_order). Django's and DRF's paginators slice it, so a page reads only its
    people's figures. The search narrows the list after ranking, so a person keeps their real rank. Names, emails
    and costs follow the viewer's role (usage.access)."""

    def __init__(self, query: RankingQuery, viewer: Viewer):
        self.query, self.viewer = query, viewer
        self.metric = query.metric
        previous_window = comparison_window(query.window)
        self.has_previous_window = previous_window is not None
        # On an efficiency metric, the people under its minimum volume are listed apart (_below).
        self._order, self._below = self._order_in(query.window).split()
        self._previous = self._order_in(previous_window) if previous_window is not None else None
        self._search_ids = self._matching_people() if query.search else None
        self._count: int | None = None
        self._leader_value = None

    def _order_in(self, window: Window) -> RankedOrder:
        """The window's board on the query's metric and filters: kept, or ranked in the database."""
        query = self.query
        if not query.by_model and query.team_id is None:
            stored = stored_window(window, query.provider, self.metric)
            if stored is not None and (order := stored_order(stored.pk, self.metric)) is not None:
                return order
        return ranked_order(
            window, query.provider, query.model, query.team_id, self.metric, model_family=query.model_family
        )

    def _with_totals(self, ranked: list[_Ranked]) -> list[_Ranked]:
        """The rows given their figures, read in one query (for everyone at once past a few pages: a list of that
        many ids costs more than reading the window)."""
        missing = [r.person_id for r in ranked if r.totals is None]
        if missing:
            query = self.query
            totals = person_totals(
                query.window,
                provider=query.provider,
                model=query.model,
                model_family=query.model_family,
                team_id=query.team_id,
                people=missing if len(missing) <= FIGURES_BY_PERSON_MOST else None,
            )
            for r in ranked:
                if r.totals is None:
                    r.totals = totals.get(r.person_id, Totals())
        return ranked

    def _matching_people(self) -> set[int]:
        """People whose name, as this viewer sees it, contains the search text."""
        text = self.query.search
        shown_name = Q(display_name__icontains=text, show_name=True) | Q(pseudonym__icontains=text, show_name=False)
        detail = people_with_detail(self.viewer)
        if detail is None:
            shown_name = Q(display_name__icontains=text)
        else:
            shown_name |= Q(display_name__icontains=text, pk__in=detail)
        return set(Person.objects.filter(shown_name).values_list("pk", flat=True))

    def count(self) -> int:
        if self._count is None:
            ids = self._order.ids
            self._count = len(ids) if self._search_ids is None else sum(1 for pid in ids if pid in self._search_ids)
        return self._count

    @property
    def ranked_count(self) -> int:
        """Everyone ranked, whatever the search."""
        return len(self._order)

    def below_minimum(self) -> list[PersonStanding]:
        """On an efficiency metric, the people under the minimum volume: listed apart, by volume, not ranked
        (their `rank` is 0)."""
        if not self._below:
            return []
        below = self._below[:]
        if self._search_ids is not None:
            below = [r for r in below if r.person_id in self._search_ids]
        return self._standings(below)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(self.count())
            assert step == 1, "rankings are sliced in order"
            return self._standings(self._ranked_slice(start, stop))
        if index < 0:
            index += self.count()
        items = self[index : index + 1]
        if not items:
            raise IndexError(index)
        return items[0]

    def __iter__(self) -> Iterator[PersonStanding]:
        chunk = 2000
        for start in range(0, self.count(), chunk):
            yield from self[start : start + chunk]

    def _ranked_slice(self, start: int, stop: int) -> list[_Ranked]:
        if self._search_ids is None:
            return self._order[start:stop]
        found = [i for i, pid in enumerate(self._order.ids) if pid in self._search_ids][start:stop]
        return [self._order[i] for i in found]

    def _previous_rank_of(self, person_ids: list[int]) -> dict[int, int]:
        if self._previous is None:
            return {}
        return {pid: rank for pid, rank in self._previous.ranks_of(person_ids).items() if rank}

    def leader_value(self, shown: list[_Ranked] | None = None):
        """The first's figure on the metric (the bars' scale): from the rows `shown` when the first leads them (the
        first page), else read."""
        if self._leader_value is None:
            leads = bool(shown) and len(self._order) > 0 and shown[0].person_id == self._order.ids[0]
            leader = shown[:1] if leads else self._with_totals(self._order[:1])
            self._leader_value = (leader[0].totals.metric(self.metric) if leader else 0) or 0
        return self._leader_value

    def row_for(self, person_id: int) -> PersonStanding | None:
        """The person's standing (their real rank, whatever the search), or None if not ranked."""
        found = self._order.find(person_id)
        return self._standings([found])[0] if found else None

    def standing_of(self, person_id: int) -> PersonStanding | None:
        """The person's standing, or on an efficiency metric their unranked figures (rank 0) when under the
        minimum volume; None without usage in the window."""
        found = self.row_for(person_id)
        if found is not None or self.metric not in EFFICIENCY_METRICS:
            return found
        below = [r] if (r := self._below.find(person_id)) else []
        return self._standings(below)[0] if below else None

    def movers(self, limit: int) -> tuple[list[PersonStanding], list[PersonStanding], list[PersonStanding]]:
        """(climbers, fallers, newcomers): most places gained or lost (then by current rank) and the best
        ranked people with no rank in the previous window. Picked once per refresh at the longest lists a page
        shows (two passes over both boards: tens of ms at 85,000 people); shorter lists are their start."""
        kept = max(limit, MOVERS_KEPT)
        query = self.query
        picked = per_refresh(
            "movers",
            (query.window, query.provider, query.model, query.model_family, query.team_id, self.metric, kept),
            lambda: self._movers_pick(kept),
        )
        return tuple(self._standings_of(ids[:limit]) for ids in picked)

    def _movers_pick(self, limit: int) -> list[list[int]]:
        ranked = list(zip(self._order.ids, self._order.ranks, strict=True))
        previous = self._previous.ranks_by_person() if self._previous is not None else {}
        changes = {pid: previous[pid] - rank for pid, rank in ranked if pid in previous}
        by_rank = dict(ranked)
        climbers = sorted((p for p, c in changes.items() if c > 0), key=lambda p: (-changes[p], by_rank[p]))
        fallers = sorted((p for p, c in changes.items() if c < 0), key=lambda p: (changes[p], by_rank[p]))
        newcomers = [pid for pid, _rank in ranked if pid not in previous]
        return [climbers[:limit], fallers[:limit], newcomers[:limit]]

    def _standings_of(self, person_ids: list[int]) -> list[PersonStanding]:
        """Standings of these ranked people, in the given order."""
        ranks = self._order.ranks_of(person_ids)
        return self._standings([_Ranked(pid, ranks[pid], None) for pid in person_ids if pid in ranks])

    def viewer_row(self) -> PersonStanding | None:
        """The viewer's own standing, if ranked and matching the search."""
        person = self.viewer.person
        if person is None or (self._search_ids is not None and person.pk not in self._search_ids):
            return None
        return self.row_for(person.pk)

    def _standings(self, ranked: list[_Ranked]) -> list[PersonStanding]:
        ranked = self._with_totals(ranked)
        ids = [r.person_id for r in ranked]
        people = {
            p["id"]: p
            for p in Person.objects.filter(pk__in=ids).values("id", "display_name", "email", "pseudonym", "show_name")
        }
        teams = current_teams(ids)
        previous = self._previous_rank_of(ids)
        leader = self.leader_value(ranked)
        count = self.ranked_count
        viewer_person_id = self.viewer.person.pk if self.viewer.person else None
        standings = []
        for r in ranked:
            person = people.get(r.person_id)
            if person is None:  # deleted since the last refresh
                continue
            detail = can_see_person_detail(self.viewer, r.person_id)
            team_id, team_name = teams.get(r.person_id, (None, ""))
            standings.append(
                PersonStanding(
                    rank=r.rank,
                    previous_rank=previous.get(r.person_id),
                    person_id=r.person_id,
                    display_name=person_display_name(
                        self.viewer, r.person_id, person["display_name"], person["pseudonym"], person["show_name"]
                    ),
                    email=person["email"] if detail else None,
                    team_id=team_id,
                    team_name=team_name,
                    totals=r.totals,
                    detail=detail,
                    share_of_leader=_share_of(r.totals.metric(self.metric), leader),
                    percentile_tier=_tier(r.rank, count) if r.rank else "",
                    is_viewer=r.person_id == viewer_person_id,
                )
            )
        return standings


def _share_of(value, leader) -> float:
    """The bar's length: the value against the leader's (on an ascending metric, the leader's against it)."""
    if not leader or not value:
        return 0.0
    return float(leader / value) if leader < value else float(value / leader)


def people_ranking(query: RankingQuery, viewer: Viewer) -> PeopleRanking:
    return PeopleRanking(query, viewer)


# --- Teams ---------------------------------------------------------------------------------------------------


def team_filter_hidden(query: RankingQuery, viewer: Viewer) -> bool:
    """Whether the query's team filter names a team whose figures this viewer may not see (too few active
    members in the window; usage.access.can_see_team_figures): a ranking, chart, mover list or export filtered
    to it would show the team's figures person by person, so the pages drop the filter and the API refuses it."""
    if query.team_id is None or can_see_team_detail(viewer, query.team_id):
        return False
    active = len(_totals_rows(query.window, query.provider, query.model, query.team_id))
    return not can_see_team_figures(viewer, query.team_id, active)


TEAM_FILTER_HIDDEN = "the team had fewer active members in the window than the minimum for showing its figures"


@dataclass
class TeamStanding:
    rank: int
    previous_rank: int | None
    team_id: int
    name: str
    parent_id: int | None
    members: int
    active_members: int
    totals: Totals
    visible: bool
    top_person_id: int | None = None
    top_person_name: str = ""
    depth: int = 0
    detail: bool = False  # cost and drill-down for this viewer (usage.access.can_see_team_detail)

    @cached_property
    def per_member(self) -> Totals:
        """The totals per active member; worked out for the rows shown only (a page of a board of every team)."""
        return _per_member(self.totals, self.active_members) if self.visible else Totals()


@dataclass
class _TeamFigures:
    totals: Totals
    active_members: int
    top_person: int | None = None  # the largest contributor on the query's metric


def _per_member(totals: Totals, active: int) -> Totals:
    if not active:
        return Totals()
    return Totals(
        **{name: None if getattr(totals, name) is None else getattr(totals, name) // active for name in COUNT_FIGURES},
        cost_usd=(totals.cost_usd / active).quantize(Decimal("0.000001")),
        billed_cost_usd=(totals.billed_cost_usd / active).quantize(Decimal("0.000001")),
        active_days=totals.active_days // active,
    )


def _team_figures(
    window: Window, query: RankingQuery, ancestors: dict[int, list[int]], *, tops: bool = True
) -> dict[int, _TeamFigures]:
    """Each team subtree's figures in the window: stored team standings, or summed per (team, person); without
    `tops` (what a comparison window needs: ranks only), summed per subtree in the database."""
    # No top person on an efficiency ratio (usage.services.standings.team_top_people).
    top = tops and query.metric not in EFFICIENCY_METRICS
    if not query.by_model:
        stored = stored_window(window, query.provider)
        if stored is not None:
            kept_top = top and query.metric in KEPT_METRICS
            columns = ("team_id", "active_members", *ROW_FIGURES, *([f"top_{query.metric}"] if kept_top else []))
            figures_end = 2 + len(ROW_FIGURES)
            figures = {
                row[0]: _TeamFigures(_sql_totals(row[2:figures_end]), row[1], row[figures_end] if kept_top else None)
                for row in TeamStandingRow.objects.filter(window_id=stored.pk).values_list(*columns)
            }
            if top and not kept_top:
                top_people = per_refresh(
                    "team-tops", (stored.pk, query.metric), lambda: team_top_people(stored.pk, query.metric, ancestors)
                )
                for team_id, team_figures in figures.items():
                    team_figures.top_person = top_people.get(team_id)
            return figures
    if not tops:
        return _subtree_figures(window, query, ancestors)
    per_person: dict[int, dict[int, Totals]] = {}
    for team_id, person_id, *figures in _totals_rows(
        window, query.provider, query.model, None, group_by=("team_id", "person_id"), model_family=query.model_family
    ):
        for ancestor in ancestors.get(team_id, []):  # none for usage outside any team
            per_person.setdefault(ancestor, {}).setdefault(person_id, Totals()).add(_sql_totals(figures))
    figures = {}
    for team_id, people in per_person.items():
        total = Totals()
        for person_totals_ in people.values():
            total.add(person_totals_)
        members = {pid: totals for pid, totals in people.items() if pid is not None}  # None: shared identities
        top_person = None
        if top and members:
            top_person = max(
                members,
                key=lambda pid: (
                    members[pid].metric(query.metric) is not None,
                    members[pid].metric(query.metric) or 0,
                    -pid,
                ),
            )
        figures[team_id] = _TeamFigures(total, len(members), top_person)
    return figures


def _subtree_figures(window: Window, query: RankingQuery, ancestors: dict[int, list[int]]) -> dict[int, _TeamFigures]:
    """Each team subtree's totals and active members, summed in the database from the (team, person) totals:
    the same sums as _team_figures, without reading every person's row into Python."""
    sql, params = _totals_sql(
        window, query.provider, query.model, None, group_by=("team_id", "person_id"), model_family=query.model_family
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {team_closure_sql(ancestors)}, per_person AS ({sql}) "
            f"SELECT c.ancestor_id, {figure_sums('t', named=False)}, SUM(t.active_days), COUNT(DISTINCT t.person_id) "
            f"FROM per_person t JOIN closure c ON c.team_id = t.team_id GROUP BY c.ancestor_id",
            params,
        )
        return {row[0]: _TeamFigures(_sql_totals(row[1:-1]), row[-1]) for row in cursor.fetchall()}


def _ranks_by_level(
    figures: dict[int, Totals], metric: str, depth: dict[int, int], names: dict[int, str]
) -> dict[int, int]:
    """Teams are ranked against teams of the same level (an org against orgs, a team against teams)."""
    ranks = {}
    for level in set(depth.values()):
        at_level = {t: f for t, f in figures.items() if depth.get(t) == level}
        ranks.update(_ranked_ids(at_level, metric, names))
    return ranks


def current_member_counts() -> dict[int, int]:
    """Each team's current members (not its subtree's), as of the last refresh like the standings beside them
    (a membership change marks the standings for one): counting them reads every membership, 25 ms at 85,000."""
    # order_by(): Membership orders by person, which would join every person only to count them.
    current = Membership.objects.filter(end__isnull=True).order_by().values("team_id").annotate(people=Count("id"))
    return per_refresh("team-members", (), lambda: dict(current.values_list("team_id", "people")))


def _teams_board(
    query: RankingQuery,
    ancestors: dict[int, list[int]],
    depth: dict[int, int],
    names: dict[int, str],
    ranked: set[int],
    *,
    per_capita: bool,
) -> tuple[dict[int, _TeamFigures], dict[int, int], dict[int, int]]:
    """Every team's figures in the query's window (none: empty figures), and the `ranked` teams' ranks now and in
    the comparison window, each against the teams of its level (`depth`)."""
    figures = _team_figures(query.window, query, ancestors)
    for team_id in names.keys() - figures.keys():
        figures[team_id] = _TeamFigures(Totals(), 0)

    def ranked_on(team_figures: dict[int, _TeamFigures]) -> dict[int, Totals]:
        if per_capita:
            return {t: _per_member(f.totals, f.active_members) for t, f in team_figures.items() if t in ranked}
        return {t: f.totals for t, f in team_figures.items() if t in ranked}

    ranks = _ranks_by_level(ranked_on(figures), query.metric, depth, names)
    previous_ranks: dict[int, int] = {}
    previous_window = comparison_window(query.window)
    if previous_window is not None:
        previous = _team_figures(previous_window, query, ancestors, tops=False)
        previous_ranks = _ranks_by_level(ranked_on(previous), query.metric, depth, names)
    return figures, ranks, previous_ranks


class TeamsRanking(Sequence):
    """Every team ranked on its subtree totals (or per active member) against the teams of its level, listed
    level by level. Teams with too few active members show no figures to engineers
    (usage.access.can_see_team_figures) but keep their place. A team filter lists that subtree only.

    A lazy sequence of TeamStanding: the board (figures and ranks of every team) is computed once per refresh,
    and a slice builds only its rows, so a page of 50 costs the same for 558 teams (85,000 people) as for 5."""

    def __init__(self, query: RankingQuery, viewer: Viewer, *, per_capita: bool = False):
        self.viewer = viewer
        teams = {t["id"]: t for t in Team.objects.values("id", "name", "parent_id")}
        self._parents = {team_id: t["parent_id"] for team_id, t in teams.items()}
        ancestors = team_ancestors(self._parents)
        self._depth = {team_id: len(chain) - 1 for team_id, chain in ancestors.items()}
        self._names = {team_id: t["name"] for team_id, t in teams.items()}
        self._members: dict[int, int] = dict.fromkeys(teams, 0)
        for team_id, people in current_member_counts().items():
            for ancestor in ancestors.get(team_id, []):
                self._members[ancestor] += people

        listed = set(teams)
        if query.team_id is not None:
            listed = team_subtree_ids([query.team_id], self._parents)
        # A manager ranking by cost within his subtree ranks its teams against each other only: a place among
        # the teams of a level would tell how the costs of teams he does not manage compare with his.
        if listed != teams.keys() and query.metric == "cost_usd" and not can_rank_by_cost(viewer, None):
            board = _teams_board(query, ancestors, self._depth, self._names, listed, per_capita=per_capita)
        else:  # the same for every viewer until the next refresh, for this team tree
            tree = tuple(sorted(self._parents.items()))
            asked = (query.window, query.provider, query.model, query.model_family, query.metric, per_capita, tree)
            board = per_refresh(
                "teams-board",
                asked,
                lambda: _teams_board(query, ancestors, self._depth, self._names, set(teams), per_capita=per_capita),
            )
        self._figures, self._ranks, self._previous_ranks = board
        ranks, depth, names = self._ranks, self._depth, self._names
        self._order = [t for t in sorted(ranks, key=lambda t: (depth[t], ranks[t], names[t].lower(), t)) if t in listed]

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._standings(self._order[index])
        return self._standings([self._order[index]])[0]

    def __iter__(self) -> Iterator[TeamStanding]:
        return iter(self._standings(self._order))

    def of(self, team_ids: Collection[int]) -> dict[int, TeamStanding]:
        """The standings of those of these teams that are listed, by team."""
        wanted = set(team_ids)
        return {s.team_id: s for s in self._standings([t for t in self._order if t in wanted])}

    def with_members(self) -> TeamsRanking:
        """The teams with current members or usage in the window (the page leaves empty teams out)."""
        kept = copy(self)
        kept._order = [t for t in self._order if self._figures[t].active_members or self._members[t]]
        return kept

    def any_active(self) -> bool:
        return any(self._figures[t].active_members for t in self._order)

    def _standings(self, team_ids: list[int]) -> list[TeamStanding]:
        viewer = self.viewer
        visible = {t: can_see_team_figures(viewer, t, self._figures[t].active_members) for t in team_ids}
        top_ids = {self._figures[t].top_person for t in team_ids if visible[t]} - {None}
        people = {
            p["id"]: p
            for p in Person.objects.filter(pk__in=top_ids).values("id", "display_name", "pseudonym", "show_name")
        }
        standings = []
        for team_id in team_ids:
            team_figures = self._figures[team_id]
            top_id = team_figures.top_person if visible[team_id] else None
            top_name = ""
            if top_id is not None and top_id in people:
                p = people[top_id]
                top_name = person_display_name(viewer, top_id, p["display_name"], p["pseudonym"], p["show_name"])
            standings.append(
                TeamStanding(
                    rank=self._ranks[team_id],
                    previous_rank=self._previous_ranks.get(team_id),
                    team_id=team_id,
                    name=self._names[team_id],
                    parent_id=self._parents[team_id],
                    members=self._members[team_id],
                    active_members=team_figures.active_members,
                    totals=team_figures.totals if visible[team_id] else Totals(),
                    visible=visible[team_id],
                    top_person_id=top_id,
                    top_person_name=top_name,
                    depth=self._depth[team_id],
                    detail=can_see_team_detail(viewer, team_id),
                )
            )
        return standings


def teams_ranking(query: RankingQuery, viewer: Viewer, *, per_capita: bool = False) -> TeamsRanking:
    return TeamsRanking(query, viewer, per_capita=per_capita)


@dataclass(frozen=True)
class ProviderCoverage:
    """What one provider's sources report: the last day with usage, and whether they report requests."""

    provider: str
    label: str
    through: date
    requests: str  # "reported", "partly" (some of its sources) or "unreported"


@dataclass
class Freshness:
    """How current the figures are: the newest data received, the standings computed from it, and how far
    each provider's usage reaches."""

    data_as_of: datetime | None
    standings_as_of: datetime | None
    behind: bool  # usage changed since the standings were computed; a refresh is on its way
    failure: str  # the last refresh failed: the previous standings keep serving
    providers: list[ProviderCoverage]

    def requests_unreported_by(self) -> list[str]:
        return [p.label for p in self.providers if p.requests == "unreported"]

    def requests_partly_reported_by(self) -> list[str]:
        return [p.label for p in self.providers if p.requests == "partly"]


def standings_freshness() -> Freshness:
    """Read in one query once the standings exist: every ranking page and API answer shows it."""
    latest = {name: Subquery(query) for name, query in latest_data().items()}
    state = (
        StandingsState.objects.filter(pk=1)
        .annotate(**latest, behind=Exists(StandingsDirtyDay.objects.all()))
        .values("refreshed_at", "last_error", "behind", *latest)
        .first()
    )
    if state is None:  # never refreshed
        return Freshness(data_as_of(), None, StandingsDirtyDay.objects.exists(), "", [])
    return Freshness(
        data_as_of=data_as_of({name: state[name] for name in latest}),
        standings_as_of=state["refreshed_at"],
        behind=state["behind"],
        failure=state["last_error"],
        providers=provider_coverage(state["refreshed_at"]),
    )


def provider_coverage(refreshed_at: datetime | None) -> list[ProviderCoverage]:
    """Per provider with usage: its last day, and whether its sources report requests — read from the standings
    (the provider's weeks, its all-time board), cached until the next refresh."""
    key = f"provider-coverage:{refreshed_at.isoformat() if refreshed_at else 'never'}"
    found = cache.get(key)
    if found is None:
        found = []
        labels = dict(Provider.choices)
        for provider in sorted(
            set(StandingWindow.objects.exclude(provider=ALL_PROVIDERS).values_list("provider", flat=True))
        ):
            through = DailyRollup.objects.filter(provider=provider).aggregate(last=Max("day"))["last"]
            if through is None:
                continue
            all_time = StandingWindow.objects.filter(period="all", provider=provider).order_by("-end").first()
            rows = TeamMemberStanding.objects.filter(window_id=all_time.pk if all_time else 0, person__isnull=False)
            known, unknown = rows.filter(requests__isnull=False).exists(), rows.filter(requests__isnull=True).exists()
            requests = "partly" if known and unknown else "reported" if known or not unknown else "unreported"
            found.append(ProviderCoverage(provider, labels.get(provider, provider), through, requests))
        cache.set(key, found, timeout=24 * 3600)
    return found


def rollup_models() -> list[tuple[str, str, str]]:
    """Every (provider, model, model family) with usage, as the daily rollups count them (canonical names where
    the catalog maps a spelling): what the model palette and the filter lists are built from. A scan of the
    rollups (seconds at 85,000 people), kept per refresh; the worker reads it after each one
    (leaderboard.warm_titles)."""
    return per_refresh(
        "rollup-models",
        (),
        lambda: sorted(DailyRollup.objects.values_list("provider", "model", "model_family").distinct()),
    )


def unassigned_usage(window: Window) -> tuple[int, int]:
    """(identities, total tokens) of usage in the window that no person is assigned to yet (shared and service
    identities are accounted for: not in it)."""
    row = (
        rollups_in_window(window)
        .filter(person__isnull=True, identity__attribution=IdentityAttribution.PERSONAL)
        .aggregate(identities=Count("identity", distinct=True), tokens=Coalesce(Sum("total_tokens"), 0))
    )
    return row["identities"], row["tokens"]
