"""The rows of the people and teams rankings, written in Python rather than by a template loop.

A page's 50 rows through the template engine took 13 of the people page's 34 ms: variable lookups, localization
and escaping for each of some 30 nodes a row. Written here they take about 2 ms: each row is one f-string, and
every value that is not already safe HTML goes through the standard library's `escape` (what Django's own
escaping calls) rather than format_html, which costs about 3 µs a value (docs/PERFORMANCE.md). The tables'
headers and everything around them stay in the templates; what a viewer may see was decided before
(usage.access, in the selectors: `row.detail`, `row.visible`)."""

from __future__ import annotations

from html import escape

from django import template
from django.utils.safestring import SafeData, SafeString, mark_safe

from leaderboard.templatetags.tokenboard import bar_width, metric_value, money, rank_change, tokens
from usage.figures import COST_METRICS

register = template.Library()

PERSON_COST = "Cost is visible to the person, their managers and admins"
PERSON_COST_HIDDEN = f'<span class="muted" title="{PERSON_COST}">hidden</span>'  # in the metric's cell
PERSON_COST_DASH = f'<span class="muted" title="{PERSON_COST}">—</span>'  # in the cost column
TEAM_COST_HIDDEN = '<span class="muted" title="Cost is visible to the team\'s managers and admins">hidden</span>'
TOO_FEW_MEMBERS = (
    '<span class="muted" title="Fewer than the minimum active members: figures hidden so no one is singled out">'
    "too few active members</span>"
)
NONE = '<span class="muted">—</span>'
PINNED_GAP = (
    '<tr class="gap"><td colspan="7">⋯ <span class="visually-hidden">Your position, outside this page:</span> ⋯'
    "</td></tr>"
)


def _html(value) -> str:
    """A value as HTML: safe HTML as it is, anything else escaped."""
    return value if isinstance(value, SafeData) else escape(str(value))


def _links(context) -> tuple[str, str, str]:
    """The page's link parts for every row: person and team URL prefixes, and the window and filters' query
    string (escaped once for the page, `row_qs`)."""
    return escape(context["person_url"]), escape(context["team_url"]), context["row_qs"]


@register.simple_tag(takes_context=True)
def people_rows(context) -> SafeString:
    """The people table's rows (`rows`: the page's, then the viewer's own when `pinned`)."""
    metric = context["query"].metric
    person_url, team_url, state = _links(context)
    previous_window, pinned = context["has_previous_window"], context["pinned"]
    cost_metric = metric in COST_METRICS
    total_column, cost_column = context["total_column"], context["cost_column"]
    ranked_count = context["ranked_count"]
    html = []
    for row in context["rows"]:
        if row.is_viewer and pinned:
            html.append(PINNED_GAP)
        change = f'<td class="change">{rank_change(row.previous_rank, row.rank)}</td>' if previous_window else ""
        me, you = (' class="me"', ' <span class="you">(you)</span>') if row.is_viewer else ("", "")
        tier = (
            f'<span class="badge tier" title="Rank {row.rank} of {ranked_count}">{escape(row.percentile_tier)}</span>'
            if row.percentile_tier and row.share_of_leader
            else ""
        )
        team = f'<a href="{team_url}{int(row.team_id)}/?{state}">{escape(row.team_name)}</a>' if row.team_id else NONE
        if cost_metric and not row.detail:
            figure = PERSON_COST_HIDDEN
        else:
            figure = (
                f'<div class="bar-cell"><span class="value">{_html(metric_value(row.totals, metric))}</span>'
                '<svg class="track" aria-hidden="true" focusable="false">'
                f'<rect class="bar" width="{bar_width(row.share_of_leader)}%" height="100%" rx="4"/></svg></div>'
            )
        total = f'<td class="num">{tokens(row.totals.total_tokens)}</td>' if total_column else ""
        cost = (
            f'<td class="num">{money(row.totals.cost_usd) if row.detail else PERSON_COST_DASH}</td>'
            if cost_column
            else ""
        )
        html.append(
            f'<tr{me}><td class="num rank">{int(row.rank)}</td>{change}'
            f'<th scope="row" class="name"><a href="{person_url}{int(row.person_id)}/?{state}">'
            f"{escape(row.display_name)}</a>{you} {tier}</th>"
            f'<td class="team">{team}</td><td class="metric">{figure}</td>{total}{cost}</tr>'
        )
    return mark_safe("".join(html))


@register.simple_tag(takes_context=True)
def team_rows(context) -> SafeString:
    """The teams table's rows (`standings`: the page's teams, each with its `figures`, totals or per member)."""
    metric = context["query"].metric
    person_url, team_url, state = _links(context)
    previous_window = context["has_previous_window"]
    cost_column = context["show_cost"] and metric != "cost_usd"
    html = []
    for row in context["standings"]:
        visible = row.visible
        if not visible:
            figure = TOO_FEW_MEMBERS
        elif metric == "cost_usd" and not row.detail:
            figure = TEAM_COST_HIDDEN
        else:
            figure = f'<span class="value">{_html(metric_value(row.figures, metric))}</span>'
        change = ""
        if previous_window:
            change = f'<td class="change">{rank_change(row.previous_rank, row.rank) if visible else ""}</td>'
        active = f" / {int(row.active_members)}" if visible else ""
        total = ""
        if metric != "total_tokens":
            total = f'<td class="num">{tokens(row.figures.total_tokens) if visible else ""}</td>'
        cost = f'<td class="num">{money(row.figures.cost_usd) if row.detail else NONE}</td>' if cost_column else ""
        top = (
            f'<a href="{person_url}{int(row.top_person_id)}/?{state}">{escape(row.top_person_name)}</a>'
            if row.top_person_id
            else NONE
        )
        html.append(
            f'<tr><td class="num rank">{int(row.rank) if visible else NONE}</td>{change}'
            f'<th scope="row" class="name depth-{int(row.depth)}"><a href="{team_url}{int(row.team_id)}/?{state}">'
            f"{escape(row.name)}</a></th>"
            f'<td class="num">{int(row.members)}{active}</td><td class="metric">{figure}</td>{total}{cost}<td>{top}</td></tr>'
        )
    return mark_safe("".join(html))
