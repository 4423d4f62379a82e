"""A small JSON-over-HTTP client for provider admin APIs, on the standard library.

Retries (docs/architecture.md, Reliability rules):
- 429: waits what `Retry-After` says (seconds or an HTTP date; capped), else the backoff below;
- 5xx, network errors, timeouts and truncated/unreadable bodies: exponential backoff with full jitter;
- both up to `max_attempts` in total, then `ProviderUnavailable`;
- 401/403: `ProviderAuthError` at once (no retry), with the provider's own message;
- other 4xx: `ProviderRequestError` at once (retrying a bad request cannot help).
The API key travels only in the request headers; it never appears in a message or log line.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

logger = logging.getLogger(__name__)

USER_AGENT = "Tokenboard/1.0 (usage collector)"
MAX_RETRY_AFTER_SECONDS = 300.0

# Looked up at call time so tests can patch `usage.collectors.http.sleep` and record waits instead of waiting.
sleep = time.sleep


class ProviderError(Exception):
    """A pull cannot go on. `message` is safe to show an admin and to store on the connection."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class ProviderAuthError(ProviderError):
    """401/403: bad key or missing admin scope. Never retried."""


class ProviderRequestError(ProviderError):
    """Another 4xx: the request itself is wrong (bad parameter, unknown endpoint)."""


class ProviderUnavailable(ProviderError):
    """5xx, 429, network errors or unreadable answers, still failing after the last retry."""


def provider_message(body: bytes) -> str:
    """The provider's own error text: OpenAI/Anthropic `{"error": {"message": …}}`, or `{"error": "…"}`,
    or `{"message": …}`; else the start of the body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        return text[:300] or "(empty response)"
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if isinstance(error, str) and error:
            return error[:500]
        if document.get("message"):
            return str(document["message"])[:500]
    return text[:300]


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class JsonClient:
    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str],
        provider_label: str,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **headers}
        self.provider_label = provider_label
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.requests_made = 0

    def get(self, path: str, params: list[tuple[str, object]] | None = None) -> dict:
        query = urllib.parse.urlencode([(k, v) for k, v in (params or []) if v is not None])
        return self._request("GET", f"{path}?{query}" if query else path, None)

    def post(self, path: str, body: dict) -> dict:
        return self._request("POST", path, json.dumps(body).encode())

    def _backoff(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog): spreads retries of many workers; attempt 1 → up to base seconds.
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))  # noqa: S311

    def _request(self, method: str, path: str, data: bytes | None) -> dict:
        url = self.base_url + path
        where = f"{self.provider_label} {method} {path.split('?', 1)[0]}"
        last_problem = ""
        for attempt in range(1, self.max_attempts + 1):
            headers = dict(self.headers)
            if data is not None:
                headers["Content-Type"] = "application/json"
            request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
            wait: float | None = None
            self.requests_made += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    body = response.read()
                try:
                    document = json.loads(body)
                except ValueError:
                    raise _Unreadable(f"unreadable or truncated JSON ({len(body)} bytes)") from None
                if not isinstance(document, dict):
                    raise _Unreadable("the answer is not a JSON object")
                return document
            except urllib.error.HTTPError as error:
                status = error.code
                try:
                    body = error.read()
                except (OSError, http.client.HTTPException):
                    body = b""
                message = provider_message(body)
                if status in (401, 403):
                    hint = "bad or revoked API key" if status == 401 else "the key lacks admin access or scope"
                    raise ProviderAuthError(f"{where}: HTTP {status} ({hint}): {message}", status=status) from None
                if status == 429:
                    last_problem = f"HTTP 429 rate limited: {message}"
                    wait = retry_after_seconds(error.headers.get("Retry-After"))
                    if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                        raise ProviderUnavailable(
                            f"{where}: rate limited; the provider asks to wait {wait:.0f} s, longer than "
                            f"{MAX_RETRY_AFTER_SECONDS:.0f} s; the next scheduled run will try again",
                            status=429,
                        ) from None
                elif status >= 500:
                    last_problem = f"HTTP {status}: {message}"
                else:
                    raise ProviderRequestError(f"{where}: HTTP {status}: {message}", status=status) from None
            except _Unreadable as error:
                last_problem = str(error)
            except TimeoutError:
                last_problem = f"no answer within {self.timeout:g} s"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as error:
                reason = getattr(error, "reason", None) or error
                last_problem = f"network error ({type(error).__name__}: {reason})"
            if attempt == self.max_attempts:
                break
            delay = wait if wait is not None else self._backoff(attempt)
            logger.warning(
                "%s: %s; retry %d of %d in %.1f s", where, last_problem, attempt, self.max_attempts - 1, delay
            )
            sleep(delay)
        raise ProviderUnavailable(f"{where}: gave up after {self.max_attempts} attempts; last: {last_problem}")


class _Unreadable(Exception):
    pass
