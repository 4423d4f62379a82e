"""Connections pages (admins): the health list (last success, last error, rows pulled, next run) with "sync now"
and "test connection" buttons, and the create/edit form. The API key is write-only everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_celery_beat.models import PeriodicTask

from usage.access import admin_required
from usage.connection_forms import ProviderConnectionForm
from usage.models import ProviderConnection
from usage.services.connections import (
    PULL_TASK,
    QueueUnavailable,
    connection_delete,
    connection_next_run,
    connection_save,
    connection_sync_queue,
    connection_test,
    schedule_task_name,
)


@dataclass
class ConnectionRow:
    connection: ProviderConnection
    next_run: datetime | None
    scheduled: bool
    # The cron beat really uses, when an admin edited the periodic task away from the connection's own.
    edited_schedule: str = ""


@admin_required
def connections_page(request: HttpRequest) -> HttpResponse:
    connections = list(ProviderConnection.objects.order_by("name"))
    tasks = {
        task.name: task for task in PeriodicTask.objects.filter(task=PULL_TASK, enabled=True).select_related("crontab")
    }
    rows = []
    for connection in connections:
        task = tasks.get(schedule_task_name(connection))
        next_run = connection_next_run(connection, task=task) if task else None
        edited = ""
        if task is not None and task.crontab is not None:
            cron = task.crontab
            actual = " ".join([cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week])
            edited = actual if actual != connection.schedule else ""
        rows.append(ConnectionRow(connection, next_run, task is not None, edited))
    return render(request, "usage/connections.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@admin_required
def connection_edit_page(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    connection = get_object_or_404(ProviderConnection, pk=pk) if pk else ProviderConnection()
    form = ProviderConnectionForm(request.POST or None, instance=connection)
    if request.method == "POST" and form.is_valid():
        connection = form.save(commit=False)
        try:
            connection_save(connection, api_key=form.cleaned_data.get("api_key"))
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, f"Saved connection {connection.name!r}. Use “Test connection” to check the key.")
            return redirect("connections-list")
    return render(request, "usage/connections_form.html", {"form": form, "connection": connection})


@require_POST
@admin_required
def connection_sync_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(ProviderConnection, pk=pk)
    try:
        connection_sync_queue(connection)
    except QueueUnavailable as error:
        messages.error(request, f"{connection.name}: {error}")
    else:
        messages.success(request, f"Queued a pull of {connection.name!r}; this page shows the result when it is done.")
    return redirect("connections-list")


@require_POST
@admin_required
def connection_test_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(ProviderConnection, pk=pk)
    check = connection_test(connection)
    level = messages.SUCCESS if check.ok else messages.ERROR
    messages.add_message(request, level, f"{connection.name}: {check.message}")
    return redirect("connections-list")


@require_POST
@admin_required
def connection_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(ProviderConnection, pk=pk)
    connection_delete(connection)
    messages.success(request, f"Deleted connection {connection.name!r} and its schedule; its imports are kept.")
    return redirect("connections-list")
