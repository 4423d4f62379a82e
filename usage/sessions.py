"""Sessions read from the shared cache and written through to the database (Django's cached_db), so a signed-in
request makes no query for its session. settings.SESSION_ENGINE names it when the shared cache is Redis; the
embedded default keeps sessions in the database, where the database cache would only add a query.

Like every other use of the shared cache, a cache that fails is skipped: the session is read from the database.
Ending a session (a logout) forgets it in the cache before the database, so a logout that the cache cannot record
fails, rather than leaving the cache a copy that signs the user back in once it answers again.
"""

from __future__ import annotations

import logging

from django.contrib.sessions.backends import cached_db, db

from usage.directory import CACHE_FAILURES

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    def load(self) -> dict:
        try:
            return super().load()
        except CACHE_FAILURES:  # its read is skipped already; writing back what the database held failed
            logger.warning("sessions: the cache is unavailable; the session is read from the database", exc_info=True)
            return db.SessionStore.load(self)

    def exists(self, session_key: str) -> bool:
        try:
            return super().exists(session_key)
        except CACHE_FAILURES:
            return db.SessionStore.exists(self, session_key)

    def delete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if session_key is None:
            return
        self._cache.delete(self.cache_key_prefix + session_key)
        db.SessionStore.delete(self, session_key)

    def cycle_key(self) -> None:
        """The same data under a new key (a login, a password change). A copy of the old key that a failing cache
        keeps signs no one in — it holds the visitor's data from before the login, or the auth hash of a password
        just changed — so the cache's failure is logged and does not stop the login."""
        data, old_key = self._session, self.session_key
        self.create()
        self._session_cache = data
        if old_key is None:
            return
        try:
            self._cache.delete(self.cache_key_prefix + old_key)
        except CACHE_FAILURES:
            logger.warning("sessions: the cache is unavailable; a replaced key stays in it", exc_info=True)
        db.SessionStore.delete(self, old_key)
