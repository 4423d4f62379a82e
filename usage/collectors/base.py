"""What every collector is: a provider's admin API, walked page by page into raw datasets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from .http import JsonClient, ProviderUnavailable

MAX_PAGES = 10_000  # a provider that keeps answering has_more=true forever must not hang the worker


@dataclass
class Dataset:
    """The raw pages of one kind of data, in the order fetched; becomes one import of `format_name`.

    `records` counts the rows the pages hold (bucket results, list entries, events); a dataset with none is
    not imported (an empty window is not an error)."""

    kind: str
    format_name: str
    pages: list[dict] = field(default_factory=list)
    records: int = 0

    def add(self, page: dict, records: int) -> None:
        self.pages.append(page)
        self.records += records

    def as_json_lines(self) -> bytes:
        return "".join(json.dumps(page, separators=(",", ":"), sort_keys=True) + "\n" for page in self.pages).encode()


class Collector:
    provider: ClassVar[str]
    label: ClassVar[str]
    default_base_url: ClassVar[str]

    def __init__(self, *, api_key: str, base_url: str = "", client_options: dict | None = None):
        self.client = JsonClient(
            base_url or self.default_base_url,
            headers=self.auth_headers(api_key),
            provider_label=self.label,
            **(client_options or {}),
        )

    def auth_headers(self, api_key: str) -> dict[str, str]:
        raise NotImplementedError

    def test(self) -> str:
        """One cheap authenticated call. Returns a line for the admin; raises ProviderError with the reason."""
        raise NotImplementedError

    def collect(self, start: datetime, end: datetime, *, formats: set[str]) -> list[Dataset]:
        """Every page of every dataset whose parser is in `formats`, for usage in [start, end).
        `start` is at an hour boundary and starts an org-local day, so every day in the window is whole."""
        raise NotImplementedError


def follow_pages(fetch: Callable[[str | None], dict], *, where: str) -> Iterator[dict]:
    """Pages of a `{data, has_more, next_page}` endpoint, passing `next_page` back until has_more is false."""
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = fetch(cursor)
        yield page
        if not page.get("has_more"):
            return
        cursor = page.get("next_page")
        if not cursor:
            raise ProviderUnavailable(f"{where}: has_more is true but next_page is missing")
    raise ProviderUnavailable(f"{where}: still more pages after {MAX_PAGES}; giving up")


def follow_list(fetch: Callable[[str | None], dict], *, where: str, id_field: str = "id") -> Iterator[dict]:
    """Pages of a list endpoint paginated with `after`/`after_id` = the last id, while has_more."""
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = fetch(after)
        yield page
        data = page.get("data") or []
        if not page.get("has_more") or not data:
            return
        after = page.get("last_id") or data[-1].get(id_field)
        if not after:
            raise ProviderUnavailable(f"{where}: has_more is true but no last id to continue from")
    raise ProviderUnavailable(f"{where}: still more pages after {MAX_PAGES}; giving up")


def pick_format(formats: set[str], *names: str) -> str | None:
    """The first of `names` that a registered parser has (parsers are named after what they read)."""
    return next((name for name in names if name in formats), None)


def bucket_results(page: dict) -> int:
    return sum(len(bucket.get("results") or []) for bucket in page.get("data") or [] if isinstance(bucket, dict))


def utc_day_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def utc_days(start: datetime, end: datetime) -> Iterator[datetime]:
    """Each UTC day that [start, end) touches, as its midnight."""
    day = utc_day_start(start)
    while day < end:
        yield day
        day += timedelta(days=1)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
