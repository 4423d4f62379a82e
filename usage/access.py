"""The one place that decides who may see what (docs/architecture.md, Roles). Pages and the API both call it.

- engineer (any logged-in user): rankings of people and teams; their own full detail.
- manager (a manager of a team): full detail — cost, email, models, trends — for that team's subtree.
- admin (staff): everything, plus uploads, identity mapping and connections.
Opted-out people appear to those without detail rights under their stable pseudonym.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

from usage.models import Membership, Person, Team


def team_parents() -> dict[int, int | None]:
    return dict(Team.objects.values_list("id", "parent_id"))


def team_subtree_ids(root_ids, parents: dict[int, int | None] | None = None) -> set[int]:
    """The given teams and every team below them."""
    parents = team_parents() if parents is None else parents
    children: dict[int | None, list[int]] = {}
    for team_id, parent_id in parents.items():
        children.setdefault(parent_id, []).append(team_id)
    result, stack = set(), list(root_ids)
    while stack:
        team_id = stack.pop()
        if team_id in result:
            continue
        result.add(team_id)
        stack.extend(children.get(team_id, []))
    return result


@dataclass
class Viewer:
    user: object
    person: Person | None
    is_admin: bool
    managed_team_ids: frozenset[int] = frozenset()
    _managed_people: set[int] | None = field(default=None, repr=False)

    @property
    def is_manager(self) -> bool:
        return bool(self.managed_team_ids)

    @property
    def role(self) -> str:
        return "admin" if self.is_admin else "manager" if self.is_manager else "engineer"

    def managed_person_ids(self) -> set[int]:
        """People whose current team is in this viewer's managed subtree."""
        if self._managed_people is None:
            self._managed_people = (
                set(
                    Membership.objects.filter(team_id__in=self.managed_team_ids, end__isnull=True).values_list(
                        "person_id", flat=True
                    )
                )
                if self.managed_team_ids
                else set()
            )
        return self._managed_people


def viewer_for(user) -> Viewer:
    """The viewer for a request's user, computed once per user object."""
    cached = getattr(user, "_tokenboard_viewer", None)
    if cached is not None:
        return cached
    person = Person.objects.filter(user=user).first() if getattr(user, "is_authenticated", False) else None
    managed = frozenset()
    if person is not None:
        direct = list(person.managed_teams.values_list("id", flat=True))
        managed = frozenset(team_subtree_ids(direct)) if direct else frozenset()
    viewer = Viewer(user=user, person=person, is_admin=bool(getattr(user, "is_staff", False)), managed_team_ids=managed)
    user._tokenboard_viewer = viewer
    return viewer


def can_see_person_detail(viewer: Viewer, person_id: int) -> bool:
    """Cost, email, models, identities and trends of a person."""
    if viewer.is_admin:
        return True
    if viewer.person is not None and viewer.person.pk == person_id:
        return True
    return person_id in viewer.managed_person_ids()


def can_see_team_detail(viewer: Viewer, team_id: int) -> bool:
    return viewer.is_admin or team_id in viewer.managed_team_ids


def can_see_team_figures(viewer: Viewer, team_id: int, active_members: int) -> bool:
    """Engineers see a team's figures only if enough members were active, so no one is singled out."""
    return can_see_team_detail(viewer, team_id) or active_members >= settings.TOKENBOARD_MIN_TEAM_SIZE


def can_rank_by_cost(viewer: Viewer, team_id: int | None) -> bool:
    """Ranking by cost reveals the order of costs even with the figures hidden: admins may rank everyone by
    cost, managers only within their own subtree (team filter set to a team they manage). In share-safe mode
    (settings.TOKENBOARD_SHARE_SAFE) only admins see cost-ranked orders."""
    if viewer.is_admin:
        return True
    if settings.TOKENBOARD_SHARE_SAFE:
        return False
    return team_id is not None and team_id in viewer.managed_team_ids


def offers_cost_ranking(viewer: Viewer) -> bool:
    """Whether the metric choice lists the cost metrics (they may still need a team filter)."""
    return viewer.is_admin or (viewer.is_manager and not settings.TOKENBOARD_SHARE_SAFE)


COST_RANKING_REFUSED = "ranking by cost is for admins, and for managers within a team they manage (choose the team)"
COST_RANKING_REFUSED_SHARE_SAFE = "ranking by cost is for admins only in share-safe mode"


def cost_ranking_refused() -> str:
    return COST_RANKING_REFUSED_SHARE_SAFE if settings.TOKENBOARD_SHARE_SAFE else COST_RANKING_REFUSED


def person_display_name(viewer: Viewer, person_id: int, display_name: str, pseudonym: str, show_name: bool) -> str:
    if show_name or can_see_person_detail(viewer, person_id):
        return display_name
    return pseudonym


def access_person(viewer: Viewer, person_id: int) -> tuple[Person, bool]:
    """The person (404 if none) and whether the viewer sees their detail. Everyone sees the public summary."""
    person = Person.objects.filter(pk=person_id).first()
    if person is None:
        raise Http404("No such person.")
    return person, can_see_person_detail(viewer, person.pk)


def access_team(viewer: Viewer, team_id: int) -> tuple[Team, bool]:
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise Http404("No such team.")
    return team, can_see_team_detail(viewer, team.pk)


def access_team_detail(viewer: Viewer, team_id: int) -> Team:
    """The team, only for its managers and admins (403 for others)."""
    team, detail = access_team(viewer, team_id)
    if not detail:
        raise PermissionDenied("Only this team's managers and admins see its detail.")
    return team


def can_note_hold(viewer: Viewer, person_id: int) -> bool:
    """Only the person whose day is held adds a note to it (usage.views_review)."""
    return viewer.person is not None and viewer.person.pk == person_id


def require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise PermissionDenied("Admins only.")


def require_usage_access(viewer: Viewer) -> None:
    """Raw usage records: managers (their subtree) and admins."""
    if not (viewer.is_admin or viewer.is_manager):
        raise PermissionDenied("Raw usage is for managers and admins.")
