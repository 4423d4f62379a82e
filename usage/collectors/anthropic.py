"""Anthropic Admin API (docs/formats.md, "Provider admin APIs"): usage_report/messages grouped by api key,
workspace and model in hourly buckets, cost_report (daily), Claude Code analytics (one UTC day per request),
and the users and api_keys lists.

Auth: `x-api-key: <sk-ant-admin… key>` and `anthropic-version: 2023-06-01`. Reports: `{data, has_more,
next_page}`, the cursor goes back as `page`. Lists: `{data, has_more, last_id}`, continued with `after_id`.
"""

from __future__ import annotations

from datetime import datetime

from .base import (
    Collector,
    Dataset,
    bucket_results,
    follow_list,
    follow_pages,
    pick_format,
    rfc3339,
    utc_day_start,
    utc_days,
)

ANTHROPIC_VERSION = "2023-06-01"
USAGE_GROUP_BY = ("api_key_id", "workspace_id", "model")
HOURLY_PAGE_LIMIT = 168
COST_PAGE_LIMIT = 31
CLAUDE_CODE_PAGE_LIMIT = 1000
USERS_LIMIT = 100
API_KEYS_LIMIT = 1000


class AnthropicCollector(Collector):
    provider = "anthropic"
    label = "Anthropic"
    default_base_url = "https://api.anthropic.com"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}

    def test(self) -> str:
        # Admin endpoints answer only to an sk-ant-admin key; a normal API key gets 401/403.
        self.client.get("/v1/organizations/users", [("limit", 1)])
        return "Anthropic answered: the key is an organization Admin key."

    def collect(self, start: datetime, end: datetime, *, formats: set[str]) -> list[Dataset]:
        datasets = []
        directory = pick_format(formats, "anthropic_directory")
        if directory:
            datasets.append(self._directory(directory))
        if "anthropic_usage" in formats:
            datasets.append(self._usage(start, end))
        costs = pick_format(formats, "anthropic_cost", "anthropic_costs")
        if costs:
            datasets.append(self._costs(start, end, costs))
        claude_code = pick_format(formats, "claude_code", "anthropic_claude_code")
        if claude_code:
            datasets.append(self._claude_code(start, end, claude_code))
        return datasets

    def _bucket_report(self, name: str, format_name: str, path: str, params: list[tuple[str, object]]) -> Dataset:
        """Every page of a bucketed report (usage, cost), following `next_page` to the end."""
        dataset = Dataset(name, format_name)

        def fetch(cursor: str | None) -> dict:
            return self.client.get(path, [*params, ("page", cursor)])

        for page in follow_pages(fetch, where=f"Anthropic {path}"):
            dataset.add(page, bucket_results(page))
        return dataset

    def _usage(self, start: datetime, end: datetime) -> Dataset:
        params: list[tuple[str, object]] = [
            ("starting_at", rfc3339(start)),
            ("ending_at", rfc3339(end)),
            ("bucket_width", "1h"),
            *[("group_by[]", field) for field in USAGE_GROUP_BY],
            ("limit", HOURLY_PAGE_LIMIT),
        ]
        return self._bucket_report("usage", "anthropic_usage", "/v1/organizations/usage_report/messages", params)

    def _costs(self, start: datetime, end: datetime, format_name: str) -> Dataset:
        params: list[tuple[str, object]] = [
            ("starting_at", rfc3339(utc_day_start(start))),
            ("ending_at", rfc3339(end)),
            ("bucket_width", "1d"),
            ("group_by[]", "workspace_id"),
            ("group_by[]", "description"),
            ("limit", COST_PAGE_LIMIT),
        ]
        return self._bucket_report("costs", format_name, "/v1/organizations/cost_report", params)

    def _claude_code(self, start: datetime, end: datetime, format_name: str) -> Dataset:
        """Claude Code analytics take one UTC day per request (`starting_at=YYYY-MM-DD`)."""
        dataset = Dataset("claude_code", format_name)
        path = "/v1/organizations/usage_report/claude_code"
        for day in utc_days(start, end):

            def fetch(cursor: str | None, day: datetime = day) -> dict:
                params: list[tuple[str, object]] = [
                    ("starting_at", day.strftime("%Y-%m-%d")),
                    ("limit", CLAUDE_CODE_PAGE_LIMIT),
                    ("page", cursor),
                ]
                return self.client.get(path, params)

            for page in follow_pages(fetch, where=f"Anthropic {path} {day:%Y-%m-%d}"):
                dataset.add(page, len(page.get("data") or []))
        return dataset

    def _directory(self, format_name: str) -> Dataset:
        """Users and api keys in one file: a key names its creator's user id, and the parser links it to the
        creator's email only when that user is in the same file."""
        dataset = Dataset("directory", format_name)
        for path, limit in (("/v1/organizations/users", USERS_LIMIT), ("/v1/organizations/api_keys", API_KEYS_LIMIT)):

            def fetch(after: str | None, path: str = path, limit: int = limit) -> dict:
                return self.client.get(path, [("limit", limit), ("after_id", after)])

            for page in follow_list(fetch, where=f"Anthropic {path}"):
                dataset.add(page, len(page.get("data") or []))
        return dataset


COLLECTOR = AnthropicCollector
