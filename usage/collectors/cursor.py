"""Cursor Admin API (docs/formats.md, "Provider admin APIs"): usage events by user email, and daily usage.

Auth: HTTP Basic with the admin key as the user name and an empty password. `POST /teams/filtered-usage-events`
pages with `page`/`pageSize` while `pagination.hasNextPage`; one request covers at most 30 days [observed],
so longer windows go in 30-day slices. `POST /teams/daily-usage-data` allows up to 90 days per request.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta

from .base import MAX_PAGES, Collector, Dataset, pick_format
from .http import ProviderUnavailable

EVENTS_PAGE_SIZE = 100
EVENTS_MAX_SPAN = timedelta(days=30)
DAILY_MAX_SPAN = timedelta(days=90)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def slices(start: datetime, end: datetime, span: timedelta) -> Iterator[tuple[datetime, datetime]]:
    while start < end:
        yield start, min(end, start + span)
        start += span


class CursorCollector(Collector):
    provider = "cursor"
    label = "Cursor"
    default_base_url = "https://api.cursor.com"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        token = base64.b64encode(f"{api_key}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def test(self) -> str:
        answer = self.client.get("/teams/members")
        members = answer.get("teamMembers")
        count = f" ({len(members)} team members)" if isinstance(members, list) else ""
        return f"Cursor answered: the key is a team Admin API key{count}."

    def collect(self, start: datetime, end: datetime, *, formats: set[str]) -> list[Dataset]:
        datasets = []
        events = pick_format(formats, "cursor_api", "cursor_api_events")
        if events:
            datasets.append(self._events(start, end, events))
        daily = pick_format(formats, "cursor_daily_usage")  # activity only, no tokens; pulled once a parser exists
        if daily:
            datasets.append(self._daily(start, end, daily))
        return datasets

    def _events(self, start: datetime, end: datetime, format_name: str) -> Dataset:
        dataset = Dataset("usage_events", format_name)
        for slice_start, slice_end in slices(start, end, EVENTS_MAX_SPAN):
            for page_number in range(1, MAX_PAGES + 1):
                body = {
                    "startDate": epoch_ms(slice_start),
                    "endDate": epoch_ms(slice_end),
                    "page": page_number,
                    "pageSize": EVENTS_PAGE_SIZE,
                }
                page = self.client.post("/teams/filtered-usage-events", body)
                dataset.add(page, len(page.get("usageEvents") or []))
                if not (page.get("pagination") or {}).get("hasNextPage"):
                    break
            else:
                raise ProviderUnavailable(f"Cursor usage events: still more pages after {MAX_PAGES}; giving up")
        return dataset

    def _daily(self, start: datetime, end: datetime, format_name: str) -> Dataset:
        dataset = Dataset("daily_usage", format_name)
        for slice_start, slice_end in slices(start, end, DAILY_MAX_SPAN):
            page = self.client.post(
                "/teams/daily-usage-data", {"startDate": epoch_ms(slice_start), "endDate": epoch_ms(slice_end)}
            )
            dataset.add(page, len(page.get("data") or []))
        return dataset


COLLECTOR = CursorCollector
