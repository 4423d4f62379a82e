"""Where the figures come from (admins): source precedence (which source counts where two report the same use)
and the reconciliation of billed and estimated cost."""

from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from usage.access import require_admin, viewer_for
from usage.models import SourcePrecedence
from usage.periods import org_today, window_for
from usage.services.precedence import PrecedenceError, precedence_delete, precedence_save, source_choices
from usage.services.reconciliation import reconciliation


class PrecedenceForm(forms.ModelForm):
    class Meta:
        model = SourcePrecedence
        fields = ["provider", "preferred", "over", "usage_kind", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("preferred", "over"):
            self.fields[name] = forms.ChoiceField(choices=source_choices(), label=self.fields[name].help_text)


@require_http_methods(["GET", "POST"])
def source_precedence_page(request):
    require_admin(viewer_for(request.user))
    form = PrecedenceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rule = precedence_save(form.save(commit=False))
        except PrecedenceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Saved: {rule}. The days it affects are being recounted.")
            return redirect("source-precedence")
    rules = SourcePrecedence.objects.all()
    labels = dict(source_choices())
    return render(
        request,
        "usage/source_precedence.html",
        {
            "rules": [
                (rule, labels.get(rule.preferred, rule.preferred), labels.get(rule.over, rule.over)) for rule in rules
            ],
            "form": form,
        },
        status=400 if form.errors else 200,
    )


@require_POST
def source_precedence_delete(request, pk: int):
    require_admin(viewer_for(request.user))
    rule = get_object_or_404(SourcePrecedence, pk=pk)
    precedence_delete(rule)
    messages.success(request, f"Removed: {rule}. Both sources now count where they overlap.")
    return redirect("source-precedence")


@require_GET
def reconciliation_page(request):
    """Billed vs estimated cost per provider for a month (`?month=YYYY-MM`, default this month)."""
    require_admin(viewer_for(request.user))
    try:
        month = date.fromisoformat(f"{request.GET['month']}-01") if request.GET.get("month") else org_today()
    except ValueError:
        month = org_today()
        messages.error(request, "month must look like 2026-09; showing this month.")
    window = window_for("month", month)
    rows = reconciliation(window.start, window.end)
    return render(
        request,
        "usage/reconciliation.html",
        {
            "window": window,
            "rows": rows,
            "previous_month": f"{window.start - timedelta(days=1):%Y-%m}",
            "next_month": f"{window.end + timedelta(days=1):%Y-%m}",
        },
    )
