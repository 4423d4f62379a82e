"""OpenAI directory files: the organization users list (`organization.user`) and project API-key lists
(`organization.project.api_key`), as returned by the Admin API (a page, an array of pages, JSON lines, or a
bare array of objects).

They carry no usage: each entry tells who an id belongs to, so usage attributed to `user_id` / `api_key_id`
links to the right person. A key owned by a service account has no email: it is still listed (with its name
as the label) so an admin can map it by hand.
"""

from collections.abc import Iterator
from typing import IO

from .base import (
    DirectoryEntry,
    Format,
    ParseContext,
    ParsedItem,
    ParseError,
    RowError,
    Sample,
    Skipped,
    is_null,
    load_json_documents,
    looks_like_json,
)
from .tabular import email_or_blank


def objects_of(document: object) -> list:
    """The entries of a list page ({"object": "list", "data": [...]}), a bare array, or one object."""
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        return document["data"]
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return [document]
    raise ParseError("not a directory list: expected an object with a 'data' list")


class OpenAIDirectory(Format):
    name = "openai_directory"
    label = "OpenAI users / API keys list (JSON)"
    provider = "openai"

    def detect(self, sample: Sample) -> bool:
        return looks_like_json(sample) and (
            '"organization.user"' in sample.text
            or '"organization.project.api_key"' in sample.text
            or ('"redacted_value"' in sample.text and '"owner"' in sample.text)
        )

    def parse(self, stream: IO[str], ctx: ParseContext) -> Iterator[ParsedItem]:
        for line, document in load_json_documents(stream):
            for entry in objects_of(document):
                yield self._entry(entry, line)

    def _entry(self, entry: object, line: int) -> ParsedItem:
        if not isinstance(entry, dict):
            return RowError(line, "list entry is not an object")
        kind = str(entry.get("object") or "")
        entry_id = entry.get("id")
        if is_null(entry_id) or not isinstance(entry_id, (str, int)):
            return RowError(line, f"{kind or 'entry'} without an id")
        entry_id = str(entry_id)
        name = "" if is_null(entry.get("name")) else str(entry.get("name"))[:200]
        if kind == "organization.user":
            email = email_or_blank(str(entry.get("email") or ""))
            if not email:
                return Skipped(line, f"user {entry_id} has no email")
            return DirectoryEntry(line, "openai", "user_id", entry_id, email, name)
        if kind == "organization.project.api_key" or isinstance(entry.get("owner"), dict):
            owner = entry.get("owner") if isinstance(entry.get("owner"), dict) else {}
            user = owner.get("user") if isinstance(owner.get("user"), dict) else {}
            email = email_or_blank(str(user.get("email") or ""))
            owner_user_id = "" if is_null(user.get("id")) else str(user.get("id"))
            if not email:
                account = owner.get("service_account") if isinstance(owner.get("service_account"), dict) else {}
                owner_name = account.get("name") or account.get("id") or owner.get("type") or "no owner"
                name = f"{name} (owned by {owner_name})".strip()[:200]
            return DirectoryEntry(line, "openai", "api_key", entry_id, email, name, owner_user_id)
        return Skipped(line, f"not a user or API key ({kind or 'no object type'})")


FORMAT = OpenAIDirectory()
