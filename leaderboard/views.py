"""Pages. Each view: parse the GET form, check access (usage.access), call a selector, render the page —
or only its table partial for an htmx request. Bad parameters never fail a page: the bad one is dropped,
the rest of the state kept, and a message says what was ignored."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from itertools import chain

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods

from usage.access import (
    ALLOWANCE_RANKING_REFUSED,
    access_person,
    access_team,
    access_team_detail,
    can_rank_by_allowance,
    can_rank_by_cost,
    can_see_unassigned_usage,
    cost_ranking_refused,
    offers_cost_ranking,
    person_display_name,
    team_parents,
    viewer_for,
)
from usage.auth import api_token_create, api_token_revoke, token_lifetime_choices
from usage.csv_export import csv_response
from usage.figures import COST_METRICS, EFFICIENCY_METRICS, METRIC_DEFINITIONS, TOTALS_COLUMNS
from usage.models import (
    ApiToken,
    HoldStatus,
    Identity,
    NotificationPreference,
    Provider,
    Team,
    UsageHold,
    UsageRecord,
)
from usage.periods import ROLLING_PERIODS

from . import charts
from .insights import (
    HISTORY_PERIOD,
    mix_shares,
    movers_from,
    outcome_summaries,
    rank_history,
    team_members,
    team_shared_usage,
    window_titles,
)
from .overview import activity_calendar, org_comparison, source_freshness
from .provenance import person_provenance
from .selectors import (
    TEAM_FILTER_HIDDEN,
    current_teams,
    efficiency_figures,
    people_ranking,
    rollup_models,
    standings_freshness,
    team_filter_hidden,
    teams_ranking,
    unassigned_usage,
)
from .series import usage_series
from .views_budgets import allowance_ranking_context, allowance_ranking_csv, person_budget_context, team_budget_summary
from .windows import (
    ALLOWANCE_METRIC,
    ALLOWANCE_METRIC_LABEL,
    EARLIEST_DATE,
    METRIC_LABELS,
    PERIOD_LABELS,
    QueryError,
    RankingQuery,
    comparison_window,
    org_today,
    ranking_query_from,
    window_for,
)

PAGE_SIZE = 50
PROVIDER_LABELS = dict(Provider.choices)


# --- Query parsing ---------------------------------------------------------------------------------------


def _cleaned_params(request: HttpRequest) -> QueryDict:
    """The GET form's state. A plain form always sends the custom dates, so they only count when the
    window is "custom" (or no window is named, as in a shared ?start=…&end=… link)."""
    params = request.GET.copy()
    if params.get("period", "").strip() not in ("", "custom"):
        params.pop("start", None)
        params.pop("end", None)
    return params


# Pages open on the last 30 days: on any day of the month it holds a month of data, and its rank changes
# compare with the 30 days before (a calendar month on its first day would rank a single day).
PAGE_DEFAULT_PERIOD = "30d"
_FROM_REQUEST = object()


def ranking_query(
    request: HttpRequest,
    *,
    default_period: str = PAGE_DEFAULT_PERIOD,
    team_id=_FROM_REQUEST,
    allowance_metric: bool = False,
) -> RankingQuery:
    """The validated query; each bad parameter is dropped with a warning message, keeping the rest. A page that
    ranks with a team filter of its own (its team, or none) passes it as `team_id`: ranking by cost is checked
    against the ranking the page computes, never against a team parameter it then replaces. The allowance
    metric only where `allowance_metric` (the people board); elsewhere it reads as total tokens."""
    params = _cleaned_params(request)
    for _attempt in range(6):
        try:
            query = ranking_query_from(params, default_period=default_period)
            break
        except QueryError as error:
            messages.warning(request, f"Ignored a bad filter — {error}")
            dropped = {"period", "start", "end"} if error.param in ("period", "start", "end") else {error.param}
            for name in dropped:
                params.pop(name, None)
    else:  # pragma: no cover - each attempt drops a parameter, so this needs more bad ones than exist
        query = ranking_query_from(QueryDict(), default_period=default_period)
    if query.provider and query.provider not in PROVIDER_LABELS:
        messages.warning(request, f"Ignored a bad filter — provider: unknown provider {query.provider!r}")
        query = replace(query, provider="")
    if query.team_id is not None and not Team.objects.filter(pk=query.team_id).exists():
        messages.warning(request, f"Ignored a bad filter — team: no team with id {query.team_id}")
        query = replace(query, team_id=None)
    # The team filter the viewer asked for is checked; a page's own team (its subtree) is not a filter.
    if team_filter_hidden(query, viewer_for(request.user)):
        messages.warning(request, f"Ignored a filter — team: {TEAM_FILTER_HIDDEN}")
        query = replace(query, team_id=None)
    if team_id is not _FROM_REQUEST:
        query = replace(query, team_id=team_id)
    if query.metric in COST_METRICS and not can_rank_by_cost(viewer_for(request.user), query.team_id):
        messages.warning(request, f"Ranked by total tokens instead — {cost_ranking_refused()}")
        query = replace(query, metric="total_tokens")
    if query.metric == ALLOWANCE_METRIC and not allowance_metric:
        query = replace(query, metric="total_tokens")
    elif query.metric == ALLOWANCE_METRIC and not can_rank_by_allowance(viewer_for(request.user), query.team_id):
        messages.warning(request, f"Ranked by total tokens instead — {ALLOWANCE_RANKING_REFUSED}")
        query = replace(query, metric="total_tokens")
    return query


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


# --- Shared context --------------------------------------------------------------------------------------


def team_options() -> list[tuple[int, str]]:
    """(id, label) in tree order, the label indented by depth, for the team filter."""
    rows = list(Team.objects.values_list("id", "name", "parent_id"))
    children: dict[int | None, list[tuple[int, str]]] = {}
    for team_id, name, parent_id in rows:
        children.setdefault(parent_id, []).append((team_id, name))
    ordered: list[tuple[int, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for team_id, name in sorted(children.get(parent, []), key=lambda item: item[1].lower()):
            ordered.append((team_id, "\u00a0\u00a0\u00a0" * depth + name))
            walk(team_id, depth + 1)

    walk(None, 0)
    return ordered


def filter_options() -> dict:
    """Providers, models and model families that have usage, for the filter selects; each model with the
    providers it was used through, so the model list narrows to the chosen provider."""
    used = rollup_models()
    models: dict[str, set[str]] = {}
    for provider, model, _family in used:
        if model:
            models.setdefault(model, set()).add(provider)
    options = {
        "provider_options": [(p, PROVIDER_LABELS.get(p, p)) for p in sorted({p for p, _m, _f in used})],
        "model_options": [(m, " ".join(sorted(models[m]))) for m in sorted(models)],
        "model_family_options": sorted({family for _p, _m, family in used if family}),
    }
    return {**options, "team_options": team_options()}


def _base_context(request: HttpRequest, query: RankingQuery, viewer) -> dict:
    return {
        "query": query,
        "periods": PERIOD_LABELS,
        # Engineers may not rank by cost or allowance (usage.access), so those are not offered to them.
        "metrics": {**METRIC_LABELS, ALLOWANCE_METRIC: ALLOWANCE_METRIC_LABEL}
        if offers_cost_ranking(viewer)
        else {k: v for k, v in METRIC_LABELS.items() if k not in COST_METRICS},
        "metric_label": METRIC_LABELS.get(query.metric, ALLOWANCE_METRIC_LABEL),
        "metric_definition": METRIC_DEFINITIONS.get(query.metric, ""),
        "efficiency_minimum": f"{settings.TOKENBOARD_EFFICIENCY_MIN_TOKENS:,} tokens"
        if settings.TOKENBOARD_EFFICIENCY_MIN_TOKENS
        else "the top half by total tokens",
        "has_previous_window": query.window.previous() is not None,
        "comparison": comparison_window(query.window),
        "adjacent": adjacent_windows(query),
        "viewer": viewer,
        "freshness": standings_freshness(),
        # Row links are built from these prefixes: one reverse() per page instead of two per row.
        "person_url": reverse("person", args=[0])[:-2],
        "team_url": reverse("team", args=[0])[:-2],
        # The window and filters for links to person and team pages (no name search, no team filter).
        "state_qs": _as_querystring(replace(query, search="", team_id=None)),
        "row_qs": mark_safe(escape(_as_querystring(replace(query, search="", team_id=None)))),  # escaped once
        "empty": empty_state(query),
    }


def adjacent_windows(query: RankingQuery) -> dict:
    """Links to the window before and after this one, of the same kind, keeping the metric and filters: the
    previous period, or the same number of days shifted back. None where there is none (all time; anything
    after today)."""
    window, today = query.window, org_today()
    if window.period == "all":
        return {"previous": None, "next": None}
    if window.period == "custom":
        size = timedelta(days=window.days)
        before = replace(window, start=window.start - size, end=window.end - size)
        after = replace(window, start=window.start + size, end=window.end + size)
    else:
        before = window.previous()
        after = window_for(
            window.period, window.end + timedelta(days=window.days if window.period in ROLLING_PERIODS else 1)
        )
        if window.period in ROLLING_PERIODS and after.end > today:
            after = window_for(window.period, today)  # a rolling window ends today at the latest

    def link(target) -> str:
        if target.period == "custom":
            return _as_querystring(replace(query, window=target))
        anchor = target.end if target.end < today else None  # today's window needs no date
        return _as_querystring(replace(query, window=target, anchor=anchor))

    return {
        "previous": (before.label, link(before)) if before.start >= EARLIEST_DATE else None,
        "next": (after.label, link(after)) if after.start <= today and after != window else None,
    }


WIDER_PERIODS = ("30d", "90d", "all")


def empty_state(query: RankingQuery) -> dict:
    """What an empty window suggests: wider windows than this one (never the one shown) and dropping each
    filter, every link keeping the rest of the state; and why, when the chosen model was never used through
    the chosen provider."""
    anchor = query.anchor or org_today()
    wider = []
    for period in WIDER_PERIODS:
        window = window_for(period, anchor)
        if period != query.window.period and window.days > query.window.days:
            wider.append((PERIOD_LABELS[period], _as_querystring(replace(query, window=window))))
    without = []
    if query.provider:
        without.append(("all providers", _as_querystring(replace(query, provider=""))))
    if query.model:
        without.append(("all models", _as_querystring(replace(query, model=""))))
    mismatch = ""
    if query.provider and query.model:
        providers = dict(filter_options()["model_options"]).get(query.model, "").split()
        if query.provider not in providers:
            mismatch = f"{query.model} has no usage through {PROVIDER_LABELS.get(query.provider, query.provider)}."
    return {
        "wider": [] if mismatch else wider,  # no window helps a model the provider never served
        "without": without,
        "mismatch": mismatch,
        "without_search": _as_querystring(replace(query, search="")),
    }


def _render(request: HttpRequest, full: str, partial: str, context: dict) -> HttpResponse:
    """The partial for htmx swaps, the whole page otherwise (a history restore needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    template = partial if htmx and not htmx.history_restore_request else full
    if template == full:
        context.update(filter_options())
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- CSV -------------------------------------------------------------------------------------------------


def money_cell(amount) -> str:
    """Dollars to the cent-millionth as stored, the same text on SQLite and PostgreSQL."""
    return str(Decimal(amount).quantize(Decimal("0.000001")))


def totals_cells(totals) -> list:
    return [getattr(totals, column) for column in TOTALS_COLUMNS]


def _export_name(kind: str, query: RankingQuery) -> str:
    return f"tokenboard-{kind}-{query.window.start:%Y%m%d}-{query.window.end:%Y%m%d}-{query.metric}.csv"


def efficiency_cells(totals, *, cost: bool) -> list:
    """The efficiency columns (EFFICIENCY_METRICS order) as the API gives them; cost per million tokens only
    where the viewer sees cost."""
    figures = efficiency_figures(totals, cost=cost)
    return ["" if figures.get(metric) is None else figures[metric] for metric in EFFICIENCY_METRICS]


def _people_csv(request: HttpRequest, query: RankingQuery, standings) -> HttpResponse:
    """Every ranked row; on an efficiency metric the people under the minimum volume follow, with no rank."""
    header = [
        "rank",
        "previous_rank",
        "name",
        "email",
        "team",
        *TOTALS_COLUMNS,
        "active_days",
        "cost_usd",
        *EFFICIENCY_METRICS,
    ]
    listed = chain(standings, standings.below_minimum())
    rows = (
        [
            s.rank or "",
            s.previous_rank if s.previous_rank is not None else "",
            s.display_name,
            s.email or "",
            s.team_name,
            *totals_cells(s.totals),
            s.totals.active_days,
            money_cell(s.totals.cost_usd) if s.detail else "",
            *efficiency_cells(s.totals, cost=s.detail),
        ]
        for s in listed
    )
    return csv_response(request, _export_name("people", query), header, rows, filters=query.as_params())


# --- People ranking --------------------------------------------------------------------------------------


def people_ranking_page(request: HttpRequest) -> HttpResponse:
    """People ranked for the window; 50 a page, the viewer's own row pinned below when it is on another
    page; ?format=csv exports every row."""
    viewer = viewer_for(request.user)
    query = ranking_query(request, allowance_metric=True)
    if query.metric == ALLOWANCE_METRIC:
        if request.GET.get("format") == "csv":
            return allowance_ranking_csv(request, query, viewer)
        context = _base_context(request, query, viewer)
        context.update(
            allowance_ranking_context(query, viewer, _page_number(request)),
            export_url=f"{reverse('people-ranking')}?{_as_querystring(query, format='csv')}",
            table_template="leaderboard/_allowance_table.html",
        )
        return _render(request, "leaderboard/people.html", "leaderboard/_allowance_table.html", context)
    standings = people_ranking(query, viewer)
    if request.GET.get("format") == "csv":
        return _people_csv(request, query, standings)
    paginator = Paginator(standings, PAGE_SIZE, allow_empty_first_page=True)
    page = paginator.get_page(_page_number(request))
    rows = list(page.object_list)
    pinned = None
    if viewer.person is not None and not any(row.is_viewer for row in rows):
        pinned = standings.viewer_row()
    shown = [*rows, pinned] if pinned else rows
    has_data = bool(rows) or UsageRecord.objects.exists()
    context = _base_context(request, query, viewer)
    context.update(
        standings=rows,
        rows=shown,
        pinned=pinned,
        ranked_count=standings.count(),
        page=page,
        show_cost=any(row.detail for row in shown),
        # Decided once per page rather than once per row (the table is the page's hot loop).
        cost_metric=query.metric in COST_METRICS,
        below_minimum=standings.below_minimum() if query.metric in EFFICIENCY_METRICS and page.number == 1 else [],
        total_column=query.metric != "total_tokens",
        cost_column=query.metric != "cost_usd" and any(row.detail for row in shown),
        titles=window_titles(query, viewer),
        has_data=has_data,
        unassigned=unassigned_usage(query.window) if can_see_unassigned_usage(viewer) else None,
        export_url=f"{reverse('people-ranking')}?{_as_querystring(query, format='csv')}",
    )
    return _render(request, "leaderboard/people.html", "leaderboard/_people_table.html", context)


def _as_querystring(query: RankingQuery, **overrides) -> str:
    params = QueryDict(mutable=True)
    params.update(query.as_params(**overrides))
    return params.urlencode()


# --- Teams ranking ---------------------------------------------------------------------------------------


def _teams_csv(request: HttpRequest, query: RankingQuery, standings, per_capita: bool, viewer) -> HttpResponse:
    header = [
        "rank",
        "previous_rank",
        "team",
        "members",
        "active_members",
        *TOTALS_COLUMNS,
        "cost_usd",
        "ranked_on",
        "top_user",
    ]
    rows = []
    for s in standings:
        figures = s.per_member if per_capita else s.totals
        visible = s.visible
        rows.append(
            [
                s.rank,
                s.previous_rank if s.previous_rank is not None else "",
                s.name,
                s.members,
                s.active_members if visible else "",
                *(totals_cells(figures) if visible else [""] * len(TOTALS_COLUMNS)),
                money_cell(figures.cost_usd) if s.detail else "",
                "per active member" if per_capita else "team total",
                s.top_person_name,
            ]
        )
    filters = {**query.as_params(), "per": "member" if per_capita else "team"}
    return csv_response(request, _export_name("teams", query), header, rows, filters=filters)


def teams_ranking_page(request: HttpRequest) -> HttpResponse:
    viewer = viewer_for(request.user)
    query = ranking_query(request)
    per_capita = request.GET.get("per") == "member"
    standings = teams_ranking(query, viewer, per_capita=per_capita)
    if request.GET.get("format") == "csv":
        return _teams_csv(request, query, standings, per_capita, viewer)
    paginator = Paginator(standings.with_members(), PAGE_SIZE, allow_empty_first_page=True)
    page = paginator.get_page(_page_number(request))
    rows = list(page.object_list)
    for row in rows:
        row.figures = row.per_member if per_capita else row.totals
    context = _base_context(request, query, viewer)
    context.update(
        standings=rows,
        page=page,
        per_capita=per_capita,
        show_cost=any(row.detail for row in rows),
        has_data=bool(standings) and UsageRecord.objects.exists(),
        any_usage=standings.any_active(),
        export_url=f"{reverse('teams-ranking')}?{_as_querystring(query, format='csv', per='member' if per_capita else None)}",
    )
    return _render(request, "leaderboard/teams.html", "leaderboard/_teams_table.html", context)


# --- Person page -----------------------------------------------------------------------------------------


PROVENANCE_ROWS = 31  # the newest days on the page; the API lists every day of the window


def person_page(request: HttpRequest, person_id: int) -> HttpResponse:
    viewer = viewer_for(request.user)
    person, detail = access_person(viewer, person_id)
    query = replace(ranking_query(request, team_id=None), search="")
    group_by = "provider" if request.GET.get("group") == "provider" else "model"
    standings = people_ranking(query, viewer)
    standing = standings.standing_of(person.pk)
    titles = [t for t in window_titles(query, viewer) if t.person_id == person.pk]
    name = person_display_name(viewer, person.pk, person.display_name, person.pseudonym, person.show_name)
    team = current_teams([person.pk]).get(person.pk)
    history = rank_history(query, person.pk)
    context = _base_context(request, query, viewer)
    context.update(
        person=person,
        name=name,
        detail=detail,
        standing=standing,
        ranked_count=standings.ranked_count,
        titles=titles,
        team=team,
        group_by=group_by,
        rank_chart=charts.rank_history_chart(
            history,
            chart_id="chart-rank",
            metric_label=METRIC_LABELS[query.metric],
            per=HISTORY_PERIOD.get(query.window.period, ""),
        ),
        is_self=viewer.person is not None and viewer.person.pk == person.pk,
        # Held and confirmed days of the window: left out of the figures above (usage.services.anomalies).
        holds=list(
            UsageHold.objects.filter(person=person, day__range=(query.window.start, query.window.end))
            .exclude(status=HoldStatus.CLEARED)
            .order_by("day")
        )
        if detail
        else [],
        outcomes=outcome_summaries(query.window, person_id=person.pk),
    )
    if detail:
        palette = charts.model_palette()
        series = usage_series(
            query.window,
            person_id=person.pk,
            group_by=group_by,
            provider=query.provider,
            model=query.model,
            model_family=query.model_family,
        )
        models = mix_shares(query, person_id=person.pk, field_name="model")
        families = mix_shares(query, person_id=person.pk, field_name="model_family")
        providers = mix_shares(query, person_id=person.pk, field_name="provider")
        context.update(
            series=series,
            streak=series.longest_streak(),
            palette=palette,
            daily_chart=charts.daily_usage_chart(
                series, chart_id="chart-daily", stacked_by_label=group_by, palette=palette
            ),
            model_mix=models,
            family_mix=families,
            model_chart=charts.mix_chart(models, chart_id="chart-models", label="model", palette=palette)
            if models
            else None,
            provider_mix=providers,
            identities=Identity.objects.filter(person=person).order_by("provider", "kind", "value"),
            provenance=person_provenance(person.pk, query.window, provider=query.provider, model=query.model)[
                :PROVENANCE_ROWS
            ],
            provenance_api=f"{reverse('api-v1:person-usage', args=[person.pk])}?{_as_querystring(query)}",
        )
    context.update(person_budget_context(viewer, person))
    return _render(request, "leaderboard/person.html", "leaderboard/person.html", context)


# --- Team page -------------------------------------------------------------------------------------------


def team_page(request: HttpRequest, team_id: int) -> HttpResponse:
    viewer = viewer_for(request.user)
    team, detail = access_team(viewer, team_id)
    query = replace(ranking_query(request, team_id=team.pk), search="")
    child_teams = list(team.children.order_by("name"))
    standings = teams_ranking(query, viewer).of([team.pk, *(t.pk for t in child_teams)])
    standing = standings.get(team.pk)
    parents = team_parents()
    children = [standings[t.pk] for t in child_teams if t.pk in standings]
    ancestors = []
    parent_id = parents.get(team.pk)
    while parent_id is not None and len(ancestors) < 20:
        ancestors.append(parent_id)
        parent_id = parents.get(parent_id)
    context = _base_context(request, query, viewer)
    context.update(
        team=team,
        detail=detail,
        standing=standing,
        children=children,
        breadcrumbs=list(Team.objects.filter(pk__in=ancestors).order_by("-id")),
        managers=[
            person_display_name(viewer, p.pk, p.display_name, p.pseudonym, p.show_name) for p in team.managers.all()
        ],
        members_url=f"{reverse('team-members-csv', args=[team.pk])}?{_as_querystring(query)}",
        # Outcomes are team figures: hidden with them (usage.access.can_see_team_figures).
        outcomes=outcome_summaries(query.window, team_id=team.pk) if standing and standing.visible else [],
    )
    context["breadcrumbs"].sort(key=lambda t: ancestors.index(t.pk), reverse=True)
    if detail:
        group_by = "provider" if request.GET.get("group") == "provider" else "model"
        palette = charts.model_palette()
        members, team_total = team_members(query, team.pk, viewer)
        shared = team_shared_usage(query, team.pk)
        sort = members_sort(request)
        members = sorted_members(members, sort, query.metric)
        series = usage_series(
            query.window,
            team_id=team.pk,
            group_by=group_by,
            provider=query.provider,
            model=query.model,
            model_family=query.model_family,
        )
        models = mix_shares(query, team_id=team.pk, field_name="model")
        families = mix_shares(query, team_id=team.pk, field_name="model_family")
        providers = mix_shares(query, team_id=team.pk, field_name="provider")
        context.update(
            group_by=group_by,
            members=members,
            members_sort=sort,
            team_total=team_total,
            shared=shared,
            palette=palette,
            trend_chart=charts.daily_usage_chart(
                series, chart_id="chart-trend", stacked_by_label=group_by, palette=palette
            ),
            model_chart=charts.mix_chart(models, chart_id="chart-models", label="model", palette=palette)
            if models
            else None,
            provider_chart=charts.mix_chart(providers, chart_id="chart-providers", label="provider")
            if providers
            else None,
            model_mix=models,
            family_mix=families,
            provider_mix=providers,
            **team_budget_summary(team.pk),
        )
    return _render(request, "leaderboard/team.html", "leaderboard/team.html", context)


MEMBER_SORTS = {
    "name": lambda m, metric: m.display_name.lower(),
    "team": lambda m, metric: (m.team_name.lower(), m.rank),
    # The rank team_members gave: the metric's own order (lower first where lower is better), unknowns last.
    "tokens": lambda m, metric: -m.rank,
    "share": lambda m, metric: (m.share, -m.rank),
    "cost": lambda m, metric: (m.totals.cost_usd, -m.rank),
}


def members_sort(request: HttpRequest) -> str:
    """The members table's ?sort= (a MEMBER_SORTS key, "-" first for descending); by the metric, largest
    first, unless a valid one is given."""
    sort = request.GET.get("sort", "")
    return sort if sort.lstrip("-") in MEMBER_SORTS else "-tokens"


def sorted_members(members: list, sort: str, metric: str) -> list:
    key = MEMBER_SORTS[sort.lstrip("-")]
    return sorted(members, key=lambda m: key(m, metric), reverse=sort.startswith("-"))


def team_members_csv(request: HttpRequest, team_id: int) -> HttpResponse:
    """The team page's members table as CSV; managers of the team's subtree and admins only."""
    viewer = viewer_for(request.user)
    team = access_team_detail(viewer, team_id)
    query = replace(ranking_query(request, team_id=team.pk), search="")
    members, _total = team_members(query, team.pk, viewer)
    header = [
        "rank",
        "name",
        "email",
        "team",
        *TOTALS_COLUMNS,
        "active_days",
        "cost_usd",
        "share_of_team_tokens",
    ]
    rows = (
        [
            m.rank,
            m.display_name,
            m.email,
            m.team_name,
            *totals_cells(m.totals),
            m.totals.active_days,
            money_cell(m.totals.cost_usd),
            f"{m.share:.4f}",
        ]
        for m in members
    )
    return csv_response(
        request,
        f"tokenboard-team-{slugify(team.name) or team.pk}-members-{query.window.start:%Y%m%d}-{query.window.end:%Y%m%d}.csv",
        header,
        rows,
        filters={**query.as_params(), "team": team.pk},
    )


# --- Movers ----------------------------------------------------------------------------------------------


def movers_page(request: HttpRequest) -> HttpResponse:
    viewer = viewer_for(request.user)
    query = ranking_query(request, default_period="7d")
    query = replace(query, search="")
    standings = people_ranking(query, viewer)
    context = _base_context(request, query, viewer)
    context.update(movers=movers_from(standings), ranked_count=standings.ranked_count)
    return _render(request, "leaderboard/movers.html", "leaderboard/_movers.html", context)


# --- Overview ------------------------------------------------------------------------------------------


def overview_page(request: HttpRequest) -> HttpResponse:
    """The story of the window for everyone (org usage against the compared window, active people, top models
    and providers, movers, freshness per source) and, for a viewer who is a person, their month so far."""
    viewer = viewer_for(request.user)
    query = replace(ranking_query(request), search="", team_id=None)
    org = org_comparison(query)
    show_cost = can_rank_by_cost(viewer, None)
    palette = charts.model_palette()
    models = mix_shares(query, field_name="model")
    providers = mix_shares(query, field_name="provider")
    standings = people_ranking(query, viewer)
    previous_days = org.previous.days if org.previous else None
    context = _base_context(request, query, viewer)
    context.update(
        org=org,
        show_cost=show_cost,
        palette=palette,
        tokens_chart=charts.trend_with_ghost(
            {d: v.tokens for d, v in org.current.days.items()},
            {d: v.tokens for d, v in previous_days.items()} if previous_days else None,
            chart_id="chart-org-tokens",
            title="Tokens",
            unit="tokens",
        ),
        cost_chart=charts.trend_with_ghost(
            {d: v.cost_usd for d, v in org.current.days.items()},
            {d: v.cost_usd for d, v in previous_days.items()} if previous_days else None,
            chart_id="chart-org-cost",
            title="Cost",
            unit="USD",
        )
        if show_cost
        else None,
        top_models=models[:8],
        top_providers=providers,
        movers=movers_from(standings, limit=5),
        ranked_count=standings.ranked_count,
        sources=source_freshness(),
    )
    if viewer.person is not None:
        context.update(my_month(viewer, palette))
    return _render(request, "leaderboard/overview.html", "leaderboard/overview.html", context)


def my_month(viewer, palette: dict[str, str]) -> dict:
    """The viewer's last 30 days (a month of data on any day of the month): their daily trend, rank history by
    month, model mix, and a year of active days."""
    person = viewer.person
    month = RankingQuery(window=window_for("30d", org_today()))
    series = usage_series(month.window, person_id=person.pk)
    models = mix_shares(month, person_id=person.pk, field_name="model")
    calendar = activity_calendar(person.pk)
    active_days = sum(1 for day in calendar if day.tokens > 0)
    return {
        "my_month_label": month.window.label,
        "my_standing": people_ranking(month, viewer).row_for(person.pk),
        "my_trend_chart": charts.daily_usage_chart(
            series, chart_id="chart-my-trend", stacked_by_label="model", palette=palette
        ),
        "my_rank_chart": charts.rank_history_chart(
            rank_history(month, person.pk),
            chart_id="chart-my-rank",
            metric_label=METRIC_LABELS[month.metric],
            per=HISTORY_PERIOD[month.window.period],
        ),
        "my_models_chart": charts.mix_chart(models, chart_id="chart-my-models", label="model", palette=palette)
        if models
        else None,
        "my_calendar": calendar,
        "my_active_days": active_days,
        "my_calendar_label": f"Active days over the last 12 months: {active_days}",
    }


# --- Favicon ---------------------------------------------------------------------------------------------


@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico before (or without) reading the page's <link rel="icon">."""
    return redirect(static("favicon.svg"), permanent=True)


# --- Profile ---------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def profile_page(request: HttpRequest) -> HttpResponse:
    """The viewer's own settings: show-name preference and personal API tokens (shown once, on creation)."""
    viewer = viewer_for(request.user)
    person = viewer.person
    new_token = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "show_name" and person is not None:
            person.show_name = request.POST.get("show_name") == "on"
            person.save(update_fields=["show_name"])
            messages.success(
                request,
                "Your name is shown to everyone."
                if person.show_name
                else f"Other engineers now see you as “{person.pseudonym}”.",
            )
            return redirect("profile")
        if action == "digest" and person is not None:
            wanted = request.POST.get("weekly_digest") == "on"
            NotificationPreference.objects.update_or_create(person=person, defaults={"weekly_digest": wanted})
            messages.success(request, "You get the weekly digest." if wanted else "No more weekly digests.")
            return redirect("profile")
        if action == "create_token":
            name = request.POST.get("name", "").strip()[:100] or "token"
            days = request.POST.get("days", "")
            _record, new_token = api_token_create(
                user=request.user, name=name, days=int(days) if days.isdigit() else None
            )
        elif action == "revoke_token":
            token_id = request.POST.get("token", "")
            revoked = api_token_revoke(user=request.user, token_id=int(token_id) if token_id.isdigit() else 0)
            if revoked:
                messages.success(request, f"Token “{revoked.name}” revoked; it no longer works.")
            else:
                messages.warning(request, "No such token, or it was already revoked.")
            return redirect("profile")
        else:
            messages.warning(request, "Unknown action.")
            return redirect("profile")
    context = {
        "person": person,
        "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at"),
        "token_days": token_lifetime_choices(),
        "now": timezone.now(),
        "new_token": new_token,
        "viewer": viewer,
        "weekly_digest": person is None
        or not NotificationPreference.objects.filter(person=person, weekly_digest=False).exists(),
    }
    response = render(request, "leaderboard/profile.html", context)
    if new_token:
        add_never_cache_headers(response)  # the one time the token is shown must not be cached anywhere
    return response
