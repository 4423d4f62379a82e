"""The audit trail page (admins): filters, pages of 50, and the same entries as CSV (?format=csv)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from usage.access import require_admin, viewer_for
from usage.csv_export import csv_response
from usage.services.audit import (
    CSV_HEADER,
    EVENT_GROUPS,
    AuditFilter,
    audit_entries,
    entry_actor,
    entry_csv_row,
    entry_details_text,
)

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    event = forms.ChoiceField(required=False, choices=[("", "Any event"), *EVENT_GROUPS])
    actor = forms.CharField(required=False, max_length=150, label="Who")
    q = forms.CharField(required=False, max_length=200, label="About")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def audit_filter(self) -> AuditFilter:
        """The filter of the valid fields; an invalid one is left out (and shown with its error)."""
        data = self.cleaned_data if self.is_valid() else getattr(self, "cleaned_data", {})
        return AuditFilter(
            event=data.get("event") or "",
            actor=data.get("actor") or "",
            text=data.get("q") or "",
            since=data.get("since"),
            until=data.get("until"),
        )


@require_GET
def audit_page(request):
    require_admin(viewer_for(request.user))
    form = AuditFilterForm(request.GET or None)
    entries = audit_entries(form.audit_filter() if form.is_bound else AuditFilter())
    if request.GET.get("format") == "csv":
        return csv_response(request, "tokenboard-audit.csv", CSV_HEADER, (entry_csv_row(e) for e in entries.iterator()))
    params = request.GET.copy()
    params.pop("page", None)
    params.pop("format", None)
    export = params.copy()
    export["format"] = "csv"
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "usage/audit.html",
        {
            "form": form,
            "page": page,
            "rows": [(entry, entry_actor(entry), entry_details_text(entry)) for entry in page.object_list],
            "query_string": params.urlencode(),
            "export_query": export.urlencode(),
            "retention_days": settings.TOKENBOARD_AUDIT_RETENTION_DAYS,
        },
    )
