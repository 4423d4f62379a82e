"""Decisions on held days (docs/admin-guide.md, Anomaly review): an admin clears a hold (the day counts again)
or confirms it (the day stays out); the person adds a note. Every decision is recorded with who and when, and
marks exactly the held day dirty, so the next refresh recomputes that day's rollups and the windows that
contain it, and nothing else."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from usage.models import HoldDecision, HoldStatus, UsageHold
from usage.services.standings import standings_mark_days

DECISIONS = (HoldStatus.CLEARED, HoldStatus.CONFIRMED)
NOTE_MAX = 2000


def hold_decide(*, hold_id: int, status: str, user, note: str = "") -> UsageHold:
    """Clear or confirm a hold; ValidationError names what is wrong (unknown decision, nothing to change)."""
    if status not in DECISIONS:
        raise ValidationError({"status": f"unknown decision {status!r}; use cleared or confirmed"})
    with transaction.atomic():
        hold = UsageHold.objects.select_for_update().get(pk=hold_id)
        if hold.status == status:
            raise ValidationError({"status": f"{hold.person} on {hold.day} is already {hold.get_status_display()}"})
        now = timezone.now()
        hold.status, hold.decided_by, hold.decided_at = status, user, now
        hold.save(update_fields=["status", "decided_by", "decided_at"])
        HoldDecision.objects.create(hold=hold, status=status, decided_by=user, decided_at=now, note=note[:NOTE_MAX])
        standings_mark_days([hold.day])
    return hold


def hold_note_add(*, hold: UsageHold, note: str) -> UsageHold:
    """The person's own note on their held day (it replaces an earlier one)."""
    note = note.strip()
    if not note:
        raise ValidationError({"note": "the note is empty"})
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": f"the note is longer than {NOTE_MAX} characters"})
    hold.person_note, hold.person_note_at = note, timezone.now()
    hold.save(update_fields=["person_note", "person_note_at"])
    return hold
