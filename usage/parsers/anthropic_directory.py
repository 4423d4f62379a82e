"""Anthropic directory files: the users list (`type: "user"`) and the API keys list (`type: "api_key"`) from
the Admin API (a page, an array of pages, JSON lines, or a bare array).

- A user → DirectoryEntry (kind "user_id", its `user_…` id → email).
- An API key → DirectoryEntry (kind "api_key", its `apikey_…` id, the id the usage report names). Its owner is
  `created_by.id`, a user id, kept as the entry's owner_user_id: when that user is in the same upload (both
  lists in one file) the key also gets the user's email. Either way the key follows its creator's user id
  whenever that id is linked to a person, whatever the order of the uploads (usage.services.identities). Keys
  with a null `created_by` (legacy/system keys) and service-account keys have no owner user id: an admin maps
  them (and may mark them shared or service).
"""

import re
from collections.abc import Iterator
from typing import IO

from .base import (
    DirectoryEntry,
    Format,
    ParseContext,
    ParsedItem,
    RowError,
    Sample,
    Skipped,
    is_null,
    load_json_documents,
    looks_like_json,
)
from .openai_directory import objects_of
from .tabular import email_or_blank

_TYPE = re.compile(r'"type"\s*:\s*"(user|api_key)"')


class AnthropicDirectory(Format):
    name = "anthropic_directory"
    label = "Anthropic users / API keys list (JSON)"
    provider = "anthropic"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and bool(_TYPE.search(sample.text)) and '"organization.' not in sample.text

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        # Directory files are small: read all of it so keys can find their creator wherever the user is listed.
        entries = [(line, entry) for line, document in load_json_documents(stream) for entry in objects_of(document)]
        emails: dict[str, str] = {}
        for _line, entry in entries:
            if isinstance(entry, dict) and entry.get("type") == "user" and isinstance(entry.get("id"), str):
                email = email_or_blank(str(entry.get("email") or ""))
                if email:
                    emails[entry["id"]] = email
        for line, entry in entries:
            yield self._entry(entry, line, emails)

    def _entry(self, entry: object, line: int, emails: dict[str, str]) -> ParsedItem:
        if not isinstance(entry, dict):
            return RowError(line, "list entry is not an object")
        entry_id = entry.get("id")
        if is_null(entry_id) or not isinstance(entry_id, (str, int)):
            return RowError(line, f"{entry.get('type') or 'entry'} without an id")
        entry_id = str(entry_id)
        name = "" if is_null(entry.get("name")) else str(entry.get("name"))
        if entry.get("type") == "user":
            email = emails.get(entry_id, "")
            if not email:
                return Skipped(line, f"user {entry_id} has no email")
            return DirectoryEntry(line, "anthropic", "user_id", entry_id, email, name[:200])
        if entry.get("type") == "api_key":
            creator = entry.get("created_by") if isinstance(entry.get("created_by"), dict) else {}
            creator_id = str(creator.get("id") or "")
            email = emails.get(creator_id, "")
            if email:
                label = name
            elif creator_id:
                label = f"{name} (created by {creator.get('type') or 'user'} {creator_id})".strip()
            else:
                label = f"{name} (no creator)".strip()
            owner = creator_id if (creator.get("type") or "user") == "user" else ""
            return DirectoryEntry(line, "anthropic", "api_key", entry_id, email, label[:200], owner)
        return Skipped(line, f"not a user or API key ({entry.get('type')!r})")


FORMAT = AnthropicDirectory()
