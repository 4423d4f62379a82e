"""CSV downloads that a spreadsheet opens safely: text cells that would run as formulas are quoted.

Every export goes through `csv_response`, so whatever applies to all exports is done here once: in share-safe
mode (settings.TOKENBOARD_SHARE_SAFE) a watermark line above the header and a watermark column on every row
say who exported it, when, and with which filters (docs/admin-guide.md, Share-safe mode)."""

import csv
from collections.abc import Iterable, Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

# A spreadsheet runs a cell starting with one of these as a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """Text starting like a formula gets a leading quote; None is an empty cell; numbers pass unchanged
    (the caller writes them as plain digits, which never start with those characters)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def exported_by(request: HttpRequest) -> str:
    """The exporting user as the watermark names them: email, else username."""
    user = request.user
    return getattr(user, "email", "") or user.get_username()


def watermark(request: HttpRequest, filters: Mapping[str, object]) -> tuple[str, str]:
    """(the line above the header, the short per-row column) naming the viewer, the time and the filters."""
    when = timezone.now().replace(microsecond=0).isoformat()
    shown = "; ".join(f"{name}={value}" for name, value in filters.items() if value not in (None, "")) or "none"
    who = exported_by(request)
    return f"Exported by {who} at {when}; filters: {shown}. Internal: do not share outside the company.", (
        f"{who} {when}"
    )


def csv_response(
    request: HttpRequest,
    filename: str,
    header: list[str],
    rows: Iterable[Iterable[object]],
    *,
    filters: Mapping[str, object] | None = None,
) -> HttpResponse:
    """An attachment download with every cell made safe (and watermarked in share-safe mode)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    watermark_cells = []
    if settings.TOKENBOARD_SHARE_SAFE:
        line, column = watermark(request, filters or {})
        writer.writerow([csv_safe(line)])
        header, watermark_cells = [*header, "watermark"], [csv_safe(column)]
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([*(csv_safe(cell) for cell in row), *watermark_cells])
        count += 1
    # Every export goes through here: usage.audit.AuditMiddleware records who took it, from which page and filters.
    response.tokenboard_export = {"filename": filename, "rows": count}
    return response
