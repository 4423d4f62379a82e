"""Small fake provider admin APIs on 127.0.0.1, following docs/formats.md ("Provider admin APIs").

Each fake checks the documented auth header and request parameters (a violation answers 400 and is listed in
`violations`, which tests assert empty), paginates like the provider (`has_more`/`next_page`, list
`last_id`, Cursor `pagination.hasNextPage`) and can be told to misbehave on matching requests: answer 429 with
Retry-After, 500, 401/403, answer slowly, or send a truncated body.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

GOOD_KEY = "sk-admin-GOOD-test-key-0123456789"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict | None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Fault:
    kind: str  # "429", "500", "401", "403", "slow", "truncated"
    times: int
    when: Callable[[Request], bool] | None = None
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class FakeProvider:
    provider: str
    api_key: str = GOOD_KEY
    page_size: int = 24  # buckets / events per page; small values force many pages
    # hourly usage: hour start (UTC) → list of result dicts (provider-shaped)
    hourly: dict[datetime, list[dict]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)  # Cursor usage events
    daily: list[dict] = field(default_factory=list)  # Cursor daily usage rows ("date" in epoch ms)
    claude_code: dict[str, list[dict]] = field(default_factory=dict)  # Anthropic: "YYYY-MM-DD" → records
    users: list[dict] = field(default_factory=list)
    projects: list[dict] = field(default_factory=list)  # OpenAI
    api_keys: dict[str, list[dict]] = field(default_factory=dict)  # OpenAI: project id → keys; Anthropic: "" → keys
    requests: list[Request] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    url: str = ""

    def fail(self, kind: str, *, times: int = 1, when=None, retry_after: str | None = None, delay: float = 0.0):
        self.faults.append(Fault(kind, times, when, retry_after, delay))

    def requests_to(self, fragment: str) -> list[Request]:
        return [r for r in self.requests if fragment in r.path]

    # --- answering -------------------------------------------------------------------------------------

    def take_fault(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and (fault.when is None or fault.when(request)):
                fault.times -= 1
                return fault
        return None

    def authorized(self, request: Request) -> tuple[bool, str]:
        if self.provider == "openai":
            return request.headers.get("authorization") == f"Bearer {self.api_key}", "Incorrect API key provided."
        if self.provider == "anthropic":
            if request.headers.get("anthropic-version") != "2023-06-01":
                self.violations.append(f"{request.path}: anthropic-version header missing or wrong")
            return request.headers.get("x-api-key") == self.api_key, "invalid x-api-key"
        expected = "Basic " + base64.b64encode(f"{self.api_key}:".encode()).decode()
        return request.headers.get("authorization") == expected, "Invalid API key"

    def error_body(self, status: int, message: str) -> dict:
        if self.provider == "anthropic":
            return {
                "type": "error",
                "error": {"type": "authentication_error" if status == 401 else "api_error", "message": message},
            }
        if self.provider == "cursor":
            return {"error": message}
        return {"error": {"message": message, "type": "invalid_request_error", "code": None}}

    def answer(self, request: Request) -> tuple[int, dict]:
        ok, message = self.authorized(request)
        if not ok:
            return 401, self.error_body(401, message)
        handler = getattr(self, f"_{self.provider}", None)
        return handler(request)

    def _violation(self, text: str) -> tuple[int, dict]:
        self.violations.append(text)
        return 400, self.error_body(400, text)

    def _hourly_pages(self, request: Request, start: datetime, end: datetime, render) -> tuple[int, dict]:
        """All hourly buckets of [start, end) (empty ones too, like the real APIs), `page_size` per page."""
        hours = []
        hour = start
        while hour < end:
            hours.append(hour)
            hour += timedelta(hours=1)
        offset = 0
        cursor = request.param("page")
        if cursor:
            if not cursor.startswith("page_"):
                return self._violation(f"{request.path}: unknown page cursor {cursor!r}")
            offset = int(cursor.removeprefix("page_"))
        limit = min(int(request.param("limit") or 24), self.page_size)
        chunk = hours[offset : offset + limit]
        more = offset + limit < len(hours)
        page = {"data": [render(h, self.hourly.get(h, [])) for h in chunk], "has_more": more}
        page["next_page"] = f"page_{offset + limit}" if more else None
        return 200, page

    def _openai(self, request: Request) -> tuple[int, dict]:
        path = request.path
        if path.startswith("/v1/organization/usage/"):
            endpoint = path.rsplit("/", 1)[1]
            start, end = int(request.param("start_time") or -1), int(request.param("end_time") or -1)
            if start < 0 or start % 3600:
                return self._violation(f"{path}: start_time must be a unix time at an hour boundary, got {start}")
            if request.param("bucket_width") != "1h":
                return self._violation(f"{path}: expected bucket_width=1h")
            if set(request.query.get("group_by[]", [])) != {"user_id", "api_key_id", "project_id", "model"}:
                return self._violation(f"{path}: expected group_by[] user_id, api_key_id, project_id, model")
            if int(request.param("limit") or 0) > 168:
                return self._violation(f"{path}: limit above 168 for 1h buckets")

            def render(hour: datetime, results: list[dict]) -> dict:
                mine = [r for r in results if r.get("object", "").split(".")[2:3] == [endpoint]]
                return {
                    "object": "bucket",
                    "start_time": int(hour.timestamp()),
                    "end_time": int(hour.timestamp()) + 3600,
                    "results": mine,
                }

            status, page = self._hourly_pages(
                request, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), render
            )
            page["object"] = "page"
            return status, page
        if path == "/v1/organization/costs":
            start = int(request.param("start_time") or -1)
            if start < 0 or start % 86400:
                return self._violation(f"{path}: costs start_time must be a UTC midnight, got {start}")
            if request.param("bucket_width") != "1d":
                return self._violation(f"{path}: costs only have bucket_width=1d")
            return 200, {"object": "page", "data": [], "has_more": False, "next_page": None}
        if path == "/v1/organization/users":
            return 200, self._list(request, self.users, "after")
        if path == "/v1/organization/projects":
            return 200, self._list(request, self.projects, "after")
        if path.startswith("/v1/organization/projects/") and path.endswith("/api_keys"):
            project_id = path.split("/")[4]
            if project_id not in {p["id"] for p in self.projects}:
                return 404, self.error_body(404, f"No such project: {project_id}")
            return 200, self._list(request, self.api_keys.get(project_id, []), "after")
        return 404, self.error_body(404, f"Invalid URL (GET {path})")

    def _list(self, request: Request, items: list[dict], after_param: str) -> dict:
        after = request.param(after_param)
        limit = min(int(request.param("limit") or 20), self.page_size)
        ids = [item["id"] for item in items]
        offset = ids.index(after) + 1 if after in ids else 0
        chunk = items[offset : offset + limit]
        return {
            "object": "list",
            "data": chunk,
            "first_id": chunk[0]["id"] if chunk else None,
            "last_id": chunk[-1]["id"] if chunk else None,
            "has_more": offset + limit < len(items),
        }

    def _anthropic(self, request: Request) -> tuple[int, dict]:
        path = request.path
        if path == "/v1/organizations/usage_report/messages":
            try:
                start = datetime.fromisoformat(request.param("starting_at").replace("Z", "+00:00"))
                end = datetime.fromisoformat(request.param("ending_at").replace("Z", "+00:00"))
            except (AttributeError, ValueError):
                return self._violation(f"{path}: starting_at/ending_at must be RFC 3339")
            if start.minute or start.second:
                return self._violation(f"{path}: starting_at must be at an hour boundary")
            if request.param("bucket_width") != "1h":
                return self._violation(f"{path}: expected bucket_width=1h")
            if set(request.query.get("group_by[]", [])) != {"api_key_id", "workspace_id", "model"}:
                return self._violation(f"{path}: expected group_by[] api_key_id, workspace_id, model")

            def render(hour: datetime, results: list[dict]) -> dict:
                return {
                    "starting_at": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "ending_at": (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "results": results,
                }

            return self._hourly_pages(request, start, end, render)
        if path == "/v1/organizations/usage_report/claude_code":
            day = request.param("starting_at") or ""
            if len(day) != 10:
                return self._violation(f"{path}: starting_at must be one UTC day (YYYY-MM-DD), got {day!r}")
            records = self.claude_code.get(day, [])
            cursor = request.param("page")
            offset = int(cursor.removeprefix("page_")) if cursor else 0
            chunk = records[offset : offset + self.page_size]
            more = offset + self.page_size < len(records)
            return 200, {
                "data": chunk,
                "has_more": more,
                "next_page": f"page_{offset + self.page_size}" if more else None,
            }
        if path == "/v1/organizations/cost_report":
            if request.param("bucket_width") != "1d":
                return self._violation(f"{path}: cost_report only has bucket_width=1d")
            return 200, {"data": [], "has_more": False, "next_page": None}
        if path in ("/v1/organizations/users", "/v1/organizations/api_keys"):
            items = self.users if path.endswith("users") else self.api_keys.get("", [])
            return 200, self._list(request, items, "after_id")
        return 404, self.error_body(404, f"Not found: {path}")

    def _cursor(self, request: Request) -> tuple[int, dict]:
        path = request.path
        if path == "/teams/members" and request.method == "GET":
            return 200, {"teamMembers": [{"name": "Alice", "email": "alice@acme.example", "role": "member"}]}
        if path == "/teams/filtered-usage-events" and request.method == "POST":
            body = request.body or {}
            start, end = body.get("startDate"), body.get("endDate")
            if not isinstance(start, int) or not isinstance(end, int) or end - start > 30 * 86400 * 1000:
                return self._violation(f"{path}: startDate/endDate must be epoch ms at most 30 days apart")
            page, size = int(body.get("page", 1)), int(body.get("pageSize", 10))
            inside = [e for e in self.events if start <= int(e["timestamp"]) < end]
            size = min(size, self.page_size)
            chunk = inside[(page - 1) * size : page * size]
            pages = max(1, -(-len(inside) // size))
            return 200, {
                "usageEvents": chunk,
                "totalUsageEventsCount": len(inside),
                "pagination": {
                    "numPages": pages,
                    "currentPage": page,
                    "pageSize": size,
                    "hasNextPage": page < pages,
                    "hasPreviousPage": page > 1,
                },
            }
        if path == "/teams/daily-usage-data" and request.method == "POST":
            body = request.body or {}
            start, end = body.get("startDate", 0), body.get("endDate", 0)
            return 200, {"data": [row for row in self.daily if start <= row["date"] < end]}
        return 404, self.error_body(404, f"Not found: {path}")


def make_handler(fake: FakeProvider):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def _handle(self, method: str):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            request = Request(
                method, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}, body
            )
            fake.requests.append(request)
            fault = fake.take_fault(request)
            if fault and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault and fault.kind in ("429", "500", "401", "403"):
                status = int(fault.kind)
                message = {
                    429: "Rate limit exceeded",
                    500: "Internal server error",
                    401: "Incorrect API key provided.",
                    403: "This key does not have the admin scope.",
                }[status]
                self._send(status, fake.error_body(status, message), retry_after=fault.retry_after)
                return
            status, document = fake.answer(request)
            if fault and fault.kind == "truncated":
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(status, document)

        def _send(self, status: int, document: dict, retry_after: str | None = None):
            payload = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

    return Handler


class FakeServer:
    def __init__(self, fake: FakeProvider):
        self.fake = fake
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
        self.httpd.daemon_threads = True
        fake.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"fake-{fake.provider}", daemon=True)

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
