"""Read-side insights built on the rankings: movers, earned titles, rank history and team members.

Every function takes a validated RankingQuery (leaderboard.windows) and, where names are shown, the Viewer;
names go through usage.access.person_display_name, so opted-out people stay pseudonymous here too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, Sum

from usage.access import Viewer, person_display_name, team_subtree_ids, viewer_for
from usage.figures import KEPT_METRICS, METRICS, metric_sort_key
from usage.models import HoldStatus, Membership, OutcomeRecord, Person, Provider, UsageHold
from usage.services.outcomes import OUTCOME_FIGURES

from .selectors import (
    MOVERS_KEPT,
    PeopleRanking,
    PersonStanding,
    Totals,
    _sums,
    people_ranking,
    person_totals,
    ranked_order,
    rollups_in_window,
    stored_order,
    stored_window,
    stored_windows,
    teams_ranking,
)
from .templatetags.tokenboard import compact
from .windows import PERIODS, ROLLING_PERIODS, RankingQuery, Window, org_today, window_for

# --- Movers ----------------------------------------------------------------------------------------------


@dataclass
class Movers:
    climbers: list[PersonStanding]
    fallers: list[PersonStanding]
    newcomers: list[PersonStanding]
    has_previous_window: bool


def movers_from(ranking: PeopleRanking, *, limit: int = MOVERS_KEPT) -> Movers:
    """Biggest climbers and fallers (by places moved, then by current rank) and newcomers (no rank in the
    previous window of the same size), from a ranking."""
    if not ranking.has_previous_window:
        return Movers([], [], [], False)
    climbers, fallers, newcomers = ranking.movers(limit)
    return Movers(climbers, fallers, newcomers, True)


# --- Titles ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TitleRule:
    key: str
    name: str
    how: str
    rewards: str  # "volume", "efficiency", "outcome", "breadth" or "consistency"


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
    TitleRule(
        "output",
        "Straight talker",
        "Highest share of output in total tokens, among the top half of people by total tokens.",
        "efficiency",
    ),
    TitleRule("shipper", "Shipper", "Most pull requests reported by Claude Code analytics in the window.", "outcome"),
    TitleRule("lines", "Line landed", "Most lines accepted (Claude Code and Cursor) in the window.", "outcome"),
)


@dataclass
class Title:
    rule: TitleRule
    person_id: int
    display_name: str
    value: str  # what earned it, readable: "12.3M tokens", "71% from cache", "6 models", "14 days"


def _prompt_tokens(totals: Totals) -> int:
    return totals.input_tokens + totals.cache_read_tokens + totals.cache_write_tokens


def _longest_streaks(records) -> dict[int, int]:
    """Longest run of consecutive active days per person in the (already filtered) rollup rows, found in the
    database: within a run, each day's number minus its row number is one constant (gaps and islands). Reading
    the (person, day) pairs into Python instead took 3.5 GB for a year at 85,000 people."""
    pairs, params = records.values("person_id", "day").distinct().query.sql_with_params()
    day_number = "julianday(day)" if connection.vendor == "sqlite" else "(day - DATE '2000-01-01')"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT person_id, MAX(run) FROM (
                SELECT person_id, COUNT(*) AS run FROM (
                    SELECT person_id, {day_number} - ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY day) AS island
                    FROM ({pairs}) AS pairs
                ) AS numbered GROUP BY person_id, island
            ) AS runs GROUP BY person_id
            """,
            params,
        )
        return dict(cursor.fetchall())


def window_titles(query: RankingQuery, viewer: Viewer) -> list[Title]:
    """One holder per title for the query's window and filters (search ignored), named as the viewer may see
    them (usage.access.person_display_name). No usage → no titles."""
    rules = {rule.key: rule for rule in TITLE_RULES}
    winners = title_winners(query)
    holders = {pid for _key, pid, _value in winners}
    names = {
        p["id"]: person_display_name(viewer, p["id"], p["display_name"], p["pseudonym"], p["show_name"])
        for p in Person.objects.filter(pk__in=holders).values("id", "display_name", "pseudonym", "show_name")
    }
    return [
        Title(rule=rules[key], person_id=pid, display_name=names[pid], value=value)
        for key, pid, value in winners
        if pid in names
    ]


def title_winners(query: RankingQuery) -> list[tuple[str, int, str]]:
    """(title key, person id, what earned it) for the window and filters. Finding them reads every person's
    totals and the window's daily rollups, so for a kept window the answer is cached until the window is next
    recomputed (its computed_at is part of the key)."""
    stored = None if query.by_model or query.team_id is not None else stored_window(query.window, query.provider)
    if stored is None:
        return _title_winners(query)
    key = f"titles:{stored.pk}:{stored.computed_at.timestamp()}:{settings.TOKENBOARD_VOLUME_TITLES}"
    winners = cache.get(key)
    if winners is None:
        winners = _title_winners(query)
        cache.set(key, winners, timeout=TITLES_CACHE_SECONDS)
    return winners


TITLES_CACHE_SECONDS = 2 * 24 * 3600  # a kept window is recomputed at least once a day while it is current


def titles_warm(today: date | None = None) -> int:
    """Compute and cache the titles and the movers of today's window of every standard period (all providers,
    no filter), and the ranks the previous rolling windows compare with, so no page request pays for them: at
    85,000 people one window's titles read millions of rollup rows, its movers two self-joins of its standings,
    a window that is not kept seconds of summing. Queued after every standings refresh
    (leaderboard.tasks.warm_titles); returns the standard windows warmed."""
    anchor = today or org_today()
    nobody = viewer_for(AnonymousUser())  # the movers' order is the same for every viewer
    warmed = 0
    for period in PERIODS:
        if period == "custom":
            continue
        query = RankingQuery(window=window_for(period, anchor), metric="total_tokens", anchor=anchor)
        title_winners(query)
        movers_from(people_ranking(query, nobody))
        if period in ROLLING_PERIODS:
            # One step back (the page's "previous" link) is kept, but what it compares with is not: rank that.
            people_ranking(replace(query, window=query.window.previous()), nobody)
        warmed += 1
    return warmed


def metric_orders_warm(today: date | None = None) -> int:
    """Rank today's window of every standard period (all providers, no filter) on each metric whose order is not
    kept (usage.figures.KEPT_METRICS), people and teams' top people, with the windows they compare against: each
    costs a sort of the window's kept totals, several hundred ms at 85,000 people. Queued after every refresh,
    after the titles (leaderboard.tasks.warm_titles); returns the boards warmed."""
    anchor = today or org_today()
    nobody = viewer_for(AnonymousUser())  # the order is the same for every viewer; only what is shown differs
    warmed = 0
    for metric in METRICS:
        if metric in KEPT_METRICS:
            continue
        for period in PERIODS:
            if period == "custom":
                continue
            query = RankingQuery(window=window_for(period, anchor), metric=metric, anchor=anchor)
            people_ranking(query, nobody)
            teams_ranking(query, nobody)
            warmed += 1
    return warmed


def _title_winners(query: RankingQuery) -> list[tuple[str, int, str]]:
    filters = {
        "provider": query.provider,
        "model": query.model,
        "model_family": query.model_family,
        "team_id": query.team_id,
    }
    totals = person_totals(query.window, **filters)
    if not totals:
        return []
    records = rollups_in_window(query.window, **filters).filter(person__isnull=False)
    winners: list[tuple[str, int, str]] = []

    def by_volume(pid: int) -> tuple:
        return (totals[pid].total_tokens, -pid) if pid in totals else (0, 0)

    if settings.TOKENBOARD_VOLUME_TITLES:
        top = max(totals, key=by_volume)
        winners.append(("volume", top, f"{compact(totals[top].total_tokens)} tokens"))

    prompts = sorted(_prompt_tokens(t) for t in totals.values())
    floor = prompts[(len(prompts) - 1) // 2]  # the median: only the top half by prompt volume qualifies
    eligible = [pid for pid, t in totals.items() if _prompt_tokens(t) >= floor and _prompt_tokens(t) > 0]
    if eligible:
        rate = {pid: totals[pid].cache_read_tokens / _prompt_tokens(totals[pid]) for pid in eligible}
        best = max(eligible, key=lambda pid: (rate[pid], by_volume(pid)))
        if rate[best] > 0:
            winners.append(("cache", best, f"{rate[best]:.0%} of prompt tokens from cache"))

    model_counts = dict(
        records.values("person").annotate(models=Count("model", distinct=True)).values_list("person", "models")
    )
    if model_counts:
        # Canonical models (the rollups count every spelling under one), so three spellings are one model.
        widest = max(model_counts, key=lambda pid: (model_counts[pid], by_volume(pid)))
        families = records.filter(person=widest).exclude(model_family="").values("model_family").distinct().count()
        in_families = f" in {families} famil{'y' if families == 1 else 'ies'}" if families else ""
        winners.append(("models", widest, f"{model_counts[widest]} models{in_families}"))

    runs = _longest_streaks(records)
    if runs:
        streaker = max(runs, key=lambda pid: (runs[pid], by_volume(pid)))
        winners.append(("streak", streaker, f"{runs[streaker]} day{'s' if runs[streaker] != 1 else ''}"))

    volumes = sorted((t.total_tokens for t in totals.values()), reverse=True)
    top_half = volumes[(len(volumes) + 1) // 2 - 1]  # the smallest volume in the top half (ties at the edge in)
    eligible = [pid for pid, t in totals.items() if t.total_tokens >= top_half and t.total_tokens > 0]
    if eligible:
        share = {pid: totals[pid].output_tokens / totals[pid].total_tokens for pid in eligible}
        best = max(eligible, key=lambda pid: (share[pid], by_volume(pid)))
        if share[best] > 0:
            winners.append(("output", best, f"{share[best]:.0%} of tokens were output"))
    winners += _outcome_winners(query, set(totals), by_volume)
    return winners


def held_days(window: Window, person_ids) -> set[tuple[int, date]]:
    """The (person, day)s held or confirmed in the window: in no figure (usage.services.anomalies)."""
    holds = UsageHold.objects.filter(day__range=(window.start, window.end), person_id__in=person_ids)
    return set(holds.exclude(status=HoldStatus.CLEARED).values_list("person_id", "day"))


def _outcome_winners(query: RankingQuery, ranked: set[int], by_volume) -> list[tuple[str, int, str]]:
    """Outcome titles, among the people with counted usage in the window (so held days, which count for no
    one, cannot earn one either: their outcomes are left out too)."""
    if query.provider or query.model or query.model_family:  # outcomes are not per provider or model
        return []
    rows = OutcomeRecord.objects.filter(
        day__range=(query.window.start, query.window.end), identity__person_id__in=ranked
    )
    held = held_days(query.window, ranked)
    if query.team_id is not None:
        in_team = rollups_in_window(query.window, team_id=query.team_id).values_list("person_id", "day")
        allowed = set(in_team)
    prs: dict[int, int] = defaultdict(int)
    lines: dict[int, int] = defaultdict(int)
    for person_id, day, pull_requests, accepted in rows.values_list(
        "identity__person_id", "day", "pull_requests", "lines_accepted"
    ):
        if (person_id, day) in held or (query.team_id is not None and (person_id, day) not in allowed):
            continue
        prs[person_id] += pull_requests or 0
        lines[person_id] += accepted or 0
    winners = []
    for key, counts, noun in (("shipper", prs, "pull request"), ("lines", lines, "line")):
        if counts and max(counts.values()) > 0:
            best = max(counts, key=lambda pid, c=counts: (c[pid], by_volume(pid)))
            winners.append((key, best, f"{counts[best]:,} {noun}{'s' if counts[best] != 1 else ''}"))
    return winners


# --- Rank history ----------------------------------------------------------------------------------------


# Rolling and custom windows have no stored predecessors; their history is told in the calendar period of
# about their size.
HISTORY_PERIOD = {"7d": "week", "30d": "month", "90d": "quarter", "all": "month", "custom": "month"}


def history_windows(window: Window, count: int = 12) -> list[Window]:
    """The window and up to count-1 windows of the same kind before it, oldest first. Rolling, custom and
    all-time windows are told by the calendar period of about their size that contains their last day."""
    current = window_for(HISTORY_PERIOD[window.period], window.end) if window.period in HISTORY_PERIOD else window
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
    kind, on the query's metric and filters: from the kept orders, or ranked in SQL for any other window
    (filtered, or not kept)."""
    windows = history_windows(query.window, count)
    kept: dict[Window, int] = {}
    if not query.by_model and query.team_id is None:
        kept = stored_windows(windows, query.provider, query.metric)

    def rank_in(window: Window) -> int | None:
        order = stored_order(kept[window], query.metric) if window in kept else None
        if order is None:
            order = ranked_order(
                window, query.provider, query.model, query.team_id, query.metric, model_family=query.model_family
            )
        found = order.find(person_id)
        return found.rank if found and found.rank else None

    return [(window.start, _window_label(window), rank_in(window)) for window in windows]


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


def _member_sparklines(query: RankingQuery, filters: dict, people_ids: set[int]) -> dict[int, list[int]]:
    """Tokens per person for the team page's sparklines, over the window up to today (from the team's first
    day with usage for windows longer than a quarter): a point a day, or a week beyond a year."""
    rows = list(
        rollups_in_window(query.window, **filters)
        .filter(person__isnull=False)
        .values("person", "day")
        .annotate(tokens=Sum("total_tokens"))
    )
    last = min(query.window.end, org_today())
    first = query.window.start
    if query.window.days > 92:
        first = min((row["day"] for row in rows), default=last)
    if first > last:
        return {}
    weekly = (last - first).days + 1 > 366
    if weekly:
        first -= timedelta(days=first.weekday())
    size = 7 if weekly else 1
    points = (last - first).days // size + 1
    daily = {pid: [0] * points for pid in people_ids}
    for row in rows:
        if first <= row["day"] <= last:
            daily.setdefault(row["person"], [0] * points)[(row["day"] - first).days // size] += row["tokens"]
    return daily


def team_members(query: RankingQuery, team_id: int, viewer: Viewer) -> tuple[list[MemberRow], Totals]:
    """Current members of the team's subtree plus anyone with usage counted for it in the window, with
    their totals (days they were in the subtree only), share of the team's tokens and daily tokens for a
    sparkline. Only for viewers with team detail (the caller checks with usage.access)."""
    filters = {
        "provider": query.provider,
        "model": query.model,
        "model_family": query.model_family,
        "team_id": team_id,
    }
    totals = person_totals(query.window, **filters)
    subtree = team_subtree_ids([team_id])
    current = dict(
        Membership.objects.filter(team_id__in=subtree, end__isnull=True).values_list("person_id", "team__name")
    )
    people_ids = set(totals) | set(current)
    daily = _member_sparklines(query, filters, people_ids)
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
                daily=daily.get(person.pk, []),
            )
        )
    members.sort(key=lambda m: (metric_sort_key(query.metric, m.totals.metric(query.metric)), m.display_name))
    for position, member in enumerate(members, start=1):
        member.rank = position
    return members, team_total


def team_shared_usage(query: RankingQuery, team_id: int) -> Totals:
    """The usage of the shared identities of the team's subtree in the window: in the team's totals, in no
    person's (usage.models.Identity.attribution)."""
    rows = rollups_in_window(
        query.window, provider=query.provider, model=query.model, model_family=query.model_family, team_id=team_id
    ).filter(person__isnull=True)
    return Totals.of({**rows.aggregate(**_sums()), "active_days": 0})


def mix_shares(query: RankingQuery, *, person_id: int | None = None, team_id: int | None = None, field_name: str):
    """(name, tokens, share) of the window's tokens by model, model family or provider, largest first, for a
    person or a team subtree (its shared identities included). One grouped query."""
    records = rollups_in_window(
        query.window, provider=query.provider, model=query.model, model_family=query.model_family, team_id=team_id
    )
    if person_id is not None:
        records = records.filter(person_id=person_id)
    elif team_id is None:
        records = records.filter(person__isnull=False)
    rows = list(records.values(field_name).annotate(tokens=Sum("total_tokens")).filter(~Q(tokens=0)))
    grand = sum(row["tokens"] for row in rows)
    shares = [(row[field_name] or "(unknown)", row["tokens"], row["tokens"] / grand if grand else 0.0) for row in rows]
    return sorted(shares, key=lambda item: (-item[1], item[0]))


# --- Outcomes --------------------------------------------------------------------------------------------
# What the usage produced, where a source reports it (usage.models.OutcomeRecord). A ratio to tokens or cost is
# given only where the source covers the usage: every day with that provider's usage in the window has an
# outcome report, else the summary says how many days it covers.

OUTCOME_SOURCES = {"claude_code": ("anthropic", "Claude Code analytics"), "cursor_daily_usage": ("cursor", "Cursor")}


@dataclass
class OutcomeSummary:
    source: str
    label: str
    provider: str
    commits: int | None
    pull_requests: int | None
    lines_added: int | None
    lines_accepted: int | None
    usage_days: int  # (person, day)s with this provider's usage in the window
    covered_days: int  # of those, the ones the source reported
    tokens: int  # this provider's tokens in the window
    cost_usd: Decimal | None  # None: the source did not give the cost of every day

    @property
    def provider_label(self) -> str:
        return dict(Provider.choices).get(self.provider, self.provider)

    @property
    def covered(self) -> bool:
        return self.usage_days > 0 and self.covered_days == self.usage_days

    @property
    def tokens_per_accepted_line(self) -> float | None:
        return self.tokens / self.lines_accepted if self.covered and self.lines_accepted else None

    @property
    def cost_per_pull_request(self) -> Decimal | None:
        if not (self.covered and self.pull_requests) or self.cost_usd is None:
            return None
        return (self.cost_usd / self.pull_requests).quantize(Decimal("0.01"))


def _summed(values) -> int | None:
    """A sum over days where the source reports the figure; None when it never does."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def outcome_summaries(window: Window, *, person_id: int | None = None, team_id: int | None = None):
    """Per outcome source with anything in the window, for a person or a team subtree (the days each person was
    in it): the outcomes, and the provider's tokens and cost from the daily rollups for the ratios."""
    summaries = []
    for source, (provider, label) in OUTCOME_SOURCES.items():
        usage = rollups_in_window(window, provider=provider, team_id=team_id).filter(person__isnull=False)
        if person_id is not None:
            usage = usage.filter(person_id=person_id)
        used = {(row["person"], row["day"]) for row in usage.values("person", "day").distinct()}
        sums = usage.aggregate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"))
        records = OutcomeRecord.objects.filter(source=source, day__range=(window.start, window.end))
        if person_id is not None:
            records = records.filter(identity__person_id=person_id)
        else:
            records = records.filter(identity__person_id__in={pid for pid, _day in used})
        rows = list(records.values("identity__person_id", "day", *OUTCOME_FIGURES, "tokens", "cost_usd"))
        held = held_days(window, {r["identity__person_id"] for r in rows})
        rows = [r for r in rows if (r["identity__person_id"], r["day"]) not in held]  # as their usage
        if team_id is not None:  # only the days the person's usage counted for the team
            rows = [r for r in rows if (r["identity__person_id"], r["day"]) in used]
        if not rows:
            continue
        reported = {(r["identity__person_id"], r["day"]) for r in rows}
        if all(r["tokens"] is not None for r in rows):
            # The source counts the usage behind its outcomes itself (Claude Code analytics): the ratios use
            # exactly those tokens and that cost, whatever else the person used the provider for.
            costs = [r["cost_usd"] for r in rows]
            sums = {
                "tokens": sum(r["tokens"] for r in rows),
                "cost": None if None in costs else sum(costs, Decimal(0)),  # unknown on any day: unknown
            }
            used = reported
        summaries.append(
            OutcomeSummary(
                source=source,
                label=label,
                provider=provider,
                **{name: _summed(r[name] for r in rows) for name in OUTCOME_FIGURES},
                usage_days=len(used),
                covered_days=len(used & reported),
                tokens=sums["tokens"] or 0,
                cost_usd=None if sums["cost"] is None else Decimal(str(sums["cost"])).quantize(Decimal("0.000001")),
            )
        )
    return summaries
