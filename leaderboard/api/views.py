"""REST API v1 (issue 5): the pages' data for scripts, under the same role rules.

Each view: validate the ranking parameters (leaderboard.windows; a QueryError is a 400 naming the parameter),
ask usage.access who may see what, call a selector, render. Role outcomes per endpoint:

| endpoint | engineer | manager | admin |
| --- | --- | --- | --- |
| leaderboard/people, leaderboard/teams | everyone (emails and cost only where usage.access allows) | | |
| people/{id} | public summary; own detail | detail of people currently in their subtree | detail |
| people/{id}/usage | own only, else 403 | their subtree's people, else 403 | all |
| teams/{id} | summary (figures hidden below the minimum team size) | + members and cost for their subtree | all |
| teams/{id}/usage | 403 | their subtree, else 403 | all |
| usage | 403 | records of their subtree's people; a person, identity or team outside it is 403 | all |
| imports, identities | 403 | 403 | all |
| metric=cost_usd (leaderboards, people/{id}, teams/{id}) | 403 | with a team filter they manage, else 403 | all |
| leaderboard/people?metric=allowance_used | 403 | with `team` = a team they manage, else 403 | all |
| allowances, budgets (leaderboard.api.budgets) | own allowance | their subtree's people and teams; writes 403 | all, and writes |
| people/{id}/allowance | own only, else 403 | their subtree's people, else 403 | all |

People and teams are visible in the rankings to everyone, so an unknown id is a 404 and a known one outside
one's role a 403. The admin-only endpoints answer 403 before looking anything up, so they disclose nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from leaderboard.budgets import allowance_ranking, allowance_ranking_day
from leaderboard.insights import outcome_summaries, team_members, team_shared_usage
from leaderboard.provenance import person_provenance
from leaderboard.selectors import (
    TEAM_FILTER_HIDDEN,
    Totals,
    current_teams,
    efficiency_figures,
    people_ranking,
    team_filter_hidden,
    teams_ranking,
    usage_records_in_window,
)
from leaderboard.series import GROUPINGS, usage_series
from leaderboard.windows import ALLOWANCE_METRIC, METRICS, PERIODS, QueryError, RankingQuery, ranking_query_from
from usage.access import (
    ALLOWANCE_RANKING_REFUSED,
    IsTokenboardAdmin,
    access_person,
    access_person_detail,
    access_team,
    access_team_detail,
    can_rank_by_allowance,
    person_display_name,
    require_cost_ranking,
    usage_scope,
    viewer_for,
)
from usage.directory import CACHE_FAILURES
from usage.figures import METRIC_DEFINITIONS, TOTALS_COLUMNS
from usage.models import Identity, IdentityAttribution, ImportBatch, Person, Team, UsageRecord
from usage.parsers.registry import FORMATS, UnknownFormat, format_get
from usage.periods import org_today
from usage.services.identities import (
    identity_assign,
    identity_assignment_question,
    identity_attribute,
    identity_share,
)
from usage.services.imports import ImportRejected, import_batch_create

from . import schema as _schema  # noqa: F401  (registers the Bearer token scheme with drf-spectacular)
from .filters import IdentityFilter, ImportFilter, UsageRecordFilter
from .pagination import RankingPagination
from .response_cache import response_cached
from .serializers import (
    COST,
    IdentityAssignSerializer,
    IdentitySerializer,
    ImportCreateSerializer,
    ImportSerializer,
    PersonDetailSerializer,
    PersonSeriesSerializer,
    PersonStandingSerializer,
    TeamDetailSerializer,
    TeamSeriesSerializer,
    TeamStandingSerializer,
    UsageRecordSerializer,
)

logger = logging.getLogger(__name__)
MONEY_FIELD = serializers.DecimalField(**COST)

# --- documentation of the shared parameters and the error bodies ---------------------------------------------

ERRORS_400 = OpenApiResponse(
    response={
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "description": "Each bad parameter (or form field) and its messages.",
    },
    description='A bad parameter: the body maps each bad parameter to its messages, e.g. `{"period": ["unknown '
    "period 'fortnight'; allowed: day, week, …\"]}`.",
    examples=[
        OpenApiExample("bad period", value={"period": ["unknown period 'fortnight'; allowed: day, week, month"]}),
    ],
)
DETAIL = inline_serializer("Detail", fields={"detail": serializers.CharField()})
ERROR_401 = OpenApiResponse(DETAIL, description="No credentials, or a bad or revoked API token.")
ERROR_403 = OpenApiResponse(DETAIL, description="Outside the caller's role.")
ERROR_404 = OpenApiResponse(DETAIL, description="No such object.")
COMMON_ERRORS = {400: ERRORS_400, 401: ERROR_401, 403: ERROR_403}

WINDOW_PARAMS = [
    OpenApiParameter(
        "period",
        OpenApiTypes.STR,
        enum=list(PERIODS),
        description="Window: calendar day/week (Monday start)/month/quarter/year containing `date`, all time up to "
        "`date`, rolling 7/30/90 days ending on `date`, or `custom` (`start`–`end`). Giving `start`/`end` implies "
        "`custom`.",
    ),
    OpenApiParameter("date", OpenApiTypes.DATE, description="Any day inside the wanted period (default: today)."),
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day of a custom window (inclusive)."),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day of a custom window (inclusive, ≥ start)."),
    OpenApiParameter("provider", OpenApiTypes.STR, description="Only this provider (e.g. `openai`)."),
    OpenApiParameter(
        "model",
        OpenApiTypes.STR,
        description="Only this model: its catalog name (`Claude Sonnet 4.5`) or any spelling a source uses for it "
        "(`claude-sonnet-4-5-20250929`); a name the catalog does not map, as exported.",
    ),
    OpenApiParameter(
        "model_family", OpenApiTypes.STR, description="Only this model family of the catalog (`Claude Sonnet`)."
    ),
    OpenApiParameter(
        "team", OpenApiTypes.INT, description="A team id: restrict to the days people were in its subtree."
    ),
]
METRIC_PARAM = OpenApiParameter(
    "metric",
    OpenApiTypes.STR,
    enum=list(METRICS),
    description="What to rank on (default `total_tokens`). Efficiency metrics rank only the people above the "
    "window's minimum volume (default: the top half by total tokens); the others are left out of the ranking. "
    + " ".join(f"`{name}`: {text}" for name, text in METRIC_DEFINITIONS.items())
    + " Cost metrics (`cost_usd`, `cost_per_mtok`) follow the cost rules: admins, and managers within a team they "
    "manage (share-safe mode: admins only).",
)
PEOPLE_METRIC_PARAM = OpenApiParameter(
    "metric",
    OpenApiTypes.STR,
    enum=[*METRICS, ALLOWANCE_METRIC],
    description="What to rank on (default `total_tokens`). `allowance_used`: the share of each person's own "
    "allowance used in its current period (admins; managers with `team` set to a team they manage); people "
    "without an allowance follow with `rank` null. Its rows carry `allowance_used`, `period`, `allowance_*` and "
    "`used_*` instead of the totals.",
)
RANKING_PARAMS = [*WINDOW_PARAMS, METRIC_PARAM]
GROUP_BY_PARAM = OpenApiParameter(
    "group_by", OpenApiTypes.STR, enum=list(GROUPINGS), description="Split of the series (default `model`)."
)
SEARCH_PARAM = OpenApiParameter(
    "q", OpenApiTypes.STR, description="Only names containing this text (people keep their real rank)."
)
PER_CAPITA_PARAM = OpenApiParameter(
    "per_capita", OpenApiTypes.BOOL, description="`true`: rank on figures per active member (default `false`)."
)


def ranking_query(request, *, default_period: str = "month", allowance_metric: bool = False) -> RankingQuery:
    """The shared ranking parameters, validated (leaderboard.windows); a bad one is a 400 that names it.
    `metric=allowance_used` ranks people only (leaderboard/people)."""
    try:
        query = ranking_query_from(request.query_params, default_period=default_period)
    except QueryError as error:
        raise ValidationError({error.param: [error.message]}) from None
    if query.metric == ALLOWANCE_METRIC and not allowance_metric:
        raise ValidationError({"metric": [f"{ALLOWANCE_METRIC} ranks people only: use /api/v1/leaderboard/people/"]})
    if query.team_id is not None and not Team.objects.filter(pk=query.team_id).exists():
        raise ValidationError({"team": [f"no team with id {query.team_id}"]})
    if team_filter_hidden(query, viewer_for(request.user)):
        raise PermissionDenied(f"team={query.team_id}: {TEAM_FILTER_HIDDEN}")
    return query


def cost_checked(query: RankingQuery, viewer) -> RankingQuery:
    """The query of the ranking a view computes (its team filter as computed), if the viewer may see it."""
    require_cost_ranking(viewer, query.metric, query.team_id)
    return query


def _bool_param(request, name: str) -> bool:
    raw = request.query_params.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise ValidationError({name: [f"{raw!r} is not a boolean; use true or false"]})


def _window(window) -> dict:
    return {"period": window.period, "start": window.start, "end": window.end, "label": window.label}


def _money(value):
    """A dollar amount as the API renders it: a string with 6 places (serializers.COST)."""
    return None if value is None else MONEY_FIELD.to_representation(value)


def _totals(totals: Totals, *, cost: bool) -> dict:
    """The figures as the serializers render them (TotalsSerializer, in its order): the rankings send these rows
    as they are."""
    data = {name: getattr(totals, name) for name in TOTALS_COLUMNS}
    if cost:
        data["cost_usd"] = _money(totals.cost_usd)
    data["active_days"] = totals.active_days
    data.update(efficiency_figures(totals, cost=cost))
    if "cost_per_mtok" in data:
        data["cost_per_mtok"] = _money(data["cost_per_mtok"])
    return data


def outcome_dict(summary, *, cost: bool) -> dict:
    data = {
        name: getattr(summary, name)
        for name in (
            "source",
            "label",
            "commits",
            "pull_requests",
            "lines_added",
            "lines_accepted",
            "usage_days",
            "covered_days",
            "tokens",
            "tokens_per_accepted_line",
        )
    }
    if cost:
        data.update(cost_usd=summary.cost_usd, cost_per_pull_request=summary.cost_per_pull_request)
    return data


def _hidden_totals() -> dict:
    return dict.fromkeys(_totals(Totals(), cost=False), None)


def _team_ref(team_id, name) -> dict | None:
    return None if team_id is None else {"id": team_id, "name": name}


# --- throttling ------------------------------------------------------------------------------------------


class WriteThrottle(ScopedRateThrottle):
    """The `writes` scope's counts live in the cache (Redis in production). It fails open: a cache that is down
    lets the write through (logged) rather than turning every API write into a 500; the view itself needs no
    cache, and an upload is stored in the database and file storage."""

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except CACHE_FAILURES:
            logger.warning("write throttle: the cache is unavailable; letting the request through", exc_info=True)
            return True


class WriteThrottleMixin:
    """Unsafe methods are throttled with the `writes` scope (settings.REST_FRAMEWORK)."""

    throttle_scope = "writes"

    def get_throttles(self):
        if self.request.method in SAFE_METHODS:
            return []
        return [WriteThrottle()]


# --- rankings ------------------------------------------------------------------------------------------------


def person_standing_dict(standing) -> dict:
    person = {"id": standing.person_id, "display_name": standing.display_name}
    if standing.email is not None:
        person["email"] = standing.email
    person["team"] = _team_ref(standing.team_id, standing.team_name)
    return {
        "rank": standing.rank,
        "previous_rank": standing.previous_rank,
        "person": person,
        **_totals(standing.totals, cost=standing.detail),
    }


class PeopleRankingView(GenericAPIView):
    pagination_class = RankingPagination
    # A ranking is a list built by the selectors, not a queryset, and takes no DRF filters; the browsable API
    # still asks for a queryset to build its filter form.
    queryset = Person.objects.none()
    filter_backends = []
    serializer_class = PersonStandingSerializer

    @extend_schema(
        operation_id="leaderboard_people",
        summary="Ranked people for a window",
        description="Everyone with usage in the window, ranked on `metric`; ties share a rank. `email` and "
        "`cost_usd` appear only where the caller may see that person's detail (themselves; managers for their "
        "subtree; admins). Opted-out people appear to others under their stable pseudonym. Only usage of "
        "identities assigned to a person is ranked.",
        parameters=[*WINDOW_PARAMS, PEOPLE_METRIC_PARAM, SEARCH_PARAM],
        responses={200: PersonStandingSerializer(many=True), **COMMON_ERRORS},
        tags=["leaderboard"],
    )
    @response_cached
    def get(self, request):
        query = cost_checked(ranking_query(request, allowance_metric=True), viewer_for(request.user))
        if query.metric == ALLOWANCE_METRIC:
            return self._by_allowance_used(request, query)
        standings = people_ranking(query, viewer_for(request.user))
        page = self.paginate_queryset(standings)
        # The rows are built as the serializer renders them (tests/leaderboard/api/test_rendering.py): running it
        # field by field took 2–3 ms of a 15 ms request.
        return self.get_paginated_response([person_standing_dict(s) for s in page])

    def _by_allowance_used(self, request, query):
        """People with an allowance ranked by the share used in their current period (the period containing the
        window's last day, up to today); then everyone without one, with `rank` and `allowance_used` null."""
        viewer = viewer_for(request.user)
        if not can_rank_by_allowance(viewer, query.team_id):
            raise PermissionDenied(f"metric={ALLOWANCE_METRIC}: {ALLOWANCE_RANKING_REFUSED}")
        ranked, apart = allowance_ranking(
            allowance_ranking_day(query.window, org_today()), viewer, team_id=query.team_id, search=query.search
        )
        page = self.paginate_queryset([*ranked, *apart])
        return self.get_paginated_response([allowance_standing_dict(s) for s in page])


def allowance_standing_dict(standing) -> dict:
    person = {"id": standing.person_id, "display_name": standing.display_name}
    if standing.email is not None:
        person["email"] = standing.email
    person["team"] = _team_ref(standing.team_id, standing.team_name)
    visible = standing.email is not None and standing.burn is not None
    return {
        "rank": standing.rank,
        "person": person,
        "allowance_used": standing.used_percent if visible else None,
        "period": _window(standing.period) if visible else None,
        "allowance_tokens": standing.allowance.tokens if visible else None,
        "allowance_usd": standing.allowance.usd if visible else None,
        "used_tokens": standing.burn.used_tokens if visible else None,
        "used_usd": standing.burn.used_usd if visible else None,
    }


def team_standing_dict(standing) -> dict:
    cost = standing.visible and standing.detail
    if standing.visible:
        figures = _totals(standing.totals, cost=cost)
        per_member = _totals(standing.per_member, cost=cost)
    else:
        figures, per_member = _hidden_totals(), _hidden_totals()
    top = None
    if standing.visible and standing.top_person_id is not None:
        top = {"id": standing.top_person_id, "display_name": standing.top_person_name}
    return {
        "rank": standing.rank,
        "previous_rank": standing.previous_rank,
        "team": {"id": standing.team_id, "name": standing.name},
        "parent_id": standing.parent_id,
        "members": standing.members,
        "active_members": standing.active_members,
        "figures_visible": standing.visible,
        **figures,
        "per_member": per_member,
        "top_person": top,
    }


class TeamsRankingView(GenericAPIView):
    pagination_class = RankingPagination
    queryset = Team.objects.none()  # as PeopleRankingView
    filter_backends = []
    serializer_class = TeamStandingSerializer

    @extend_schema(
        operation_id="leaderboard_teams",
        summary="Ranked teams for a window",
        description="Every team ranked on its subtree's totals (usage counts for the team a person was in on "
        "each day), or per active member with `per_capita=true`. Teams with fewer active members than "
        f"TOKENBOARD_MIN_TEAM_SIZE (default {settings.TOKENBOARD_MIN_TEAM_SIZE}) keep their rank but show no "
        "figures to people who do not manage them. `cost_usd` appears for the caller's managed teams (admins: "
        "all). `team` restricts the list to that subtree.",
        parameters=[*RANKING_PARAMS, PER_CAPITA_PARAM],
        responses={200: TeamStandingSerializer(many=True), **COMMON_ERRORS},
        tags=["leaderboard"],
    )
    @response_cached
    def get(self, request):
        query = cost_checked(ranking_query(request), viewer_for(request.user))
        per_capita = _bool_param(request, "per_capita")
        viewer = viewer_for(request.user)
        page = self.paginate_queryset(teams_ranking(query, viewer, per_capita=per_capita))
        return self.get_paginated_response([team_standing_dict(s) for s in page])  # as PeopleRankingView


# --- people and teams --------------------------------------------------------------------------------------


class PersonDetailView(GenericAPIView):
    serializer_class = PersonDetailSerializer
    pagination_class = None

    @extend_schema(
        operation_id="person_detail",
        summary="A person and their figures for a window",
        description="Everyone sees the public summary (name or pseudonym, team, rank, token figures). Email, cost "
        "and identities appear with detail rights: the person themselves, managers of their current team's "
        "subtree, admins. An unknown id is a 404.",
        parameters=RANKING_PARAMS,
        responses={200: PersonDetailSerializer, 404: ERROR_404, **COMMON_ERRORS},
        tags=["people"],
    )
    def get(self, request, pk: int):
        viewer = viewer_for(request.user)
        person, detail = access_person(viewer, pk)
        query = cost_checked(replace(ranking_query(request), search=""), viewer)
        mine = people_ranking(query, viewer).standing_of(person.pk)
        totals = mine.totals if mine else Totals()
        team_id, team_name = current_teams([person.pk]).get(person.pk, (None, ""))
        data = {
            "id": person.pk,
            "display_name": person_display_name(
                viewer, person.pk, person.display_name, person.pseudonym, person.show_name
            ),
            "team": _team_ref(team_id, team_name),
            "active": person.active,
            "detail": detail,
            "window": _window(query.window),
            "rank": mine.rank or None if mine else None,  # 0: under an efficiency metric's minimum volume
            "totals": _totals(totals, cost=detail),
            "outcomes": [outcome_dict(o, cost=detail) for o in outcome_summaries(query.window, person_id=person.pk)],
        }
        if detail:
            data["email"] = person.email
            data["identities"] = [
                {"id": i.pk, "provider": i.provider, "kind": i.kind, "value": i.value, "label": i.label}
                for i in person.identities.order_by("provider", "kind", "value")
            ]
        return Response(self.get_serializer(data).data)


def _series_dict(series, *, cost: bool) -> dict:
    shares = series.group_shares()
    return {
        "window": _window(series.window),
        "group_by": series.group_by,
        "days": series.days,
        "daily": [{"day": day, **_totals(series.daily[day], cost=cost)} for day in series.days],
        "groups": [
            {
                "name": name,
                "total_tokens": tokens,
                "share": share,
                "daily": [series.by_group[name][day] for day in series.days],
            }
            for name, tokens, share in shares
        ],
        "totals": _totals(series.totals, cost=cost),
        "longest_streak": series.longest_streak(),
    }


def _group_by(request) -> str:
    group_by = request.query_params.get("group_by", "").strip() or "model"
    if group_by not in GROUPINGS:
        raise ValidationError({"group_by": [f"unknown grouping {group_by!r}; allowed: {', '.join(GROUPINGS)}"]})
    return group_by


class PersonUsageView(GenericAPIView):
    serializer_class = PersonSeriesSerializer
    pagination_class = None

    @extend_schema(
        operation_id="person_usage",
        summary="A person's usage as a daily time series",
        description="Daily totals (every day of the window, zeros included) and the split by model, model family or provider. "
        "For the person themselves, managers of their subtree and admins; others get 403. Default period: 30d.",
        parameters=[*WINDOW_PARAMS, GROUP_BY_PARAM],
        responses={200: PersonSeriesSerializer, 404: ERROR_404, **COMMON_ERRORS},
        tags=["people"],
    )
    def get(self, request, pk: int):
        viewer = viewer_for(request.user)
        person = access_person_detail(viewer, pk)
        query = ranking_query(request, default_period="30d")
        series = usage_series(
            query.window,
            person_id=person.pk,
            team_id=query.team_id,
            group_by=_group_by(request),
            provider=query.provider,
            model=query.model,
            model_family=query.model_family,
        )
        team_id, team_name = current_teams([person.pk]).get(person.pk, (None, ""))
        data = {
            **_series_dict(series, cost=True),
            "provenance": person_provenance(person.pk, query.window, provider=query.provider, model=query.model),
            "person": {
                "id": person.pk,
                "display_name": person.display_name,
                "email": person.email,
                "team": _team_ref(team_id, team_name),
            },
        }
        return Response(self.get_serializer(data).data)


class TeamDetailView(GenericAPIView):
    serializer_class = TeamDetailSerializer
    pagination_class = None

    @extend_schema(
        operation_id="team_detail",
        summary="A team, its figures for a window and (for its managers) its members",
        description="Everyone sees the summary; figures are null when the team has too few active members for "
        "the caller (see figures_visible). Managers of the team's subtree and admins also get `cost_usd` and "
        "`member_list` (current members with their figures while in the subtree). An unknown id is a 404.",
        parameters=[p for p in RANKING_PARAMS if p.name != "team"],
        responses={200: TeamDetailSerializer, 404: ERROR_404, **COMMON_ERRORS},
        tags=["teams"],
    )
    def get(self, request, pk: int):
        viewer = viewer_for(request.user)
        team, detail = access_team(viewer, pk)
        query = cost_checked(replace(ranking_query(request), team_id=team.pk), viewer)
        standing = teams_ranking(query, viewer).of([team.pk])[team.pk]
        data = {
            "id": team.pk,
            "name": team.name,
            "parent": _team_ref(team.parent_id, team.parent.name if team.parent_id else ""),
            "children": [{"id": c.pk, "name": c.name} for c in team.children.order_by("name")],
            "detail": detail,
            "window": _window(query.window),
            "members": standing.members,
            "active_members": standing.active_members,
            "figures_visible": standing.visible,
            "totals": _totals(standing.totals, cost=detail) if standing.visible else _hidden_totals(),
            "shared_totals": _totals(team_shared_usage(query, team.pk), cost=detail)
            if standing.visible
            else _hidden_totals(),
            "outcomes": [outcome_dict(o, cost=detail) for o in outcome_summaries(query.window, team_id=team.pk)]
            if standing.visible
            else [],
        }
        if detail:
            data["member_list"] = self._members(team, query, viewer)
        return Response(self.get_serializer(data).data)

    @staticmethod
    def _members(team: Team, query: RankingQuery, viewer) -> list[dict]:
        """The team page's members table: current members and everyone whose usage counted for the subtree in
        the window (moved out since), so the members' figures add up to the team's."""
        members, _total = team_members(replace(query, team_id=team.pk), team.pk, viewer)
        teams = current_teams([m.person_id for m in members])
        return [
            {
                "id": m.person_id,
                "display_name": m.display_name,
                "email": m.email,
                "team": _team_ref(*teams[m.person_id]) if m.person_id in teams else None,
                **_totals(m.totals, cost=True),
            }
            for m in sorted(members, key=lambda m: (m.display_name, m.person_id))
        ]


class TeamUsageView(GenericAPIView):
    serializer_class = TeamSeriesSerializer
    pagination_class = None

    @extend_schema(
        operation_id="team_usage",
        summary="A team subtree's usage as a daily time series",
        description="Usage of the days each member was in the subtree. For managers of the team's subtree and "
        "admins; others get 403. Default period: 30d.",
        parameters=[*[p for p in WINDOW_PARAMS if p.name != "team"], GROUP_BY_PARAM],
        responses={200: TeamSeriesSerializer, 404: ERROR_404, **COMMON_ERRORS},
        tags=["teams"],
    )
    def get(self, request, pk: int):
        viewer = viewer_for(request.user)
        team = access_team_detail(viewer, pk)
        query = ranking_query(request, default_period="30d")
        series = usage_series(
            query.window,
            team_id=team.pk,
            group_by=_group_by(request),
            provider=query.provider,
            model=query.model,
            model_family=query.model_family,
        )
        data = {**_series_dict(series, cost=True), "team": {"id": team.pk, "name": team.name}}
        return Response(self.get_serializer(data).data)


# --- raw usage -----------------------------------------------------------------------------------------------


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None  # anything else: the FilterSet's 400


class UsageListView(GenericAPIView):
    serializer_class = UsageRecordSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = UsageRecordFilter
    queryset = UsageRecord.objects.none()  # for the schema's filter parameters; get() builds the real one

    @extend_schema(
        operation_id="usage_list",
        summary="Raw normalized usage records",
        description="One record per (day, provider, account, identity, model, usage kind), newest day first. "
        "Admins see every record (unassigned identities included); managers the records of the people currently "
        "in their managed subtree, and asking for a person, identity or team outside it is a 403 (never a "
        "silently empty list); engineers get 403. With `assigned=true` the records are exactly what "
        "/leaderboard/people/ sums for the same window and filters.",
        parameters=WINDOW_PARAMS,
        responses={200: UsageRecordSerializer(many=True), **COMMON_ERRORS},
        tags=["usage"],
    )
    def get(self, request):
        # The scope first: a refusal (403) comes before any validation of the other parameters.
        viewer = viewer_for(request.user)
        scope = usage_scope(
            viewer,
            person_id=_int_param(request, "person"),
            identity_id=_int_param(request, "identity"),
            team_id=_int_param(request, "team"),
        )
        query = ranking_query(request)
        records = usage_records_in_window(
            query.window,
            provider=query.provider,
            model=query.model,
            model_family=query.model_family,
            team_id=query.team_id,
        )
        if scope is not None:
            # Their people's records, and the shared identities of their teams (counted in those teams' totals).
            records = records.filter(
                Q(identity__person_id__in=scope)
                | Q(
                    identity__attribution=IdentityAttribution.SHARED,
                    identity__shared_team_id__in=viewer.managed_team_ids,
                )
            )
        records = self.filter_queryset(records).select_related("identity", "identity__person").order_by("-day", "pk")
        page = self.paginate_queryset(records)
        data = [self._record(r) for r in page]
        return self.get_paginated_response(self.get_serializer(data, many=True).data)

    @staticmethod
    def _record(record: UsageRecord) -> dict:
        identity, person = record.identity, record.identity.person
        return {
            "id": record.pk,
            "day": record.day,
            "provider": record.provider,
            "account": record.account,
            "identity": {
                "id": identity.pk,
                "provider": identity.provider,
                "kind": identity.kind,
                "value": identity.value,
                "label": identity.label,
            },
            "person": None if person is None else {"id": person.pk, "display_name": person.display_name},
            "model": record.model,
            "usage_kind": record.usage_kind,
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
            "cache_read_tokens": record.cache_read_tokens,
            "cache_write_tokens": record.cache_write_tokens,
            "total_tokens": record.total_tokens,
            "requests": record.requests,
            "cost_usd": record.cost_usd,
            "cost_source": record.cost_source,
            "import_id": record.import_batch_id,
        }


# --- imports -------------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        operation_id="imports_list",
        summary="Imports, newest first",
        description="Admins only (403 for others).",
        responses={200: ImportSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(
        operation_id="imports_detail",
        summary="An import: status, counts, period covered, errors with line numbers",
        description="Admins only (403 for others, before any lookup).",
        responses={200: ImportSerializer, 404: ERROR_404, 401: ERROR_401, 403: ERROR_403},
    ),
)
@extend_schema(tags=["imports"])
class ImportViewSet(WriteThrottleMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsTokenboardAdmin]
    serializer_class = ImportSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ImportFilter
    parser_classes = [MultiPartParser, FormParser]
    queryset = ImportBatch.objects.select_related("started_by").order_by("-created_at", "-pk")

    @extend_schema(
        operation_id="imports_create",
        summary="Upload an export: store it and queue it for processing",
        description="Multipart form with `file` (and optional `format`, `import_good_rows`, `attribute_to`). "
        "The file is stored before the answer; 202 carries the queued import and its `status_url` (also in the "
        f"Location header). Files over TOKENBOARD_UPLOAD_MAX_BYTES (default 512 MiB) get 413. Known formats: "
        f"{', '.join(sorted(FORMATS))}. Throttled (scope `writes`).",
        request={"multipart/form-data": ImportCreateSerializer},
        responses={
            202: ImportSerializer,
            413: OpenApiResponse(DETAIL, description="The file is larger than the upload limit."),
            429: OpenApiResponse(DETAIL, description="Too many writes; retry later."),
            **COMMON_ERRORS,
        },
    )
    def create(self, request):
        form = ImportCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        limit = settings.TOKENBOARD_UPLOAD_MAX_BYTES
        if upload.size > limit:
            return Response(
                {"detail": f"{upload.name}: the file is larger than the upload limit of {limit:,} bytes"},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        requested = (form.validated_data.get("format") or "").strip()
        if requested:
            try:
                format_get(requested)
            except UnknownFormat as error:
                raise ValidationError({"format": [str(error)]}) from None
        try:
            batch = import_batch_create(
                file=upload,
                name=upload.name,
                user=request.user,
                requested_format=requested,
                import_good_rows=form.validated_data["import_good_rows"],
                attribute_to=form.validated_data.get("attribute_to"),
            )
        except ImportRejected as error:
            raise ValidationError({"file": [str(error)]}) from None
        body = ImportSerializer(batch, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


# --- identities ----------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        operation_id="identities_list",
        summary="Identities with their token totals",
        description="How providers name who used them, with all-time token totals; `assigned=false` lists the "
        "ones no person is assigned to yet, largest first. Admins only (403 for others).",
        responses={200: IdentitySerializer(many=True), **COMMON_ERRORS},
    ),
    partial_update=extend_schema(
        operation_id="identities_assign",
        summary="Assign an identity to a person (or unassign it); mark it personal, shared or service",
        description='Body `{"person": <person id>}` or `{"person": null}`, and/or `{"attribution": "shared", '
        '"team": <team id>}` (or `"personal"`, `"service"`). All the identity\'s past usage follows it. Assigning '
        'to a person an identity that holds more than 1% of the last 30 days\' tokens needs `"confirm": true`: '
        "without it the answer is 409, naming the share, and nothing changes. Admins only (403 for others, before "
        "any lookup). Throttled (scope `writes`).",
        request=IdentityAssignSerializer,
        responses={
            200: IdentitySerializer,
            404: ERROR_404,
            409: OpenApiResponse(DETAIL, description="The identity's share of the tokens needs `confirm`."),
            429: OpenApiResponse(DETAIL, description="Too many writes; retry later."),
            **COMMON_ERRORS,
        },
    ),
)
@extend_schema(tags=["identities"])
class IdentityViewSet(WriteThrottleMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsTokenboardAdmin]
    serializer_class = IdentitySerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = IdentityFilter
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return (
            Identity.objects.select_related("person", "shared_team")
            .annotate(
                total_tokens=Coalesce(Sum("usage_records__total_tokens"), 0),
                records=Count("usage_records"),
                first_day=Min("usage_records__day"),
                last_day=Max("usage_records__day"),
            )
            .order_by("-total_tokens", "provider", "kind", "value", "pk")
        )

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([self._identity(i) for i in page])

    def partial_update(self, request, pk=None):
        identity = get_object_or_404(Identity, pk=pk)
        form = IdentityAssignSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        # Assigning a person without saying otherwise makes the identity theirs (personal), as on the page.
        default = IdentityAttribution.PERSONAL if data.get("person") is not None else identity.attribution
        attribution = data.get("attribution", default)
        if "person" in data and attribution == IdentityAttribution.PERSONAL and not data["confirm"]:
            question = identity_assignment_question(identity, data["person"])
            if question:
                share = identity_share(identity)
                return Response(
                    {"detail": question, "share": f"{share.share:.4f}", "confirm_required": True},
                    status=status.HTTP_409_CONFLICT,
                )
        with transaction.atomic():
            if "person" in data:
                identity_assign(identity=identity, person=data["person"])
            if attribution != identity.attribution or "team" in data:
                identity_attribute(identity=identity, attribution=attribution, team=data.get("team"))
        return Response(self._identity(self.get_queryset().get(pk=identity.pk)))

    def _identity(self, identity) -> dict:
        person = identity.person
        data = {
            "id": identity.pk,
            "provider": identity.provider,
            "kind": identity.kind,
            "value": identity.value,
            "label": identity.label,
            "owner_email": identity.owner_email,
            "owner_user_id": identity.owner_user_id,
            "attribution": identity.attribution,
            "shared_team": _team_ref(identity.shared_team_id, getattr(identity.shared_team, "name", "")),
            "person": None if person is None else {"id": person.pk, "display_name": person.display_name},
            "total_tokens": identity.total_tokens,
            "records": identity.records,
            "first_day": identity.first_day,
            "last_day": identity.last_day,
            "created_at": identity.created_at,
        }
        return IdentitySerializer(data).data
