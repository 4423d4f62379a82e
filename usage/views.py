"""Admin pages of the write side: upload exports, follow and inspect imports, map identities.

Every view is gated by usage.access.admin_required. Forms are plain GET/POST that work without JS; htmx
(polling, people search) and static/js/upload.js (upload progress) only enhance them.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Case, Count, IntegerField, Max, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from usage.access import admin_required
from usage.csv_export import csv_response
from usage.forms import (
    IdentityAssignForm,
    IdentityAttributionForm,
    IdentityBulkForm,
    IdentityFilterForm,
    ImportFilterForm,
    UploadForm,
)
from usage.models import (
    Identity,
    IdentityAttribution,
    ImportBatch,
    ImportSource,
    ImportStatus,
    Person,
    Team,
    UsageRecord,
)
from usage.services.identities import (
    CONFIRM_DAYS,
    CONFIRM_SHARE,
    identity_assign,
    identity_assignment_question,
    identity_attribute,
    identity_share,
)
from usage.services.imports import ImportRejected, import_batch_create, import_batch_retry, imports_reprocess_all
from usage.services.precedence import import_overlaps

PAGE_SIZE = 50
MAX_PROGRESS_IDS = 100
FINISHED = (ImportStatus.SUCCEEDED, ImportStatus.FAILED)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# --- upload and progress -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@admin_required
def imports_upload_page(request):
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():  # all files or none; tasks are queued once this commits
                batches = [
                    import_batch_create(
                        file=upload,
                        name=upload.name,
                        source=ImportSource.UPLOAD,
                        user=request.user,
                        requested_format=data["format"],
                        import_good_rows=data["import_good_rows"],
                        attribute_to=data["attribute_to"],
                    )
                    for upload in data["files"]
                ]
        except ImportRejected as error:
            form.add_error("files", str(error))
        else:
            url = f"{reverse('imports-progress')}?{urlencode([('ids', b.pk) for b in batches])}"
            if _wants_json(request):
                return JsonResponse({"redirect": url, "imports": [b.pk for b in batches]})
            return redirect(url)
    if request.method == "POST" and _wants_json(request):
        errors = [str(message) for messages_ in form.errors.values() for message in messages_]
        return JsonResponse({"errors": errors}, status=400)
    return render(
        request,
        "usage/upload.html",
        {"form": form, "max_bytes": settings.TOKENBOARD_UPLOAD_MAX_BYTES},
        status=400 if request.method == "POST" else 200,
    )


def _progress_ids(request) -> list[int]:
    ids = []
    for raw in request.GET.getlist("ids")[:MAX_PROGRESS_IDS]:
        for part in raw.split(","):
            if part.strip().isdigit():
                ids.append(int(part))
    return ids


@require_GET
@admin_required
def imports_progress_page(request):
    """Progress of one or more imports. Its partial polls itself every second while any is unfinished;
    with `reload=1` (the result page) it asks htmx to reload the page once all are finished."""
    ids = _progress_ids(request)
    batches = list(ImportBatch.objects.filter(pk__in=ids).select_related("started_by").order_by("pk"))
    if not batches:
        raise Http404("No such imports.")
    finished = all(b.status in FINISHED for b in batches)
    context = {
        "batches": batches,
        "finished": finished,
        "poll_url": request.get_full_path(),
    }
    if request.htmx:
        response = render(request, "usage/_import_progress.html", context)
        if finished and request.GET.get("reload"):
            response["HX-Refresh"] = "true"
        return response
    return render(request, "usage/import_progress.html", context)


# --- one import ----------------------------------------------------------------------------------------


@require_GET
@admin_required
def import_detail_page(request, pk: int):
    batch = get_object_or_404(ImportBatch.objects.select_related("started_by", "attribute_to", "connection"), pk=pk)
    progress_url = f"{reverse('imports-progress')}?{urlencode({'ids': batch.pk, 'reload': 1})}"
    return render(
        request,
        "usage/import_detail.html",
        {
            "batch": batch,
            "finished": batch.status in FINISHED,
            "batches": [batch],
            "poll_url": progress_url,
            "errors_listed": len(batch.errors),
            "errors_unlisted": max(batch.rows_rejected - len(batch.errors), 0),
            "overlaps": import_overlaps(batch) if batch.status == ImportStatus.SUCCEEDED else [],
        },
    )


@require_GET
@admin_required
def import_errors_csv(request, pk: int):
    batch = get_object_or_404(ImportBatch, pk=pk)
    rows = (
        [batch.original_name, error.get("line") if isinstance(error.get("line"), int) else "", error["reason"]]
        for error in batch.errors
    )
    return csv_response(
        request, f"import-{batch.pk}-errors.csv", ["file", "line", "reason"], rows, filters={"import": batch.pk}
    )


@require_POST
@admin_required
def import_retry(request, pk: int):
    batch = get_object_or_404(ImportBatch, pk=pk)
    if batch.status not in (ImportStatus.FAILED, ImportStatus.RUNNING):
        messages.error(
            request,
            f"Import #{batch.pk} is {batch.get_status_display().lower()}; only a failed or running import is retried.",
        )
    elif not batch.raw_file or not batch.raw_file.storage.exists(batch.raw_file.name):
        messages.error(request, f"Import #{batch.pk}: its stored file {batch.raw_file.name or '(none)'} is missing.")
    else:
        import_batch_retry(batch)
        messages.success(request, f"Import #{batch.pk} ({batch.original_name}) is queued again.")
    return redirect("import-detail", pk=batch.pk)


# --- history -------------------------------------------------------------------------------------------


@require_GET
@admin_required
def imports_list_page(request):
    form = ImportFilterForm(request.GET or None)
    batches = ImportBatch.objects.select_related("started_by", "connection").order_by("-created_at", "-pk")
    if form.is_valid() and form.cleaned_data["status"]:
        batches = batches.filter(status=form.cleaned_data["status"])
    return render(
        request,
        "usage/imports.html",
        {"page": _page(request, batches), "form": form, "query_string": _query_without_page(request)},
    )


@require_POST
@admin_required
def imports_reprocess(request):
    count = imports_reprocess_all()
    messages.success(
        request,
        f"Re-queued {count} import(s). Totals update as each one finishes; where exports overlap, the newer export wins."
        if count
        else "No finished imports to re-process.",
    )
    return redirect("imports-list")


# --- identities ----------------------------------------------------------------------------------------


def identities_with_totals():
    """Identities with their usage totals, unassigned first, then the biggest totals (the biggest gaps)."""
    return Identity.objects.select_related("person", "shared_team").annotate(
        tokens=Coalesce(Sum("usage_records__total_tokens"), 0),
        records=Count("usage_records"),
        last_day=Max("usage_records__day"),
        # Shared and service identities are accounted for: not gaps, even without a person.
        unassigned=Case(
            When(person__isnull=True, attribution=IdentityAttribution.PERSONAL, then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )


@require_GET
@admin_required
def identities_page(request):
    return _identities_render(request)


def _identities_render(request, bulk_form: IdentityBulkForm | None = None, status: int = 200):
    form = IdentityFilterForm(request.GET or None)
    identities = identities_with_totals()
    if form.is_valid():
        data = form.cleaned_data
        if data["state"] == "unassigned":
            identities = identities.filter(person__isnull=True, attribution=IdentityAttribution.PERSONAL)
        elif data["state"] == "assigned":
            identities = identities.filter(person__isnull=False)
        if data["provider"]:
            identities = identities.filter(provider=data["provider"])
        if data["attribution"]:
            identities = identities.filter(attribution=data["attribution"])
        if data["q"]:
            text = data["q"].strip()
            identities = identities.filter(
                Q(value__icontains=text)
                | Q(label__icontains=text)
                | Q(owner_email__icontains=text)
                | Q(person__display_name__icontains=text)
                | Q(person__email__icontains=text)
            )
    identities = identities.order_by("-unassigned", "-tokens", "provider", "kind", "value")
    unassigned = UsageRecord.objects.filter(
        identity__person__isnull=True, identity__attribution=IdentityAttribution.PERSONAL
    ).aggregate(tokens=Coalesce(Sum("total_tokens"), 0), identities=Count("identity", distinct=True))
    service = UsageRecord.objects.filter(identity__attribution=IdentityAttribution.SERVICE).aggregate(
        tokens=Coalesce(Sum("total_tokens"), 0), identities=Count("identity", distinct=True)
    )
    return render(
        request,
        "usage/identities.html",
        {
            "form": form,
            "page": _page(request, identities),
            "query_string": _query_without_page(request),
            "unassigned": unassigned,
            "service": service,
            "teams": Team.objects.order_by("name"),
            "attributions": IdentityAttribution.choices,
            "bulk_form": bulk_form or IdentityBulkForm(),
            "next": request.get_full_path(),
        },
        status=status,
    )


@require_GET
@admin_required
def people_search(request):
    """People matching a name or email, as buttons that submit the identity's assign form (htmx)."""
    text = request.GET.get("person", "").replace("\x00", "").strip()  # no NUL: PostgreSQL refuses it
    people = []
    if len(text) >= 2:
        people = list(
            Person.objects.filter(Q(display_name__icontains=text) | Q(email__icontains=text)).order_by("display_name")[
                :10
            ]
        )
    return render(request, "usage/_people_search.html", {"people": people, "text": text})


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


@require_POST
@admin_required
def identity_assign_view(request, pk: int):
    identity = get_object_or_404(Identity.objects.select_related("person"), pk=pk)
    form = IdentityAssignForm(request.POST)
    if not form.is_valid():
        for error in form.non_field_errors():
            messages.error(request, f"{identity}: {error}")
        return redirect(_safe_next(request, reverse("identities-list")))
    person = form.cleaned_data["target"]
    question = "" if form.cleaned_data.get("confirm") else identity_assignment_question(identity, person)
    if question:
        # 409: nothing changed; the page asks, and offers the confirmed assignment and the alternatives.
        context = {"identity": identity, "person": person, "question": question, "teams": Team.objects.all()}
        context["next"] = _safe_next(request, reverse("identities-list"))
        return render(request, "usage/identity_confirm.html", context, status=409)
    identity_assign(identity=identity, person=person)
    if person is not None and identity.attribution != IdentityAttribution.PERSONAL:
        identity_attribute(identity=identity, attribution=IdentityAttribution.PERSONAL)  # assigned: the person's
    usage = identity.usage_records.aggregate(tokens=Coalesce(Sum("total_tokens"), 0), records=Count("id"))
    if person is None:
        messages.success(request, f"{identity} is unassigned; its {usage['tokens']:,} tokens count for no one.")
    else:
        messages.success(
            request,
            f"{identity} is now {person.display_name}'s: {usage['tokens']:,} tokens in {usage['records']:,} "
            "daily records count for them, past usage included.",
        )
    return redirect(_safe_next(request, reverse("identities-list")))


@require_POST
@admin_required
def identity_attribution_view(request, pk: int):
    """Mark an identity personal, shared (with a team) or service."""
    identity = get_object_or_404(Identity, pk=pk)
    form = IdentityAttributionForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{identity}: {field}: {' '.join(errors)}")
        return redirect(_safe_next(request, reverse("identities-list")))
    identity_attribute(identity=identity, **form.cleaned_data)
    counted = {
        IdentityAttribution.PERSONAL: "its person's usage",
        IdentityAttribution.SHARED: f"{form.cleaned_data['team']}'s shared usage: it counts for the team's totals, "
        "not for any person",
        IdentityAttribution.SERVICE: "service usage: it counts in no ranking and is listed here",
    }[identity.attribution]
    messages.success(request, f"{identity} is now {counted}.")
    return redirect(_safe_next(request, reverse("identities-list")))


@require_POST
@admin_required
def identities_bulk_assign(request):
    """Assign identities from a CSV, all or nothing (validation first, then one transaction)."""
    form = IdentityBulkForm(request.POST, request.FILES)
    if not form.is_valid():
        return _identities_render(request, bulk_form=form, status=400)
    # Checked before anything changes: identities not stored yet have no usage, so never need confirming.
    large = []
    for row in form.cleaned_data["file"]:
        identity = Identity.objects.filter(provider=row.provider, kind=row.kind, value=row.value).first()
        if identity and row.attribution == IdentityAttribution.PERSONAL:
            if identity_assignment_question(identity, row.person):
                large.append(f"line {row.line}: {identity_share(identity).describe(identity)}")
    if large and not form.cleaned_data["confirm"]:
        form.add_error(
            "confirm",
            [
                f"Nothing was changed. {len(large)} line(s) pin more than {CONFIRM_SHARE:.0%} of the last "
                f"{CONFIRM_DAYS} days' tokens on one person; tick the confirmation, or mark them shared or service:",
                *large,
            ],
        )
        return _identities_render(request, bulk_form=form, status=409)
    created = changed = 0
    with transaction.atomic():
        rows = []
        for row in form.cleaned_data["file"]:
            identity, was_created = Identity.objects.get_or_create(
                provider=row.provider, kind=row.kind, value=row.value
            )
            created += was_created
            rows.append((row, identity))
        for row, identity in rows:
            person_changes = row.person is not None and identity.person_id != row.person.pk
            attribution_changes = (identity.attribution, identity.shared_team_id) != (
                row.attribution,
                getattr(row.team, "pk", None),
            )
            if person_changes:
                identity_assign(identity=identity, person=row.person)
            if attribution_changes:
                identity_attribute(identity=identity, attribution=row.attribution, team=row.team)
            changed += person_changes or attribution_changes
    total = len(form.cleaned_data["file"])
    messages.success(
        request,
        f"{request.FILES['file'].name}: {total} line(s); {changed} identities assigned "
        f"({created} new, {total - changed} already right).",
    )
    return redirect("identities-list")
