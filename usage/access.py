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
    cost, managers only within their own subtree (team filter set to a team they manage)."""
    return viewer.is_admin or (team_id is not None and team_id in viewer.managed_team_ids)


COST_RANKING_REFUSED = "ranking by cost is for admins, and for managers within a team they manage (choose the team)"


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


def require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise PermissionDenied("Admins only.")


def require_usage_access(viewer: Viewer) -> None:
    """Raw usage records: managers (their subtree) and admins."""
    if not (viewer.is_admin or viewer.is_manager):
        raise PermissionDenied("Raw usage is for managers and admins.")


# --- Allowances and budgets (issue 13): they follow the rules of cost ----------------------------------------


def can_see_allowance(viewer: Viewer, person_id: int) -> bool:
    """A person's allowance and burn: the person, their managers and admins — never other engineers."""
    return can_see_person_detail(viewer, person_id)


def can_see_team_budget(viewer: Viewer, team_id: int) -> bool:
    return can_see_team_detail(viewer, team_id)


def can_rank_by_allowance(viewer: Viewer, team_id: int | None) -> bool:
    """The order of allowance use reveals it like the order of cost does, so the same rule applies."""
    return can_rank_by_cost(viewer, team_id)


ALLOWANCE_RANKING_REFUSED = (
    "ranking by allowance used is for admins, and for managers within a team they manage (choose the team)"
)


def can_manage_budgets(viewer: Viewer) -> bool:
    return viewer.is_admin


def visible_allowance_owner_ids(viewer: Viewer) -> tuple[set[int] | None, set[int] | None]:
    """(person ids, team ids) whose allowances and budgets the viewer may read; None means all (admins)."""
    if viewer.is_admin:
        return None, None
    people = set(viewer.managed_person_ids())
    if viewer.person is not None:
        people.add(viewer.person.pk)
    return people, set(viewer.managed_team_ids)


def viewer_for_person(person: Person) -> Viewer:
    """What a person sees when logged in, for what is mailed to them (digests follow the pages' rules)."""
    if person.user is not None:
        return viewer_for(person.user)
    direct = list(person.managed_teams.values_list("id", flat=True))
    return Viewer(user=None, person=person, is_admin=False, managed_team_ids=frozenset(team_subtree_ids(direct)))
