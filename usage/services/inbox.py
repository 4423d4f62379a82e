"""The drop folder (settings.TOKENBOARD_INBOX): exports copied into it are imported, then moved away.

    inbox/            new files land here (only regular files at the top level are considered)
    inbox/processing/ a file being imported; renaming it here is the claim, so two scans never take one file
    inbox/done/       imported files
    inbox/failed/     rejected files, each with `<name>.reason.txt` next to it saying why

A file still being written is not taken: it must be unchanged (size and mtime) since a scan at least
`settle_seconds` ago, or its mtime must already be that old (a file moved in whole keeps its old mtime).
What each scan saw is kept in `inbox/.scan-state.json`. Hidden files and usual partial-download names
(`.part`, `.tmp`, `.partial`, `.crdownload`) are ignored, so `rsync`/browser temp files are never read.

Each claimed file is imported synchronously (source drop_folder) so its outcome decides where it goes.
A file left in processing/ (the worker died mid-import) is not retried automatically: the import it
created is listed on /imports/ and can be retried there; or move the file back into the inbox.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from usage.models import ImportBatch, ImportSource, ImportStatus
from usage.services.imports import ImportRejected, import_batch_create, import_batch_process, import_summary

logger = logging.getLogger(__name__)

STATE_FILE = ".scan-state.json"
FOLDERS = ("processing", "done", "failed")
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", ".reason.txt")
MAX_REASON_ERRORS = 200


@dataclass
class InboxScan:
    """What one scan did: names of files imported, rejected, and left waiting (still being written)."""

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)


def inbox_path() -> Path:
    return Path(settings.TOKENBOARD_INBOX)


def inbox_prepare(inbox: Path) -> None:
    for name in FOLDERS:
        (inbox / name).mkdir(parents=True, exist_ok=True)


def _candidates(inbox: Path) -> list[Path]:
    found = []
    for entry in os.scandir(inbox):
        name = entry.name
        if name.startswith((".", "~")) or name.lower().endswith(PARTIAL_SUFFIXES):
            continue
        if entry.is_file(follow_symlinks=False):
            found.append(Path(entry.path))
    return sorted(found)


def _load_state(inbox: Path) -> dict:
    try:
        return json.loads((inbox / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (ValueError, OSError):
        logger.warning("drop folder state file %s is unreadable; starting afresh", inbox / STATE_FILE)
        return {}


def _save_state(inbox: Path, state: dict) -> None:
    temporary = inbox / f"{STATE_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(state))
    os.replace(temporary, inbox / STATE_FILE)


def file_is_settled(signature: list, previous: dict | None, *, now: float, settle_seconds: float) -> bool:
    """True if the file is done being written: its mtime is at least settle_seconds old, or we saw the
    same size and mtime at least settle_seconds ago (by our clock, so a writer's skewed clock cannot
    fool the second rule)."""
    size, mtime_ns = signature
    if now - mtime_ns / 1e9 >= settle_seconds:
        return True
    return bool(previous and previous["signature"] == signature and now - previous["since"] >= settle_seconds)


def free_path(folder: Path, name: str) -> Path:
    """folder/name, or folder/stem-2.ext, -3… if that name is taken (a file dropped twice keeps both)."""
    target = folder / name
    stem, suffix = os.path.splitext(name)
    number = 2
    while target.exists():
        target = folder / f"{stem}-{number}{suffix}"
        number += 1
    return target


def inbox_scan(
    *, inbox: Path | None = None, now: float | None = None, settle_seconds: float | None = None
) -> InboxScan:
    """Import every settled file in the drop folder; safe to run concurrently and repeatedly."""
    inbox = inbox or inbox_path()
    now = time.time() if now is None else now
    if settle_seconds is None:
        settle_seconds = settings.TOKENBOARD_INBOX_SETTLE_SECONDS
    inbox.mkdir(parents=True, exist_ok=True)
    inbox_prepare(inbox)
    previous_state = _load_state(inbox)
    state: dict[str, dict] = {}
    result = InboxScan()
    for path in _candidates(inbox):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # taken by a concurrent scan
        signature = [stat.st_size, stat.st_mtime_ns]
        previous = previous_state.get(path.name)
        if not file_is_settled(signature, previous, now=now, settle_seconds=settle_seconds):
            unchanged = previous and previous["signature"] == signature
            state[path.name] = {"signature": signature, "since": previous["since"] if unchanged else now}
            result.waiting.append(path.name)
            continue
        claimed = free_path(inbox / "processing", path.name)
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            continue  # another scan claimed it first
        _import_claimed(claimed, path.name, inbox, result)
    _save_state(inbox, state)
    return result


def _import_claimed(claimed: Path, name: str, inbox: Path, result: InboxScan) -> None:
    try:
        with claimed.open("rb") as handle:
            batch = import_batch_create(file=handle, name=name, source=ImportSource.DROP_FOLDER, queue=False)
        result.batches.append(batch.pk)
        processed = import_batch_process(batch.pk)
    except ImportRejected as error:
        _move_failed(claimed, name, inbox, str(error))
        result.failed.append(name)
        return
    except Exception as error:
        # Recorded on the import (if any) and in the reason file; the scan goes on with the other files.
        logger.exception("drop folder: importing %s failed", name)
        _move_failed(claimed, name, inbox, f"{name}: internal error while importing ({type(error).__name__}: {error})")
        result.failed.append(name)
        return
    if processed is None:  # cannot happen for a batch created just now, but never lose the file
        processed = ImportBatch.objects.get(pk=batch.pk)
    if processed.status == ImportStatus.SUCCEEDED:
        os.rename(claimed, free_path(inbox / "done", name))
        result.done.append(name)
        logger.info("drop folder: %s", import_summary(processed))
        return
    lines = [import_summary(processed)]
    lines += [
        f"line {error['line']}: {error['reason']}" if error.get("line") else error["reason"]
        for error in processed.errors[:MAX_REASON_ERRORS]
    ]
    if processed.rows_rejected > MAX_REASON_ERRORS:
        lines.append(f"… {processed.rows_rejected - MAX_REASON_ERRORS:,} more; see import #{processed.pk} on /imports/")
    _move_failed(claimed, name, inbox, "\n".join(lines))
    result.failed.append(name)


def _move_failed(claimed: Path, name: str, inbox: Path, reason: str) -> None:
    target = free_path(inbox / "failed", name)
    os.rename(claimed, target)
    target.with_name(f"{target.name}.reason.txt").write_text(reason.rstrip("\n") + "\n", encoding="utf-8")
    logger.warning("drop folder: %s rejected: %s", name, reason.splitlines()[0])
