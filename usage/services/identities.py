"""Identity resolution: (provider, kind, value) → Identity, linked to a Person by email where possible, and
through what is already known: a key, workspace or project whose owner's user id (`owner_user_id`, from a
directory file) is linked to a person is linked to that person too — when it arrives, or later when the user
id is linked — whatever the order of imports and pulls. Only unassigned identities are linked this way: an
admin's assignment is never overridden."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce, Lower

from usage.figures import COST_REPORT_KIND
from usage.models import DailyRollup, Identity, IdentityAttribution, IdentityKind, Person, Team
from usage.periods import org_today
from usage.services.standings import standings_mark_identities

IdentityKey = tuple[str, str, str]
CHUNK = 500


class ResolvedIdentity(NamedTuple):
    """What an import keeps of an identity it resolved: its id and the person its usage counts for."""

    pk: int
    person_id: int | None


# Keys resolved at a time, each slice's identities held as model instances only while it is linked: a large
# org's 85,000 identities held at once added about 70 MB to its import (docs/PERFORMANCE.md).
RESOLVE_SLICE = 5000


def identities_resolve(
    keys: Iterable[IdentityKey],
    *,
    emails: dict[IdentityKey, str] | None = None,
    labels: dict[IdentityKey, str] | None = None,
    owners: dict[IdentityKey, str] | None = None,
) -> dict[IdentityKey, ResolvedIdentity]:
    """Get or create one Identity per key (bulk), record owner emails, labels and owner user ids learned from
    the file, link unassigned identities whose email matches a Person, then link through owner user ids (both
    ways: this file's keys to known users, and known keys to this file's users). A slice of keys at a time: a key
    whose owner's user id comes in a later slice is linked when that slice's users are (identities_link_owned_by),
    so the people are read back once every slice is done. Call inside the import's transaction."""
    emails = emails or {}
    labels = labels or {}
    owners = owners or {}
    ordered = sorted(set(keys))
    ids: dict[IdentityKey, int] = {}
    for start in range(0, len(ordered), RESOLVE_SLICE):
        found = identities_get_or_create(
            ordered[start : start + RESOLVE_SLICE], emails=emails, labels=labels, owners=owners
        )
        _learned_store(found, emails, labels, owners)
        identities_autolink([i for i in found.values() if i.person_id is None])
        identities_follow_owners([i for i in found.values() if i.owner_user_id and i.person_id is None])
        identities_link_owned_by([i for i in found.values() if i.kind == IdentityKind.USER_ID])
        ids.update((key, identity.pk) for key, identity in found.items())
    return _people_read(ids)


def _learned_store(
    found: dict[IdentityKey, Identity],
    emails: dict[IdentityKey, str],
    labels: dict[IdentityKey, str],
    owners: dict[IdentityKey, str],
) -> None:
    """Store what the file says of identities that were known already: an owner email, a label, an owner's id."""
    changed = []
    for key, identity in found.items():
        email = emails.get(key, "").lower()
        label = labels.get(key, "")[:200]
        owner = owners.get(key, "")[:200]
        if (
            (email and identity.owner_email != email)
            or (label and identity.label != label)
            or (owner and identity.owner_user_id != owner)
        ):
            identity.owner_email = email or identity.owner_email
            identity.label = label or identity.label
            identity.owner_user_id = owner or identity.owner_user_id
            changed.append(identity)
    if changed:
        Identity.objects.bulk_update(changed, ["owner_email", "label", "owner_user_id"], batch_size=CHUNK)


def _people_read(ids: dict[IdentityKey, int]) -> dict[IdentityKey, ResolvedIdentity]:
    """Each key's identity with the person it counts for now, once every link is made."""
    person_of: dict[int, int | None] = {}
    pks = list(ids.values())
    for start in range(0, len(pks), CHUNK):
        person_of.update(Identity.objects.filter(pk__in=pks[start : start + CHUNK]).values_list("pk", "person_id"))
    return {key: ResolvedIdentity(pk, person_of[pk]) for key, pk in ids.items()}


def identities_get_or_create(
    keys: Iterable[IdentityKey],
    *,
    emails: dict[IdentityKey, str] | None = None,
    labels: dict[IdentityKey, str] | None = None,
    owners: dict[IdentityKey, str] | None = None,
) -> dict[IdentityKey, Identity]:
    """One Identity per key (bulk), the missing ones created with what the file says of them; nothing linked.
    A pipelined import calls it for the keys of its hours as they come, then identities_resolve for all."""
    emails = emails or {}
    labels = labels or {}
    owners = owners or {}
    wanted = set(keys)
    found = identities_fetch(wanted)
    missing = [
        Identity(
            provider=p,
            kind=k,
            value=v,
            owner_email=emails.get((p, k, v), "").lower(),
            label=labels.get((p, k, v), "")[:200],
            owner_user_id=owners.get((p, k, v), "")[:200],
        )
        for (p, k, v) in wanted - found.keys()
    ]
    if missing:
        Identity.objects.bulk_create(missing, ignore_conflicts=True, batch_size=CHUNK)
        found.update(identities_fetch({(i.provider, i.kind, i.value) for i in missing}))
    return found


def identities_fetch(keys: set[IdentityKey]) -> dict[IdentityKey, Identity]:
    """The stored identities of the keys, read by (provider, kind) and a list of values, in the unique index's
    order. With a condition ORed over 500 keys a query, the 85,000 identities of a large org's export took 36 s to
    resolve; so, 6–10 s (docs/PERFORMANCE.md)."""
    values: dict[tuple[str, str], list[str]] = {}
    for provider, kind, value in sorted(keys):
        values.setdefault((provider, kind), []).append(value)
    result: dict[IdentityKey, Identity] = {}
    for (provider, kind), of_kind in values.items():
        for start in range(0, len(of_kind), CHUNK):
            for identity in Identity.objects.filter(
                provider=provider, kind=kind, value__in=of_kind[start : start + CHUNK]
            ):
                result[(identity.provider, identity.kind, identity.value)] = identity
    return result


def identity_email(identity: Identity) -> str:
    if identity.kind == "email":
        return identity.value.strip().lower()
    return identity.owner_email.strip().lower()


def identities_autolink(identities: Iterable[Identity]) -> int:
    """Assign unassigned identities whose email (the value, or the owner email from a directory file)
    matches a Person, case-insensitively. Returns how many were linked."""
    by_email: dict[str, list[Identity]] = {}
    for identity in identities:
        if identity.person_id is None and identity_email(identity):
            by_email.setdefault(identity_email(identity), []).append(identity)
    if not by_email:
        return 0
    people = {}
    emails = list(by_email)
    for start in range(0, len(emails), CHUNK):
        for person in Person.objects.annotate(email_ci=Lower("email")).filter(
            email_ci__in=emails[start : start + CHUNK]
        ):
            people[person.email.lower()] = person
    linked = []
    for email, group in by_email.items():
        if email in people:
            for identity in group:
                identity.person = people[email]
                linked.append(identity)
    Identity.objects.bulk_update(linked, ["person"], batch_size=CHUNK)
    standings_mark_identities(identity.pk for identity in linked)
    identities_link_owned_by([i for i in linked if i.kind == IdentityKind.USER_ID])
    return len(linked)


def identities_autolink_for_people(people: Iterable[Person]) -> int:
    """After people are created or renamed: link their unassigned identities by email."""
    emails = [p.email.lower() for p in people]
    # Emails in exports may be mixed-case; owner emails are stored lower-cased.
    candidates = Identity.objects.annotate(value_ci=Lower("value")).filter(
        Q(kind="email", value_ci__in=emails) | Q(owner_email__in=emails), person__isnull=True
    )
    return identities_autolink(list(candidates.distinct()))


def identity_assign(*, identity: Identity, person: Person | None) -> Identity:
    """Assign (or unassign) an identity; all its past usage follows, since usage links to the identity, and
    so do the unassigned keys, workspaces and projects a user id owns."""
    identity.person = person
    identity.save(update_fields=["person"])
    standings_mark_identities([identity.pk])
    if person is not None and identity.kind == IdentityKind.USER_ID:
        identities_link_owned_by([identity])
    return identity


def identities_follow_owners(identities: Iterable[Identity]) -> int:
    """Unassigned identities whose owner's user id is stored take that user's person (and, while the person is
    not known yet, its email, so creating the person later links both). Returns how many were linked."""
    owned = [i for i in identities if i.owner_user_id and i.person_id is None]
    if not owned:
        return 0
    owners: dict[tuple[str, str], Identity] = {}
    for provider in {i.provider for i in owned}:
        values = sorted({i.owner_user_id for i in owned if i.provider == provider})
        for start in range(0, len(values), CHUNK):
            for user in Identity.objects.filter(
                provider=provider, kind=IdentityKind.USER_ID, value__in=values[start : start + CHUNK]
            ):
                owners[(provider, user.value)] = user
    linked, emailed = [], []
    for identity in owned:
        owner = owners.get((identity.provider, identity.owner_user_id))
        if owner is None:
            continue
        if owner.person_id is not None and owner.attribution == IdentityAttribution.PERSONAL:
            identity.person_id = owner.person_id
            linked.append(identity)
        elif owner.owner_email and not identity.owner_email:
            identity.owner_email = owner.owner_email
            emailed.append(identity)
    Identity.objects.bulk_update(linked, ["person"], batch_size=CHUNK)
    Identity.objects.bulk_update(emailed, ["owner_email"], batch_size=CHUNK)
    standings_mark_identities(identity.pk for identity in linked)
    return len(linked)


def identities_link_owned_by(users: Iterable[Identity]) -> int:
    """User ids that were linked (or learned their email): the unassigned identities they own follow them."""
    values: dict[str, set[str]] = {}
    for user in users:
        if user.kind == IdentityKind.USER_ID and (user.person_id or user.owner_email):
            values.setdefault(user.provider, set()).add(user.value)
    linked = 0
    for provider, owner_ids in values.items():
        ordered = sorted(owner_ids)
        for start in range(0, len(ordered), CHUNK):
            owned = Identity.objects.filter(
                provider=provider, owner_user_id__in=ordered[start : start + CHUNK], person__isnull=True
            )
            linked += identities_follow_owners(list(owned))
    return linked


# --- Shared and service identities, and assignments that need confirmation --------------------------------

# Pinning an identity holding more than this share of the window's tokens on one person asks for confirmation:
# a CI or team key assigned by mistake would crown someone. The window is the last CONFIRM_DAYS days.
CONFIRM_SHARE = Decimal("0.01")
CONFIRM_DAYS = 30


class AttributionRefused(Exception):
    """An attribution that cannot be stored (a shared identity without a team); the message says why."""


@dataclass
class IdentityShare:
    tokens: int
    window_tokens: int
    first_day: date
    last_day: date

    @property
    def share(self) -> Decimal:
        return Decimal(self.tokens) / Decimal(self.window_tokens) if self.window_tokens else Decimal(0)

    @property
    def needs_confirmation(self) -> bool:
        return self.share > CONFIRM_SHARE

    def describe(self, identity: Identity) -> str:
        return (
            f"{identity} holds {self.tokens:,} of the {self.window_tokens:,} tokens of the last {CONFIRM_DAYS} days "
            f"({self.first_day} to {self.last_day}): {self.share:.1%}, more than {CONFIRM_SHARE:.0%}"
        )


def identity_share(identity: Identity, *, today: date | None = None) -> IdentityShare:
    """The identity's tokens in the last CONFIRM_DAYS days, against everyone's (assigned or not, from the
    rollups), for the confirmation rule."""
    last = today or org_today()
    first = last - timedelta(days=CONFIRM_DAYS - 1)
    tokens = (
        identity.usage_records.filter(day__range=(first, last))
        .exclude(usage_kind=COST_REPORT_KIND)
        .aggregate(tokens=Coalesce(Sum("total_tokens"), 0))["tokens"]
    )
    everyone = DailyRollup.objects.filter(day__range=(first, last)).aggregate(tokens=Coalesce(Sum("total_tokens"), 0))[
        "tokens"
    ]
    return IdentityShare(int(tokens), max(int(everyone), int(tokens)), first, last)


def identity_assignment_question(identity: Identity, person: Person | None) -> str:
    """Why assigning the identity to the person needs a confirmation, or "" when it does not: only pinning a
    large identity's usage on a person (not unassigning, not a person it already counts for) asks."""
    if person is None or (identity.person_id == person.pk and identity.attribution == IdentityAttribution.PERSONAL):
        return ""
    share = identity_share(identity)
    if not share.needs_confirmation:
        return ""
    return (
        f"{share.describe(identity)}. Assigning it to {person.display_name} ranks all of it as theirs; if it is a "
        "team's or a CI/batch key, mark it shared or service instead, or confirm."
    )


def identity_attribute(*, identity: Identity, attribution: str, team: Team | None = None) -> Identity:
    """Mark an identity personal (its person's usage), shared (its team's totals, no person's) or service (CI,
    batch: no one's ranking, listed for admins). Its usage moves at the next refresh; no record changes."""
    if attribution not in IdentityAttribution.values:
        raise AttributionRefused(
            f"unknown attribution {attribution!r} (one of: {', '.join(IdentityAttribution.values)})"
        )
    if attribution == IdentityAttribution.SHARED and team is None:
        raise AttributionRefused(f"{identity}: a shared identity counts for a team; choose the team")
    identity.attribution = attribution
    identity.shared_team = team if attribution == IdentityAttribution.SHARED else None
    identity.save(update_fields=["attribution", "shared_team"])
    standings_mark_identities([identity.pk])
    return identity
