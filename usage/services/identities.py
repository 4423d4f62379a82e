"""Identity resolution: (provider, kind, value) → Identity, linked to a Person by email where possible."""

from collections.abc import Iterable

from django.db.models import Q
from django.db.models.functions import Lower

from usage.models import Identity, Person
from usage.services.standings import standings_mark_identities

IdentityKey = tuple[str, str, str]
CHUNK = 500


def identities_resolve(
    keys: Iterable[IdentityKey],
    *,
    emails: dict[IdentityKey, str] | None = None,
    labels: dict[IdentityKey, str] | None = None,
) -> dict[IdentityKey, Identity]:
    """Get or create one Identity per key (bulk), record owner emails and labels learned from the file,
    and link unassigned identities whose email matches a Person. Call inside the import's transaction."""
    emails = emails or {}
    labels = labels or {}
    wanted = set(keys)
    found = identities_fetch(wanted)
    missing = [
        Identity(
            provider=p,
            kind=k,
            value=v,
            owner_email=emails.get((p, k, v), "").lower(),
            label=labels.get((p, k, v), "")[:200],
        )
        for (p, k, v) in wanted - found.keys()
    ]
    if missing:
        Identity.objects.bulk_create(missing, ignore_conflicts=True, batch_size=CHUNK)
        found.update(identities_fetch({(i.provider, i.kind, i.value) for i in missing}))
    changed = []
    for key, identity in found.items():
        email = emails.get(key, "").lower()
        label = labels.get(key, "")[:200]
        if (email and identity.owner_email != email) or (label and identity.label != label):
            identity.owner_email = email or identity.owner_email
            identity.label = label or identity.label
            changed.append(identity)
    if changed:
        Identity.objects.bulk_update(changed, ["owner_email", "label"], batch_size=CHUNK)
    identities_autolink([i for i in found.values() if i.person_id is None])
    return found


def identities_fetch(keys: set[IdentityKey]) -> dict[IdentityKey, Identity]:
    result: dict[IdentityKey, Identity] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), CHUNK):
        condition = Q()
        for provider, kind, value in ordered[start : start + CHUNK]:
            condition |= Q(provider=provider, kind=kind, value=value)
        for identity in Identity.objects.filter(condition):
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
    """Assign (or unassign) an identity; all its past usage follows, since usage links to the identity."""
    identity.person = person
    identity.save(update_fields=["person"])
    standings_mark_identities([identity.pk])
    return identity
