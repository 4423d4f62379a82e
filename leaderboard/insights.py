"""Read-side insights built on the rankings: movers, earned titles, rank history and team members.

Every function takes a validated RankingQuery (leaderboard.windows) and, where names are shown, the Viewer;
names go through usage.access.person_display_name, so opted-out people stay pseudonymous here too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.db.models.functions import Coalesce

from usage.access import Viewer, person_display_name, team_subtree_ids
from usage.models import Membership, Person

from .selectors import PersonStanding, Totals, person_totals, usage_in_window
from .templatetags.tokenboard import compact
from .windows import RankingQuery, Window, window_for

# --- Movers ----------------------------------------------------------------------------------------------


@dataclass
class Movers:
    climbers: list[PersonStanding]
    fallers: list[PersonStanding]
    newcomers: list[PersonStanding]
    has_previous_window: bool


def movers_from(standings: list[PersonStanding], *, has_previous_window: bool, limit: int = 15) -> Movers:
    """Biggest climbers and fallers (by places moved, then by current rank) and newcomers (no rank in the
    previous window of the same size), from an already computed ranking."""
    if not has_previous_window:
        return Movers([], [], [], False)
    moved = [s for s in standings if s.rank_change]
    climbers = sorted((s for s in moved if s.rank_change > 0), key=lambda s: (-s.rank_change, s.rank))
    fallers = sorted((s for s in moved if s.rank_change < 0), key=lambda s: (s.rank_change, s.rank))
    newcomers = [s for s in standings if s.previous_rank is None]
    return Movers(climbers[:limit], fallers[:limit], newcomers[:limit], True)


# --- Titles ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TitleRule:
    key: str
    name: str
    how: str
    rewards: str  # "volume", "efficiency", "breadth" or "consistency"


TITLE_RULES = (
    TitleRule("volume", "Top volume", "Most tokens in the window.", "volume"),
    TitleRule(
        "cache",
        "Cache master",
        "Highest share of prompt tokens served from cache, among the top half of people by prompt tokens.",
        "efficiency",
    ),
    TitleRule(
        "models", "Widest model mix", "Most different models used in the window; ties go to more tokens.", "breadth"
    ),
    TitleRule("streak", "Longest streak", "Most consecutive days with any usage inside the window.", "consistency"),
)


@dataclass
class Title:
    rule: TitleRule
    person_id: int
    display_name: str
    value: str  # what earned it, readable: "12.3M tokens", "71% from cache", "6 models", "14 days"


def _prompt_tokens(totals: Totals) -> int:
    return totals.input_tokens + totals.cache_read_tokens + totals.cache_write_tokens


def longest_runs(days_by_person: dict[int, list[date]]) -> dict[int, int]:
    """Longest run of consecutive days per person; each list must be sorted ascending and distinct."""
    runs = {}
    for person_id, days in days_by_person.items():
        best = run = 0
        previous = None
        for day in days:
            run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
            best = max(best, run)
            previous = day
        runs[person_id] = best
    return runs


def _longest_streaks(records) -> dict[int, int]:
    """Longest run of active days per person in the (already filtered) records: one query of distinct
    (person, day) pairs, at most people × days in the window."""
    days_by_person: dict[int, list[date]] = defaultdict(list)
    pairs = records.values_list("identity__person", "day").distinct().order_by("identity__person", "day")
    for person_id, day in pairs:
        days_by_person[person_id].append(day)
    return longest_runs(days_by_person)


def window_titles(
    query: RankingQuery,
    viewer: Viewer,
    totals: dict[int, Totals] | None = None,
    names: dict[int, str] | None = None,
) -> list[Title]:
    """One holder per title for the query's window and filters (search ignored). `totals` and `names` may
    pass the per-person totals and the viewer's display names already computed for the ranking (names as
    usage.access.person_display_name gives them), saving queries. No usage → no titles."""
    filters = {"provider": query.provider, "model": query.model, "team_id": query.team_id}
    if totals is None:
        totals = person_totals(query.window, **filters)
    if not totals:
        return []
    records = usage_in_window(query.window, **filters).filter(identity__person__isnull=False)
    winners: list[tuple[TitleRule, int, str]] = []

    def by_volume(pid: int) -> tuple:
        return (totals[pid].total_tokens, -pid)

    rules = {rule.key: rule for rule in TITLE_RULES}
    top = max(totals, key=by_volume)
    winners.append((rules["volume"], top, f"{compact(totals[top].total_tokens)} tokens"))

    prompts = sorted(_prompt_tokens(t) for t in totals.values())
    floor = prompts[(len(prompts) - 1) // 2]  # the median: only the top half by prompt volume qualifies
    eligible = [pid for pid, t in totals.items() if _prompt_tokens(t) >= floor and _prompt_tokens(t) > 0]
    if eligible:
        rate = {pid: totals[pid].cache_read_tokens / _prompt_tokens(totals[pid]) for pid in eligible}
        best = max(eligible, key=lambda pid: (rate[pid], by_volume(pid)))
        if rate[best] > 0:
            winners.append((rules["cache"], best, f"{rate[best]:.0%} of prompt tokens from cache"))

    model_counts = dict(
        records.values("identity__person")
        .annotate(models=Count("model", distinct=True))
        .values_list("identity__person", "models")
    )
    if model_counts:
        widest = max(model_counts, key=lambda pid: (model_counts[pid], by_volume(pid) if pid in totals else (0, 0)))
        winners.append((rules["models"], widest, f"{model_counts[widest]} models"))

    runs = _longest_streaks(records)
    if runs:
        streaker = max(runs, key=lambda pid: (runs[pid], by_volume(pid) if pid in totals else (0, 0)))
        winners.append((rules["streak"], streaker, f"{runs[streaker]} day{'s' if runs[streaker] != 1 else ''}"))

    holders = {pid for _r, pid, _v in winners}
    if names is None or not holders <= names.keys():
        names = {
            p["id"]: person_display_name(viewer, p["id"], p["display_name"], p["pseudonym"], p["show_name"])
            for p in Person.objects.filter(pk__in=holders).values("id", "display_name", "pseudonym", "show_name")
        }
    return [Title(rule=rule, person_id=pid, display_name=names[pid], value=value) for rule, pid, value in winners]


# --- Rank history ----------------------------------------------------------------------------------------


def history_windows(window: Window, count: int = 12) -> list[Window]:
    """The window and up to count-1 windows of the same kind before it, oldest first. All time has no
    predecessors, so its history is the last `count` calendar months."""
    if window.period == "all":
        current = window_for("month", window.end)
    else:
        current = window
    windows = [current]
    while len(windows) < count:
        previous = windows[-1].previous()
        if previous is None:
            break
        windows.append(previous)
    return list(reversed(windows))


def _window_label(window: Window) -> str:
    if window.period == "day":
        return f"{window.start:%d %b}"
    if window.period == "week":
        return f"wk {window.start:%d %b}"
    if window.period == "month":
        return f"{window.start:%b %Y}"
    if window.period in ("quarter", "year"):
        return window.label
    return f"{window.start:%d %b}–{window.end:%d %b}"


def rank_history(query: RankingQuery, person_id: int, count: int = 12) -> list[tuple[date, str, int | None]]:
    """(window start, label, rank or None) for the person over the last `count` windows of the query's
    kind, on the query's metric and filters. One query: each day is bucketed into its window in SQL."""
    windows = history_windows(query.window, count)
    bucket = Case(
        *[When(day__gte=w.start, day__lte=w.end, then=Value(i)) for i, w in enumerate(windows)],
        output_field=IntegerField(),
    )
    span = Window("custom", windows[0].start, windows[-1].end)
    records = (
        usage_in_window(span, provider=query.provider, model=query.model, team_id=query.team_id)
        .filter(identity__person__isnull=False)
        .annotate(bucket=bucket)
        .values("bucket", "identity__person")
    )
    if query.metric == "active_days":
        rows = records.annotate(value=Count("day", distinct=True))
    else:
        rows = records.annotate(
            value=Coalesce(Sum(query.metric), 0, output_field=records.model._meta.get_field(query.metric))
        )
    values: dict[int, dict[int, object]] = defaultdict(dict)
    for row in rows:
        if row["bucket"] is not None:
            values[row["bucket"]][row["identity__person"]] = row["value"]
    history = []
    for index, window in enumerate(windows):
        mine = values[index].get(person_id)
        rank = None
        if mine:
            rank = 1 + sum(1 for other in values[index].values() if other > mine)
        history.append((window.start, _window_label(window), rank))
    return history


# --- Team members ----------------------------------------------------------------------------------------


@dataclass
class MemberRow:
    person_id: int
    display_name: str
    email: str
    team_name: str
    totals: Totals
    share: float
    daily: list[int] = field(default_factory=list)
    rank: int = 0


def team_members(query: RankingQuery, team_id: int, viewer: Viewer) -> tuple[list[MemberRow], Totals]:
    """Current members of the team's subtree plus anyone with usage counted for it in the window, with
    their totals (days they were in the subtree only), share of the team's tokens and daily tokens for a
    sparkline. Only for viewers with team detail (the caller checks with usage.access)."""
    filters = {"provider": query.provider, "model": query.model, "team_id": team_id}
    totals = person_totals(query.window, **filters)
    subtree = team_subtree_ids([team_id])
    current = dict(
        Membership.objects.filter(team_id__in=subtree, end__isnull=True).values_list("person_id", "team__name")
    )
    people_ids = set(totals) | set(current)
    day_index = {query.window.start + timedelta(days=i): i for i in range(query.window.days)}
    daily: dict[int, list[int]] = {pid: [0] * query.window.days for pid in people_ids}
    if query.window.days <= 400:  # sparklines over longer windows would be unreadable anyway
        rows = (
            usage_in_window(query.window, **filters)
            .filter(identity__person__isnull=False)
            .values("identity__person", "day")
            .annotate(tokens=Sum("total_tokens"))
        )
        for row in rows:
            daily[row["identity__person"]][day_index[row["day"]]] += row["tokens"]
    team_total = Totals()
    for t in totals.values():
        team_total.add(t)
    people = Person.objects.filter(pk__in=people_ids).only("id", "display_name", "email", "pseudonym", "show_name")
    members = []
    for person in people:
        mine = totals.get(person.pk, Totals())
        members.append(
            MemberRow(
                person_id=person.pk,
                display_name=person_display_name(
                    viewer, person.pk, person.display_name, person.pseudonym, person.show_name
                ),
                email=person.email,
                team_name=current.get(person.pk, "(moved out)"),
                totals=mine,
                share=(mine.total_tokens / team_total.total_tokens) if team_total.total_tokens else 0.0,
                daily=daily[person.pk],
            )
        )
    members.sort(key=lambda m: (-m.totals.metric(query.metric), m.display_name))
    for position, member in enumerate(members, start=1):
        member.rank = position
    return members, team_total


def mix_shares(query: RankingQuery, *, person_id: int | None = None, team_id: int | None = None, field_name: str):
    """(name, tokens, share) of the window's tokens by model or provider, largest first, for a person or a
    team subtree. One grouped query."""
    records = usage_in_window(query.window, provider=query.provider, model=query.model, team_id=team_id)
    if person_id is not None:
        records = records.filter(identity__person_id=person_id)
    else:
        records = records.filter(identity__person__isnull=False)
    rows = list(records.values(field_name).annotate(tokens=Sum("total_tokens")).filter(~Q(tokens=0)))
    grand = sum(row["tokens"] for row in rows)
    shares = [(row[field_name] or "(unknown)", row["tokens"], row["tokens"] / grand if grand else 0.0) for row in rows]
    return sorted(shares, key=lambda item: (-item[1], item[0]))
