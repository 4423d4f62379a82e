"""Anomaly review (docs/admin-guide.md, Anomaly review): admins see held days with their evidence and clear or
confirm them; a person adds a note to their own held day. Decisions go through usage.services.review."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from usage.access import can_note_hold, require_admin, viewer_for
from usage.models import HoldStatus, UsageHold
from usage.services.anomalies import RULE_LABELS
from usage.services.review import hold_decide, hold_note_add

PAGE_SIZE = 25


def hourly_bars(hourly: list[int] | None) -> list[tuple[int, int, int, int]]:
    """(hour, requests, bar height in %, its top in %) for the day's hourly shape; [] where the source has no
    hours."""
    if not hourly:
        return []
    peak = max(hourly) or 1
    heights = [round(100 * count / peak) for count in hourly]
    return [
        (hour, count, height, 100 - height) for hour, (count, height) in enumerate(zip(hourly, heights, strict=True))
    ]


@require_GET
def review_page(request):
    viewer = viewer_for(request.user)
    require_admin(viewer)
    status = request.GET.get("status", HoldStatus.HELD)
    if status not in HoldStatus.values and status != "all":
        messages.warning(request, f"Ignored a bad filter — status: unknown status {status!r}")
        status = HoldStatus.HELD
    holds = UsageHold.objects.select_related("person").prefetch_related("decisions__decided_by")
    if status != "all":
        holds = holds.filter(status=status)
    page = Paginator(holds.order_by("-day", "person__display_name"), PAGE_SIZE).get_page(request.GET.get("page"))
    for hold in page.object_list:
        hold.bars = hourly_bars(hold.evidence.get("hourly"))
        hold.fired = [(RULE_LABELS.get(rule, rule), why) for rule, why in hold.evidence.get("fired", {}).items()]
    counts = dict(UsageHold.objects.values_list("status").annotate(n=Count("id")))
    statuses = [(value, label, counts.get(value, 0)) for value, label in HoldStatus.choices]
    context = {
        "viewer": viewer,
        "page": page,
        "status": status,
        "statuses": statuses,
        "query_string": f"status={status}",
    }
    return render(request, "usage/review.html", context)


@require_POST
def review_decide(request, pk: int):
    viewer = viewer_for(request.user)
    require_admin(viewer)
    hold = get_object_or_404(UsageHold, pk=pk)
    try:
        hold = hold_decide(
            hold_id=hold.pk, status=request.POST.get("status", ""), user=request.user, note=request.POST.get("note", "")
        )
    except ValidationError as error:
        messages.error(request, f"{hold.person} on {hold.day}: {'; '.join(error.messages)}")
    else:
        messages.success(
            request,
            f"{hold.person} on {hold.day}: {hold.get_status_display().lower()}. The standings of that day are being "
            "recomputed.",
        )
    return redirect("review")


@require_POST
def review_note(request, pk: int):
    """The held person's own note, from their page."""
    viewer = viewer_for(request.user)
    hold = get_object_or_404(UsageHold, pk=pk)
    if not can_note_hold(viewer, hold.person_id):
        raise PermissionDenied("Only the person whose day is held may add a note.")
    try:
        hold_note_add(hold=hold, note=request.POST.get("note", ""))
    except ValidationError as error:
        messages.error(request, f"Note on {hold.day}: {'; '.join(error.messages)}")
    else:
        messages.success(request, f"Your note on {hold.day} is saved; the reviewers see it.")
    return redirect("person", person_id=hold.person_id)
