"""The ranking API's answers (leaderboard/people, leaderboard/teams), kept as rendered bytes in the shared cache
(Redis; the database cache without it): a repeated request is answered without ranking, serializing or rendering.

An answer is kept under a key of everything it shows:
- the request: scheme, host and path (the page links are absolute), its query parameters sorted, and the media
  type it is rendered in;
- the viewer: usage.access.Viewer.cache_key, every fact the role rules decide with;
- the standings: their generation (new at every refresh) and the freshness the answer carries (as of, failed,
  pending);
- the directory's version (usage.directory: names, opt-outs, emails, teams, memberships, managers, roles,
  allowances), kept beside the body rather than in the key, so both are read in one round trip: an answer
  kept under another version is not served;
- the org's day (rolling windows end today) and the efficiency metrics' minimum volume;
and for at most settings.TOKENBOARD_RANKING_CACHE_SECONDS (0: off). Only 200s rendered as JSON are kept: the
browsable API's page carries the user's name and a CSRF token. Authentication, permissions and content
negotiation run before the lookup (DRF's initial()), so only an authenticated viewer's own answers are found.
A cache that fails is skipped, logged: the answer is computed.
"""

from __future__ import annotations

import hashlib
import logging
from functools import partial, wraps

from django.conf import settings
from django.core.cache import cache
from django.db import connections, router
from django.http import HttpResponse

from leaderboard.windows import org_today
from usage.access import viewer_for
from usage.directory import CACHE_FAILURES, directory_version_and
from usage.models import StandingsDirtyDay, StandingsState
from usage.services.standings import quoted_table

logger = logging.getLogger(__name__)


def response_key(request) -> str | None:
    """The key of this request's answer, or None when it is not kept: the cache is off, the answer is not JSON,
    or there are no standings yet (nothing names them)."""
    if not settings.TOKENBOARD_RANKING_CACHE_SECONDS or request.accepted_renderer.format != "json":
        return None
    standings = _standings_stamp()
    if standings is None:
        return None
    asked = (
        request.scheme,
        request.get_host(),
        request.path,
        sorted(request.query_params.lists()),
        request.accepted_media_type,
        viewer_for(request.user).cache_key(),
        standings,
        org_today().isoformat(),
        settings.TOKENBOARD_EFFICIENCY_MIN_TOKENS,
    )
    return f"ranking-response:{hashlib.sha256(repr(asked).encode()).hexdigest()}"


def _standings_stamp() -> tuple | None:
    """The standings' generation and the freshness an answer shows (refreshed at, failed, pending), read in one
    statement where the standings are read (leaderboard.routers); None before the first refresh. Written out:
    the ORM took longer to compile it than the rest of an answer served from the cache took."""
    database = router.db_for_read(StandingsState)
    with connections[database].cursor() as cursor:
        cursor.execute(
            f"SELECT generation, refreshed_at, last_error <> '', EXISTS (SELECT 1 FROM {quoted_table(StandingsDirtyDay)}) "
            f"FROM {quoted_table(StandingsState)} WHERE id = 1 AND generation IS NOT NULL"
        )
        found = cursor.fetchone()
    return None if found is None else tuple(map(str, found))


def _keep(key: str, version: str, response) -> None:
    try:
        cache.set(
            key,
            (version, response["Content-Type"], response.content),
            timeout=settings.TOKENBOARD_RANKING_CACHE_SECONDS,
        )
    except CACHE_FAILURES:
        logger.warning("ranking response cache: the cache is unavailable; the answer is not kept", exc_info=True)


def response_cached(get):
    """A ranking view's GET, answered from the cache when the same answer was kept; else computed, and a 200 kept
    once rendered, under the directory's version read before it was computed. Errors (400, 403) are raised out
    of `get` and never kept."""

    @wraps(get)
    def cached_get(view, request, *args, **kwargs):
        key = version = found = None
        try:
            key = response_key(request)
            if key is not None:
                version, found = directory_version_and(key)
        except CACHE_FAILURES:
            logger.warning("ranking response cache: the cache is unavailable; computing the answer", exc_info=True)
            key = None
        if found is not None and found[0] == version:
            _version, content_type, body = found
            return HttpResponse(body, content_type=content_type)
        response = get(view, request, *args, **kwargs)
        if key is not None and response.status_code == 200:
            response.add_post_render_callback(partial(_keep, key, version))
        return response

    return cached_get
