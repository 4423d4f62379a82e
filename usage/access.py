"""The one place that decides who may see what (docs/architecture.md, Roles). Pages and the API both call it.

- engineer (any logged-in user): rankings of people and teams; their own full detail.
- manager (a manager of a team): full detail — cost, email, models, trends — for that team's subtree.
- admin (staff): everything, plus uploads, identity mapping and connections.
Opted-out people appear to those without detail rights under their stable pseudonym.

Every permission decision of the pages and the API is a function (or DRF permission class) here: the admin gate
(admin_required for pages, IsTokenboardAdmin for the API), person and team detail, team figures and cost,
ranking by cost (checked against the ranking a view actually computes), the raw-usage scope of managers
(usage_scope) and who sees unassigned usage. Views and selectors never test roles themselves; the role-matrix
test (tests/test_role_matrix.py) checks every URL pattern against every role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404
from rest_framework.permissions import BasePermission

from usage.figures import COST_METRICS
from usage.models import Identity, Membership, Person, Team


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

    def cache_key(self) -> str:
        """Every fact this module decides with, for answers kept per viewer (leaderboard.api.response_cache):
        the user, their role flags, their person, their managed subtree and the settings that widen or narrow
        what a role sees. Who is in the managed teams is directory data: those answers are keyed on the
        directory's version too (usage.directory)."""
        user = self.user
        return repr(
            (
                getattr(user, "pk", None),
                self.is_admin,
                bool(getattr(user, "is_superuser", False)),
                self.person.pk if self.person is not None else None,
                sorted(self.managed_team_ids),
                settings.TOKENBOARD_SHARE_SAFE,
                settings.TOKENBOARD_MIN_TEAM_SIZE,
            )
        )


def viewer_for(user) -> Viewer:
    """The viewer for a request's user, computed once per user object. A user a session names comes with theirs,
    kept beside it in the shared cache under the directory's version (usage.login.SignedInUserBackend)."""
    cached = getattr(user, "_tokenboard_viewer", None)
    if cached is not None:
        return cached
    person, managed = None, frozenset()
    if getattr(user, "is_authenticated", False):
        # The person and the teams they manage in one query (a row per team): every request asks, and a ranking
        # served from the cache (leaderboard.api.response_cache) asks little else.
        rows = list(Person.objects.filter(user=user).annotate(managed_team_id=F("managed_teams")).order_by())
        person = rows[0] if rows else None
        direct = [row.managed_team_id for row in rows if row.managed_team_id is not None]
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


def people_with_detail(viewer: Viewer) -> set[int] | None:
    """The people whose detail (real name included) the viewer sees; None means everyone (admins)."""
    if viewer.is_admin:
        return None
    people = set(viewer.managed_person_ids())
    if viewer.person is not None:
        people.add(viewer.person.pk)
    return people


def can_see_team_detail(viewer: Viewer, team_id: int) -> bool:
    """Cost, members, trends and the members export of a team (its subtree's managers and admins)."""
    return viewer.is_admin or team_id in viewer.managed_team_ids


def can_see_unassigned_usage(viewer: Viewer) -> bool:
    """Usage of identities no person is assigned to yet (the rankings' "not ranked" note): admins, who map them."""
    return viewer.is_admin


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
    """Whether the metric choice lists the cost metrics at all (the choice is then checked with
    can_rank_by_cost against the ranking actually computed, so a team filter that a page replaces or drops
    cannot pass it)."""
    return viewer.is_admin or (viewer.is_manager and not settings.TOKENBOARD_SHARE_SAFE)


COST_RANKING_REFUSED = "ranking by cost is for admins, and for managers within a team they manage (choose the team)"
COST_RANKING_REFUSED_SHARE_SAFE = "ranking by cost is for admins only in share-safe mode"


def cost_ranking_refused() -> str:
    return COST_RANKING_REFUSED_SHARE_SAFE if settings.TOKENBOARD_SHARE_SAFE else COST_RANKING_REFUSED


def require_cost_ranking(viewer: Viewer, metric: str, team_id: int | None) -> None:
    """403 for a ranking by a cost metric the viewer may not see; `team_id` is the team filter of the ranking
    computed."""
    if metric in COST_METRICS and not can_rank_by_cost(viewer, team_id):
        raise PermissionDenied(f"metric={metric}: {cost_ranking_refused()}")


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


def access_person_detail(viewer: Viewer, person_id: int) -> Person:
    """The person, only for themselves, their managers and admins (404 if none, 403 for others)."""
    person, detail = access_person(viewer, person_id)
    if not detail:
        raise PermissionDenied("Only this person, their managers and admins see their usage.")
    return person


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


def admin_required(view):
    """The admin gate of a page (uploads, imports, identities, mappings, connections): 403 for non-admins."""

    @wraps(view)
    def gated(request, *args, **kwargs):
        require_admin(viewer_for(request.user))
        return view(request, *args, **kwargs)

    return gated


class IsTokenboardAdmin(BasePermission):
    """The admin gate of an API view, checked before any lookup so a refusal discloses nothing."""

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        require_admin(viewer_for(request.user))
        return True


def require_usage_access(viewer: Viewer) -> None:
    """Raw usage records: managers (their subtree) and admins."""
    if not (viewer.is_admin or viewer.is_manager):
        raise PermissionDenied("Raw usage is for managers and admins.")


def usage_scope(
    viewer: Viewer, *, person_id: int | None = None, identity_id: int | None = None, team_id: int | None = None
) -> set[int] | None:
    """Whose raw usage records the viewer may list: None for everyone's (admins), else the people of their
    managed subtree. Asking for a person, identity or team outside it is a 403, never a silently empty list."""
    require_usage_access(viewer)
    if viewer.is_admin:
        return None
    managed = viewer.managed_person_ids()
    if person_id is not None and person_id not in managed:
        raise PermissionDenied(f"Person {person_id} is not in a team you manage.")
    if identity_id is not None:
        owner = Identity.objects.filter(pk=identity_id).values_list("person_id", flat=True).first()
        if owner not in managed:
            raise PermissionDenied(f"Identity {identity_id} does not belong to someone in a team you manage.")
    if team_id is not None and team_id not in viewer.managed_team_ids:
        raise PermissionDenied(f"Team {team_id} is not in a subtree you manage.")
    return managed


def sso_admin(groups) -> bool | None:
    """Whether a single sign-on user's groups make them an admin, decided at every SSO login (so removing them
    from the group takes admin away at their next login). None when no OIDC_ADMIN_GROUPS are configured: admins
    are then whoever is staff in the Django admin. Managers come from the org import, never from groups."""
    admin_groups = set(settings.OIDC_ADMIN_GROUPS)
    if not admin_groups:
        return None
    if isinstance(groups, str):
        groups = [groups]
    return bool(admin_groups.intersection(str(group) for group in groups or ()))


# --- Allowances and budgets (issue 13): they follow the rules of cost ----------------------------------------


def can_see_allowance(viewer: Viewer, person_id: int) -> bool:
    """A person's allowance and burn: the person, their managers and admins — never other engineers."""
    return can_see_person_detail(viewer, person_id)


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
    return people_with_detail(viewer), set(viewer.managed_team_ids)  # allowances follow person detail


def viewer_for_person(person: Person) -> Viewer:
    """What a person sees when logged in, for what is mailed to them (digests follow the pages' rules)."""
    if person.user is not None:
        return viewer_for(person.user)
    direct = list(person.managed_teams.values_list("id", flat=True))
    return Viewer(user=None, person=person, is_admin=False, managed_team_ids=frozenset(team_subtree_ids(direct)))
