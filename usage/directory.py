"""The directory's version: a token in the shared cache that changes whenever something a ranking shows live
beside the standings changes: people (names, emails, pseudonyms, privacy opt-outs, their user), teams (names,
tree), memberships, team managers, users' roles and allowances. What is kept in the cache and shows any of it —
the ranking API's answers (leaderboard.api.response_cache), the signed-in users and their viewers (usage.login,
through directory_kept) — is kept under it, so the change shows on the next request.

ORM saves and deletes of those models bump it by signal (connected in UsageConfig.ready); code that changes
them with queryset .update() or bulk_create calls directory_changed() itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from redis.exceptions import RedisError

from usage.models import Allowance, Membership, Person, Team

logger = logging.getLogger(__name__)

# What a failing shared cache raises (Redis, or the database cache), for the callers that carry on without it.
CACHE_FAILURES = (RedisError, DatabaseError, OSError)
VERSION_KEY = "directory-version"
# Saves that change none of what a ranking shows: every login writes the user's last_login.
UNSHOWN_FIELDS = frozenset({"last_login"})


def directory_version() -> str:
    """The current version; a new one when the cache has none (first use, evicted, flushed)."""
    return cache.get_or_set(VERSION_KEY, lambda: uuid.uuid4().hex, None) + _uncommitted()


def directory_version_and(key: str) -> tuple[str, object]:
    """The current version and the cache's entry under `key` (None if none), read in one round trip."""
    found = cache.get_many([VERSION_KEY, key])
    if VERSION_KEY not in found:
        return directory_version(), found.get(key)
    return found[VERSION_KEY] + _uncommitted(), found.get(key)


def directory_kept(key: str, compute: Callable[[], object], *, seconds: int) -> object:
    """`compute()`, kept in the shared cache under `key` beside the directory's version it was computed under, and
    served while that version is current, for at most `seconds`. The version is read with the entry, in one round
    trip, and before computing: a change committed meanwhile retires what was computed. A cache that fails is
    skipped, logged: the value is computed."""
    try:
        version, found = directory_version_and(key)
    except CACHE_FAILURES:
        logger.warning("directory cache: the cache is unavailable; computing %s", key, exc_info=True)
        return compute()
    if found is not None and found[0] == version:
        return found[1]
    value = compute()
    try:
        cache.set(key, (version, value), timeout=seconds)
    except CACHE_FAILURES:
        logger.warning("directory cache: the cache is unavailable; %s is not kept", key, exc_info=True)
    return value


def _uncommitted() -> str:
    """This connection's changes not committed yet: its own reads see them at once (tests run inside one
    transaction), other processes once the commit bumps the shared version."""
    connection = transaction.get_connection()
    return getattr(connection, "directory_uncommitted", "") if connection.in_atomic_block else ""


def _bump() -> None:
    try:
        cache.set(VERSION_KEY, uuid.uuid4().hex, None)
    except CACHE_FAILURES:
        # Answers kept under the old version then live until their TTL (settings.TOKENBOARD_RANKING_CACHE_SECONDS).
        logger.warning("directory version: the cache is unavailable; the change was not announced", exc_info=True)


def _committed() -> None:
    connection = transaction.get_connection()
    if not getattr(connection, "directory_uncommitted", ""):
        return  # this commit's first callback bumped already: an org import changes thousands of rows in one
    connection.directory_uncommitted = ""
    _bump()


def directory_changed() -> None:
    """Bumped on commit, once however many rows the transaction changed, so no answer computed from the rows
    as they were is served after it. Inside the transaction only this connection's token changes: writing the
    shared version there would hold its row of the database cache locked until the commit, queueing every
    other transaction that changes the directory."""
    transaction.get_connection().directory_uncommitted = uuid.uuid4().hex
    transaction.on_commit(_committed)  # at once outside a transaction


def _saved(sender, update_fields=None, **kwargs) -> None:
    if update_fields is not None and frozenset(update_fields) <= UNSHOWN_FIELDS:
        return
    directory_changed()


def _deleted(sender, **kwargs) -> None:
    directory_changed()


def _managers_changed(sender, action: str, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        directory_changed()


def directory_signals_connect() -> None:
    for model in (Person, Team, Membership, Allowance, get_user_model()):
        post_save.connect(_saved, sender=model, dispatch_uid=f"directory-saved-{model._meta.label}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"directory-deleted-{model._meta.label}")
    m2m_changed.connect(_managers_changed, sender=Team.managers.through, dispatch_uid="directory-managers")
