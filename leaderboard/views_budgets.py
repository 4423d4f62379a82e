"""Pages of allowances, budgets and notifications (issue 13). Who may see or change what is decided in
usage.access: allowances and burn follow cost; admins manage them."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from usage.access import (
    access_team_detail,
    can_manage_budgets,
    can_see_allowance,
    person_display_name,
    require_admin,
    team_subtree_ids,
    viewer_for,
)
from usage.csv_export import csv_response
from usage.models import Allowance, BudgetPeriod, Membership, Notification, NotificationStatus, Person, TeamBudget
from usage.periods import org_today
from usage.services.budgets import (
    CSV_COLUMNS,
    CSV_MAX_BYTES,
    AllowanceImportError,
    BudgetError,
    allowance_save,
    allowances_csv_import,
    budget_save,
    date_parse,
    team_budget_on,
)
from usage.services.notifications import notification_queue_on_commit

from .budget_charts import burn_down_chart
from .budgets import allowance_ranking, allowance_ranking_day, person_burn, person_burns, team_burn

ALLOWANCE_CSV_HEADER = [
    "rank",
    "name",
    "email",
    "team",
    "period_start",
    "period_end",
    "allowance_tokens",
    "allowance_usd",
    "used_tokens",
    "used_usd",
    "allowance_used_pct",
]


def _allowance_rows(query, viewer):
    return allowance_ranking(
        allowance_ranking_day(query.window, org_today()), viewer, team_id=query.team_id, search=query.search
    )


def allowance_ranking_context(query, viewer, page_number: int) -> dict:
    """The people board ranked by allowance used: a page of the ranked, and everyone without an allowance."""
    ranked, apart = _allowance_rows(query, viewer)
    page = Paginator(ranked, 50, allow_empty_first_page=True).get_page(page_number)
    return {"standings": list(page.object_list), "page": page, "ranked_count": len(ranked), "apart": apart}


def allowance_ranking_csv(request, query, viewer) -> HttpResponse:
    ranked, apart = _allowance_rows(query, viewer)
    rows = []
    for s in (*ranked, *apart):
        detail = s.email is not None
        burn = s.burn if detail else None
        rows.append(
            [
                s.rank if s.rank is not None else "",
                s.display_name,
                s.email or "",
                s.team_name,
                s.period.start if s.period else "",
                s.period.end if s.period else "",
                *(
                    [
                        s.allowance.tokens if s.allowance.tokens is not None else "",
                        s.allowance.usd if s.allowance.usd is not None else "",
                        burn.used_tokens,
                        burn.used_usd,
                    ]
                    if burn
                    else ["", "", "", ""]
                ),
                f"{s.used_percent:.1f}" if s.used_percent is not None else "",
            ]
        )
    return csv_response(
        request,
        f"tokenboard-people-allowance-used-{query.window.start:%Y%m%d}-{query.window.end:%Y%m%d}.csv",
        ALLOWANCE_CSV_HEADER,
        rows,
        filters=query.as_params(),
    )


def person_budget_context(viewer, person: Person) -> dict:
    """The person page's allowance section: shown to whoever may see the person's cost."""
    if not can_see_allowance(viewer, person.pk):
        return {}
    found = person_burn(person.pk, org_today(), with_daily=True)
    if found is None:
        return {"allowance_checked": True}
    allowance, burn = found
    return {
        "allowance_checked": True,
        "allowance": allowance,
        "burn": burn,
        "burn_chart": burn_down_chart(burn, chart_id="chart-burn"),
    }


def team_budget_summary(team_id: int) -> dict:
    """The team page's budget line (its managers and admins see the team page's detail)."""
    today = org_today()
    budget = team_budget_on(team_id, today)
    return {"team_burn": team_burn(budget, today) if budget else None}


def _budget_fields(request: HttpRequest) -> dict:
    return {
        "period": request.POST.get("period", ""),
        "tokens": request.POST.get("tokens", ""),
        "usd": request.POST.get("usd", ""),
        "start": date_parse(request.POST.get("start"), "start", org_today()),
    }


def _webhook_change(request: HttpRequest) -> str | None:
    """The new webhook, "" to remove it, None to keep the stored one (it is never shown back)."""
    if request.POST.get("remove_webhook"):
        return ""
    return request.POST.get("slack_webhook_url", "").strip() or None


@require_http_methods(["GET", "POST"])
def team_budget_page(request: HttpRequest, team_id: int) -> HttpResponse:
    """A team's budget with its burn-down, and its members' allowance use: the team's managers and admins.
    Admins set the budget and the team's default allowance here."""
    viewer = viewer_for(request.user)
    team = access_team_detail(viewer, team_id)
    today = org_today()
    if request.method == "POST":
        require_admin(viewer)
        action = request.POST.get("action", "")
        try:
            fields = _budget_fields(request)
            if action == "budget":
                budget_save(
                    team=team,
                    thresholds=request.POST.get("thresholds", ""),
                    slack_webhook_url=_webhook_change(request),
                    **fields,
                )
                messages.success(request, f"Budget of {team.name} saved from {fields['start']}.")
            elif action == "default_allowance":
                allowance_save(team=team, **fields)
                messages.success(request, f"Default allowance of {team.name} saved from {fields['start']}.")
            else:
                messages.warning(request, "Unknown action.")
        except BudgetError as error:
            messages.error(request, f"Not saved — {error}")
        return redirect("team-budget", team_id=team.pk)
    budget = team_budget_on(team.pk, today)
    burn = team_burn(budget, today, with_daily=True) if budget else None
    member_ids = list(
        Membership.objects.filter(team_id__in=team_subtree_ids([team.pk]), end__isnull=True).values_list(
            "person_id", flat=True
        )
    )
    burns = person_burns(today, member_ids)
    people = Person.objects.in_bulk(member_ids)
    members = sorted(
        (
            {
                "person": people[pid],
                "name": person_display_name(
                    viewer, pid, people[pid].display_name, people[pid].pseudonym, people[pid].show_name
                ),
                "allowance": burns.get(pid, (None, None))[0],
                "burn": burns.get(pid, (None, None))[1],
            }
            for pid in member_ids
            if pid in people
        ),
        key=lambda m: (m["burn"] is None, -(m["burn"].used_percent if m["burn"] else 0), m["name"]),
    )
    context = {
        "viewer": viewer,
        "team": team,
        "budget": budget,
        "burn": burn,
        "burn_chart": burn_down_chart(burn, chart_id="chart-burn") if burn else None,
        "members": members,
        "default_allowance": Allowance.objects.filter(team=team, start__lte=today).order_by("-start").first(),
        "can_manage": can_manage_budgets(viewer),
        "periods": BudgetPeriod.choices,
        "today": today,
    }
    return render(request, "leaderboard/team_budget.html", context)


@require_http_methods(["GET", "POST"])
def budgets_page(request: HttpRequest) -> HttpResponse:
    """Admins: every allowance and budget, a person's allowance, and the CSV bulk import."""
    viewer = viewer_for(request.user)
    require_admin(viewer)
    today = org_today()
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "csv":
            upload = request.FILES.get("file")
            if upload is None:
                messages.error(request, "Choose a CSV file to import.")
            elif upload.size > CSV_MAX_BYTES:
                messages.error(
                    request,
                    f"{upload.name}: larger than {CSV_MAX_BYTES // (1024 * 1024)} MB. Split it into smaller files, "
                    "each with the header row, and import them one after another.",
                )
            else:
                try:
                    text = upload.read().decode("utf-8-sig")
                    saved = allowances_csv_import(text, upload.name, today)
                    messages.success(request, f"{upload.name}: {saved} allowance(s) saved.")
                except UnicodeDecodeError:
                    messages.error(request, f"{upload.name}: not UTF-8 text; nothing was saved.")
                except AllowanceImportError as error:
                    messages.error(request, f"{error} — nothing was saved.")
        elif action == "delete_allowance":
            raw = request.POST.get("allowance", "")
            deleted, _ = Allowance.objects.filter(pk=int(raw) if raw.isdigit() else 0).delete()
            if deleted:
                messages.success(request, "Allowance deleted.")
            else:
                messages.warning(request, "No such allowance.")
        elif action == "person_allowance":
            person = Person.objects.filter(email=request.POST.get("email", "").strip().lower()).first()
            try:
                if person is None:
                    raise BudgetError("email", f"no person with email {request.POST.get('email', '')!r}")
                allowance_save(person=person, **_budget_fields(request))
                messages.success(request, f"Allowance of {person.display_name} saved.")
            except BudgetError as error:
                messages.error(request, f"Not saved — {error}")
        else:
            messages.warning(request, "Unknown action.")
        return redirect("budgets")
    context = {
        "viewer": viewer,
        "allowances": Allowance.objects.select_related("person", "team").order_by("-start", "id")[:500],
        "budgets": TeamBudget.objects.select_related("team").order_by("team__name", "-start"),
        "csv_columns": ",".join(CSV_COLUMNS),
        "periods": BudgetPeriod.choices,
        "today": today,
    }
    return render(request, "leaderboard/budgets.html", context)


@require_http_methods(["GET", "POST"])
def notifications_page(request: HttpRequest) -> HttpResponse:
    """Admins: every alert and digest — to whom, why, and whether it was sent, failed (with the error) or is
    waiting for a retry. A failed one can be retried now (it is still sent at most once)."""
    viewer = viewer_for(request.user)
    require_admin(viewer)
    if request.method == "POST":
        raw = request.POST.get("notification", "")
        failed = Notification.objects.filter(pk=int(raw) if raw.isdigit() else 0, status=NotificationStatus.FAILED)
        notification = failed.first()
        if notification is None:
            messages.warning(request, "Only a failed notification can be retried.")
        else:
            notification_queue_on_commit(notification)
            messages.success(request, f"Retry queued: {notification.title} to {notification.recipient}.")
        return redirect("notifications")
    status = request.GET.get("status", "")
    rows = Notification.objects.all()
    if status in NotificationStatus.values:
        rows = rows.filter(status=status)
    raw_page = request.GET.get("page", "1")
    page = Paginator(rows, 50).get_page(int(raw_page) if raw_page.isdigit() else 1)
    return render(
        request,
        "leaderboard/notifications.html",
        {"viewer": viewer, "page": page, "status": status, "statuses": NotificationStatus.choices},
    )
