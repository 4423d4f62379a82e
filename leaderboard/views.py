"""Pages. Each view: parse the GET form, check access (usage.access), call a selector, render the page —
or only its table partial for an htmx request."""

from django.contrib import messages
from django.shortcuts import render

from usage.access import viewer_for
from usage.services.imports import data_as_of

from .selectors import people_ranking, unassigned_usage
from .windows import METRIC_LABELS, PERIOD_LABELS, QueryError, ranking_query_from

PAGE_SIZE = 50


def _query_or_default(request):
    try:
        return ranking_query_from(request.GET), None
    except QueryError as error:
        return ranking_query_from({}), str(error)


def people_ranking_page(request):
    viewer = viewer_for(request.user)
    query, error = _query_or_default(request)
    if error:
        messages.warning(request, f"Ignored a bad filter — {error}")
    standings = people_ranking(query, viewer)
    context = {
        "query": query,
        "standings": standings,
        "periods": PERIOD_LABELS,
        "metrics": METRIC_LABELS,
        "data_as_of": data_as_of(),
        "unassigned": unassigned_usage(query.window) if viewer.is_admin else None,
    }
    template = "leaderboard/_people_table.html" if request.htmx else "leaderboard/people.html"
    return render(request, template, context)
