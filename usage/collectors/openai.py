"""OpenAI Admin API (docs/formats.md, "Provider admin APIs"): usage grouped by user, api key, project and model
in hourly buckets, the Costs API (daily), the users list and each project's api keys, so ids map to emails.

Auth: `Authorization: Bearer <Admin API key>`. Usage/costs pages: `{data, has_more, next_page}`, the cursor
goes back as `page`. Lists: `{data, has_more, last_id}`, the cursor goes back as `after`.
"""

from __future__ import annotations

from datetime import datetime

from .base import Collector, Dataset, bucket_results, follow_list, follow_pages, pick_format, utc_day_start

# Endpoints with token counts that the openai_usage parser reads (images/audio/search carry no tokens).
USAGE_ENDPOINTS = ("completions", "embeddings")
USAGE_GROUP_BY = ("user_id", "api_key_id", "project_id", "model")
HOURLY_PAGE_LIMIT = 168  # the documented maximum for bucket_width=1h
COSTS_PAGE_LIMIT = 180
LIST_LIMIT = 100


class OpenAICollector(Collector):
    provider = "openai"
    label = "OpenAI"
    default_base_url = "https://api.openai.com"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def test(self) -> str:
        # The cheapest admin-only call: one user from the organization's list. A project key gets 401/403.
        self.client.get("/v1/organization/users", [("limit", 1)])
        return "OpenAI answered: the key is an organization Admin key."

    def collect(self, start: datetime, end: datetime, *, formats: set[str]) -> list[Dataset]:
        datasets = []
        directory = pick_format(formats, "openai_directory")
        if directory:
            datasets.append(self._directory(directory))
        if "openai_usage" in formats:
            datasets.append(self._usage(start, end))
        costs = pick_format(formats, "openai_costs")
        if costs:
            datasets.append(self._costs(start, end, costs))
        return datasets

    def _usage(self, start: datetime, end: datetime) -> Dataset:
        dataset = Dataset("usage", "openai_usage")
        for endpoint in USAGE_ENDPOINTS:
            path = f"/v1/organization/usage/{endpoint}"

            def fetch(cursor: str | None, path: str = path) -> dict:
                params: list[tuple[str, object]] = [
                    ("start_time", int(start.timestamp())),
                    ("end_time", int(end.timestamp())),
                    ("bucket_width", "1h"),
                    *[("group_by[]", field) for field in USAGE_GROUP_BY],
                    ("limit", HOURLY_PAGE_LIMIT),
                    ("page", cursor),
                ]
                return self.client.get(path, params)

            for page in follow_pages(fetch, where=f"OpenAI {path}"):
                dataset.add(page, bucket_results(page))
        return dataset

    def _costs(self, start: datetime, end: datetime, format_name: str) -> Dataset:
        # Costs come only in daily UTC buckets: start at the UTC midnight so the first day is whole.
        dataset = Dataset("costs", format_name)

        def fetch(cursor: str | None) -> dict:
            params: list[tuple[str, object]] = [
                ("start_time", int(utc_day_start(start).timestamp())),
                ("end_time", int(end.timestamp())),
                ("bucket_width", "1d"),
                ("group_by[]", "project_id"),
                ("group_by[]", "api_key_id"),
                ("group_by[]", "line_item"),
                ("limit", COSTS_PAGE_LIMIT),
                ("page", cursor),
            ]
            return self.client.get("/v1/organization/costs", params)

        for page in follow_pages(fetch, where="OpenAI /v1/organization/costs"):
            dataset.add(page, bucket_results(page))
        return dataset

    def _directory(self, format_name: str) -> Dataset:
        """The users list and every project's api keys (archived projects' too: their keys may still appear
        in usage), in one file, so user ids and key ids both map to emails."""
        dataset = Dataset("directory", format_name)

        def fetch_users(after: str | None) -> dict:
            return self.client.get("/v1/organization/users", [("limit", LIST_LIMIT), ("after", after)])

        for page in follow_list(fetch_users, where="OpenAI /v1/organization/users"):
            dataset.add(page, len(page.get("data") or []))

        project_ids: list[str] = []

        def fetch_projects(after: str | None) -> dict:
            params = [("limit", LIST_LIMIT), ("after", after), ("include_archived", "true")]
            return self.client.get("/v1/organization/projects", params)

        for page in follow_list(fetch_projects, where="OpenAI /v1/organization/projects"):
            project_ids.extend(str(project["id"]) for project in page.get("data") or [] if project.get("id"))
        for project_id in project_ids:
            path = f"/v1/organization/projects/{project_id}/api_keys"

            def fetch_keys(after: str | None, path: str = path) -> dict:
                return self.client.get(path, [("limit", LIST_LIMIT), ("after", after)])

            for page in follow_list(fetch_keys, where=f"OpenAI {path}"):
                dataset.add(page, len(page.get("data") or []))
        return dataset


COLLECTOR = OpenAICollector
