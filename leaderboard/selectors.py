"""Read side: rankings of people and teams for a window, shared by the pages and the API.

Totals come from UsageRecord joined through Identity → Person; team totals use the membership that
covered each usage day, so a mid-window team move splits a person's usage between the two teams.
Only identities assigned to a person are ranked; unassigned usage is counted separately for admins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from usage.access import Viewer, can_see_person_detail, person_display_name, team_parents, team_subtree_ids
from usage.models import Membership, Person, Team, UsageRecord

from .windows import RankingQuery, Window

COST_REPORT_KIND = "cost"
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "total_tokens", "requests")
SUM_FIELDS = (*TOKEN_FIELDS, "cost_usd")


def _sums(prefix: str = "") -> dict:
    sums = {name: Coalesce(Sum(f"{prefix}{name}"), 0) for name in TOKEN_FIELDS}
    sums["cost_usd"] = Coalesce(Sum(f"{prefix}cost_usd"), Decimal(0))
    return sums


def usage_in_window(window: Window, *, provider: str = "", model: str = "", team_id: int | None = None) -> QuerySet:
    """Usage records in the window, filtered; with a team, only days the person was in its subtree."""
    # Cost reports (usage kind "cost": OpenAI Costs API, Anthropic cost_report) are account-level bills kept for
    # reconciliation; every usage row already carries its own billed or estimated cost, so adding them would
    # count cost twice.
    records = UsageRecord.objects.filter(day__gte=window.start, day__lte=window.end).exclude(
        usage_kind=COST_REPORT_KIND
    )
    if provider:
        records = records.filter(provider=provider)
    if model:
        records = records.filter(model=model)
    if team_id is not None:
        subtree = team_subtree_ids([team_id])
        in_team_that_day = Membership.objects.filter(
            Q(end__isnull=True) | Q(end__gte=OuterRef("day")),
            person_id=OuterRef("identity__person_id"),
            team_id__in=subtree,
            start__lte=OuterRef("day"),
        )
        records = records.filter(Exists(in_team_that_day))
    return records


@dataclass
class Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0
    requests: int = 0
    cost_usd: Decimal = Decimal(0)
    active_days: int = 0

    def metric(self, name: str):
        return getattr(self, name)

    def add(self, other: Totals) -> None:
        for name in (*SUM_FIELDS, "active_days"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _totals_from(row: dict) -> Totals:
    return Totals(**{name: row[name] for name in (*SUM_FIELDS, "active_days")})


def person_totals(
    window: Window, *, provider: str = "", model: str = "", team_id: int | None = None
) -> dict[int, Totals]:
    rows = (
        usage_in_window(window, provider=provider, model=model, team_id=team_id)
        .filter(identity__person__isnull=False)
        .values("identity__person")
        .annotate(**_sums(), active_days=Count("day", distinct=True))
    )
    return {row["identity__person"]: _totals_from(row) for row in rows}


def competition_ranks(values: list) -> list[int]:
    """Ranks for values sorted descending; ties share a rank ("1, 1, 3")."""
    ranks, previous = [], object()
    for position, value in enumerate(values, start=1):
        ranks.append(ranks[-1] if value == previous else position)
        previous = value
    return ranks


def _ranked_ids(totals: dict[int, Totals], metric: str, tie_names: dict[int, str]) -> list[tuple[int, int]]:
    ordered = sorted(totals, key=lambda pid: (-totals[pid].metric(metric), tie_names.get(pid, ""), pid))
    return list(zip(ordered, competition_ranks([totals[pid].metric(metric) for pid in ordered]), strict=True))


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


def people_ranking(query: RankingQuery, viewer: Viewer) -> list[PersonStanding]:
    """Everyone with usage in the window, ranked on the query's metric; ties share a rank. The search
    narrows the list after ranking, so a person keeps their real rank. Names, emails and costs follow
    the viewer's role (usage.access)."""
    filters = {"provider": query.provider, "model": query.model, "team_id": query.team_id}
    totals = person_totals(query.window, **filters)
    people = {
        p["id"]: p
        for p in Person.objects.filter(pk__in=totals.keys()).values(
            "id", "display_name", "email", "pseudonym", "show_name"
        )
    }
    ranked = _ranked_ids(totals, query.metric, {pid: p["display_name"] for pid, p in people.items()})
    previous_ranks: dict[int, int] = {}
    previous_window = query.window.previous()
    if previous_window is not None:
        previous_totals = person_totals(previous_window, **filters)
        previous_ranks = dict(_ranked_ids(previous_totals, query.metric, {}))
    teams = current_teams(totals.keys())
    leader_value = totals[ranked[0][0]].metric(query.metric) if ranked else 0
    search = query.search.lower()
    viewer_person_id = viewer.person.pk if viewer.person else None
    standings = []
    for person_id, rank in ranked:
        person = people[person_id]
        name = person_display_name(viewer, person_id, person["display_name"], person["pseudonym"], person["show_name"])
        if search and search not in name.lower():
            continue
        detail = can_see_person_detail(viewer, person_id)
        team_id, team_name = teams.get(person_id, (None, ""))
        value = totals[person_id].metric(query.metric)
        standings.append(
            PersonStanding(
                rank=rank,
                previous_rank=previous_ranks.get(person_id),
                person_id=person_id,
                display_name=name,
                email=person["email"] if detail else None,
                team_id=team_id,
                team_name=team_name,
                totals=totals[person_id],
                detail=detail,
                share_of_leader=float(value / leader_value) if leader_value else 0.0,
                percentile_tier=_tier(rank, len(ranked)),
                is_viewer=person_id == viewer_person_id,
            )
        )
    return standings


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
    per_member: Totals
    visible: bool
    top_person_id: int | None = None
    top_person_name: str = ""
    depth: int = 0
    children: list[int] = field(default_factory=list)


def _team_person_totals(window: Window, *, provider: str, model: str) -> dict[tuple[int, int], Totals]:
    """Totals per (team the person was in that day, person)."""
    covering = Q(identity__person__memberships__start__lte=F("day")) & (
        Q(identity__person__memberships__end__isnull=True) | Q(identity__person__memberships__end__gte=F("day"))
    )
    rows = (
        usage_in_window(window, provider=provider, model=model)
        .filter(covering)  # one filter() call, so the three conditions share one membership join
        .values("identity__person__memberships__team", "identity__person")
        .annotate(**_sums(), active_days=Count("day", distinct=True))
    )
    return {(row["identity__person__memberships__team"], row["identity__person"]): _totals_from(row) for row in rows}


def _per_member(totals: Totals, active: int) -> Totals:
    if not active:
        return Totals()
    return Totals(
        **{name: getattr(totals, name) // active for name in TOKEN_FIELDS},
        cost_usd=(totals.cost_usd / active).quantize(Decimal("0.000001")),
        active_days=totals.active_days // active,
    )


def _subtree_rollup(window: Window, query: RankingQuery, parents: dict[int, int | None]):
    by_team_person = _team_person_totals(window, provider=query.provider, model=query.model)
    ancestors_of: dict[int, list[int]] = {}
    for team_id in parents:
        chain, current = [], team_id
        while current is not None and current not in chain:
            chain.append(current)
            current = parents.get(current)
        ancestors_of[team_id] = chain
    subtree_person: dict[int, dict[int, Totals]] = {team_id: {} for team_id in parents}
    for (team_id, person_id), totals in by_team_person.items():
        for ancestor in ancestors_of.get(team_id, []):
            bucket = subtree_person[ancestor].setdefault(person_id, Totals())
            bucket.add(totals)
    return subtree_person, ancestors_of


def teams_ranking(query: RankingQuery, viewer: Viewer, *, per_capita: bool = False) -> list[TeamStanding]:
    """Every team ranked on its subtree totals (or per active member). Teams with too few active members
    show no figures to engineers (usage.access.can_see_team_figures) but keep their place."""
    from usage.access import can_see_team_figures

    parents = team_parents()
    names = dict(Team.objects.values_list("id", "name"))
    subtree_person, ancestors_of = _subtree_rollup(query.window, query, parents)
    current_members: dict[int, int] = {team_id: 0 for team_id in parents}
    for team_id in Membership.objects.filter(end__isnull=True).values_list("team_id", flat=True):
        for ancestor in ancestors_of.get(team_id, []):
            current_members[ancestor] += 1
    if query.team_id is not None:
        allowed = team_subtree_ids([query.team_id], parents)
        subtree_person = {t: v for t, v in subtree_person.items() if t in allowed}

    def team_totals(per_person: dict[int, Totals]) -> Totals:
        total = Totals()
        for totals in per_person.values():
            total.add(totals)
        return total

    totals = {team_id: team_totals(per_person) for team_id, per_person in subtree_person.items()}
    per_member = {team_id: _per_member(totals[team_id], len(subtree_person[team_id])) for team_id in totals}
    ranked_source = per_member if per_capita else totals
    ranked = _ranked_ids(ranked_source, query.metric, names)

    previous_ranks: dict[int, int] = {}
    previous_window = query.window.previous()
    if previous_window is not None:
        prev_subtree, _ = _subtree_rollup(previous_window, query, parents)
        prev_totals = {t: team_totals(p) for t, p in prev_subtree.items() if p}
        if per_capita:
            prev_totals = {t: _per_member(v, len(prev_subtree[t])) for t, v in prev_totals.items()}
        previous_ranks = dict(_ranked_ids(prev_totals, query.metric, names))

    top_people = {}
    for team_id, per_person in subtree_person.items():
        if per_person:
            top_people[team_id] = max(per_person, key=lambda pid: per_person[pid].metric(query.metric))
    people = {
        p["id"]: p
        for p in Person.objects.filter(pk__in=set(top_people.values())).values(
            "id", "display_name", "pseudonym", "show_name"
        )
    }
    standings = []
    for team_id, rank in ranked:
        active = len(subtree_person[team_id])
        visible = can_see_team_figures(viewer, team_id, active)
        top_id = top_people.get(team_id)
        top_name = ""
        if top_id is not None and visible:
            p = people[top_id]
            top_name = person_display_name(viewer, top_id, p["display_name"], p["pseudonym"], p["show_name"])
        standings.append(
            TeamStanding(
                rank=rank,
                previous_rank=previous_ranks.get(team_id),
                team_id=team_id,
                name=names[team_id],
                parent_id=parents[team_id],
                members=current_members.get(team_id, 0),
                active_members=active,
                totals=totals[team_id] if visible else Totals(),
                per_member=per_member[team_id] if visible else Totals(),
                visible=visible,
                top_person_id=top_id if visible else None,
                top_person_name=top_name,
                depth=len(ancestors_of.get(team_id, [])) - 1,
            )
        )
    return standings


def unassigned_usage(window: Window) -> tuple[int, int]:
    """(identities, total tokens) of usage in the window that no person is assigned to yet."""
    row = UsageRecord.objects.filter(
        day__gte=window.start, day__lte=window.end, identity__person__isnull=True
    ).aggregate(identities=Count("identity", distinct=True), tokens=Coalesce(Sum("total_tokens"), 0))
    return row["identities"], row["tokens"]
