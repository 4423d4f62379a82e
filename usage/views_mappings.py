"""Column mappings for generic CSVs (admins): upload a sample, map its columns once, reuse the mapping."""

import json

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from usage.access import admin_required
from usage.models import ColumnMapping
from usage.parsers.generic_csv import COLUMN_FIELDS, IDENTITY_KINDS, PROVIDERS
from usage.services.mappings import (
    MAX_NAME,
    REQUIRED_FIELDS,
    MappingError,
    column_mapping_save,
    mapping_guess,
    sample_headers,
)

FIELD_LABELS = {
    "day": "Date or time",
    "identity": "Who (email, user id, key…)",
    "model": "Model",
    "account": "Account / project",
    "input_tokens": "Input tokens (not cached)",
    "cache_write_tokens": "Cache write tokens",
    "cache_read_tokens": "Cache read tokens",
    "output_tokens": "Output tokens",
    "requests": "Requests",
    "cost_usd": "Cost",
}


def _form_context(headers: list[str], chosen: dict[str, str], values: dict) -> dict:
    return {
        "headers": headers,
        "headers_json": json.dumps(headers),
        "fields": [(f, FIELD_LABELS[f], chosen.get(f, ""), f in REQUIRED_FIELDS) for f in COLUMN_FIELDS],
        "kinds": sorted(IDENTITY_KINDS),
        "providers": sorted(PROVIDERS),
        "values": values,
        "max_name": MAX_NAME,
    }


@require_http_methods(["GET", "POST"])
@admin_required
def column_mappings_page(request):
    context = {"mappings": ColumnMapping.objects.order_by("name"), "max_name": MAX_NAME}
    if request.method == "POST" and request.POST.get("step") == "sample":
        sample = request.FILES.get("sample")
        if sample is None:
            messages.error(request, "Choose a sample CSV file.")
            return redirect("column-mappings")
        try:
            headers = sample_headers(sample.read(256 * 1024), sample.name)
        except MappingError as error:
            messages.error(request, str(error))
            return redirect("column-mappings")
        values = {"name": "", "identity_kind": "email", "provider": "other", "currency": "USD"}
        context |= _form_context(headers, mapping_guess(headers), values)
    elif request.method == "POST":
        try:
            headers = json.loads(request.POST.get("headers", "[]"))
            if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
                raise ValueError
        except ValueError:
            messages.error(request, "The sample's columns were lost; upload the sample again.")
            return redirect("column-mappings")
        chosen = {f: request.POST.get(f"column_{f}", "") for f in COLUMN_FIELDS}
        values = {k: request.POST.get(k, "") for k in ("name", "identity_kind", "provider", "currency")}
        try:
            mapping = column_mapping_save(columns=chosen, headers=headers, **values)
        except MappingError as error:
            messages.error(request, f"Not saved — {error}")
            context |= _form_context(headers, chosen, values)
            return render(request, "usage/column_mappings.html", context, status=400)
        messages.success(
            request,
            f"Saved the column mapping “{mapping.name}”: upload such files with the format generic_csv:{mapping.name}.",
        )
        return redirect("column-mappings")
    return render(request, "usage/column_mappings.html", context)
