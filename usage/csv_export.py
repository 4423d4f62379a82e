"""CSV downloads that a spreadsheet opens safely: text cells that would run as formulas are quoted."""

import csv
from collections.abc import Iterable

from django.http import HttpResponse

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


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[object]]) -> HttpResponse:
    """An attachment download with every cell made safe."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([csv_safe(cell) for cell in row])
        count += 1
    # Every export goes through here: usage.audit.AuditMiddleware records who took it, from which page and filters.
    response.tokenboard_export = {"filename": filename, "rows": count}
    return response
