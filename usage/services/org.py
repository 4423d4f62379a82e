"""Importing the org chart from a CSV: people, the team tree, managers, memberships and identities.

Columns: email, name, team (a path such as Engineering/Platform/Infra); optional manager (yes/no),
effective (YYYY-MM-DD, default today: when a team change takes effect), identities ("provider:kind:value;…")
and shorthand identity columns such as openai_user_id or anthropic_api_key_id. The whole file is validated
first and applied in one transaction: a bad row rejects the file and changes nothing.
"""

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.text import slugify

from usage.models import Identity, IdentityKind, Membership, Person, Provider, Team
from usage.services.audit import audit_record
from usage.services.identities import identities_autolink_for_people
from usage.services.standings import standings_mark_people

REQUIRED_COLUMNS = ("email", "name", "team")
PROVIDERS = {p.value for p in Provider}
KINDS = {k.value for k in IdentityKind}
# Shorthand columns: "<provider>_<kind>", e.g. openai_user_id, anthropic_api_key_id, cursor_email.
SHORTHAND_COLUMNS = {f"{p}_{k}": (p, k) for p in PROVIDERS for k in KINDS} | {
    f"{p}_{k}_id": (p, k) for p in PROVIDERS for k in ("api_key", "project", "workspace")
}
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0", ""}


class OrgImportError(Exception):
    def __init__(self, file_name: str, line: int | None, reason: str):
        where = f"line {line}: " if line else ""
        super().__init__(f"{file_name}: {where}{reason}")


@dataclass
class OrgRow:
    line: int
    email: str
    name: str
    team_path: tuple[str, ...]
    manager: bool
    effective: date
    identities: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class OrgImportResult:
    people_created: int = 0
    people_updated: int = 0
    teams_created: int = 0
    team_moves: int = 0
    identities_linked: int = 0


def org_rows_read(text: str, file_name: str, today: date) -> list[OrgRow]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    headers = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    if missing:
        raise OrgImportError(
            file_name, 1, f"missing required column(s): {', '.join(missing)} (found: {', '.join(headers) or 'none'})"
        )
    reader.fieldnames = headers
    rows: list[OrgRow] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in record.items() if k}
        email = values["email"].lower()
        try:
            validate_email(email)
        except ValidationError:
            raise OrgImportError(file_name, line, f"invalid email {values['email']!r}") from None
        if email in seen:
            raise OrgImportError(file_name, line, f"duplicate email {email} (first on line {seen[email]})")
        seen[email] = line
        if not values["name"]:
            raise OrgImportError(file_name, line, "name is empty")
        path = tuple(part.strip() for part in values["team"].split("/") if part.strip())
        if not path:
            raise OrgImportError(file_name, line, "team is empty (expected a path such as Engineering/Platform)")
        manager_text = values.get("manager", "").lower()
        if manager_text not in YES | NO:
            raise OrgImportError(file_name, line, f"manager must be yes or no, not {values.get('manager')!r}")
        effective = today
        if values.get("effective"):
            try:
                effective = date.fromisoformat(values["effective"])
            except ValueError:
                raise OrgImportError(
                    file_name, line, f"effective is not a YYYY-MM-DD date: {values['effective']!r}"
                ) from None
        identities = []
        for column, (provider, kind) in SHORTHAND_COLUMNS.items():
            if values.get(column):
                identities.append((provider, kind, values[column]))
        for spec in filter(None, (s.strip() for s in values.get("identities", "").split(";"))):
            parts = spec.split(":", 2)
            if len(parts) != 3 or parts[0] not in PROVIDERS or parts[1] not in KINDS or not parts[2]:
                raise OrgImportError(
                    file_name,
                    line,
                    f"bad identity {spec!r}: expected provider:kind:value with provider in {sorted(PROVIDERS)} and kind in {sorted(KINDS)}",
                )
            identities.append((parts[0], parts[1], parts[2]))
        rows.append(OrgRow(line, email, values["name"], path, manager_text in YES, effective, identities))
    if not rows:
        raise OrgImportError(file_name, None, "no people in the file")
    return rows


def _team_for_path(path: tuple[str, ...], cache: dict, result: OrgImportResult) -> Team:
    parent = None
    for depth in range(1, len(path) + 1):
        key = path[:depth]
        if key not in cache:
            team = Team.objects.filter(parent=parent, name=key[-1]).first()
            if team is None:
                base = slugify("-".join(key))[:190] or "team"
                slug, n = base, 2
                while Team.objects.filter(slug=slug).exists():
                    slug, n = f"{base}-{n}", n + 1
                team = Team.objects.create(name=key[-1], slug=slug, parent=parent)
                result.teams_created += 1
            cache[key] = team
        parent = cache[key]
    return parent


def org_import(*, text: str, file_name: str, today: date | None = None) -> OrgImportResult:
    today = today or date.today()
    rows = org_rows_read(text, file_name, today)
    result = OrgImportResult()
    teams: dict[tuple[str, ...], Team] = {}
    with transaction.atomic():
        touched = []
        changed = []  # whose name, team or identities this file changes: their standings are refreshed
        for row in rows:
            team = _team_for_path(row.team_path, teams, result)
            person = Person.objects.filter(email__iexact=row.email).first()
            if person is None:
                person = Person.objects.create(email=row.email, display_name=row.name)
                result.people_created += 1
                changed.append(person)
            elif person.display_name != row.name:
                person.display_name = row.name
                person.save(update_fields=["display_name"])
                result.people_updated += 1
                changed.append(person)
            current = person.memberships.filter(end__isnull=True).first()
            if current is None:
                Membership.objects.create(person=person, team=team, start=row.effective)
                changed.append(person)
            elif current.team_id != team.pk:
                if row.effective <= current.start:
                    raise OrgImportError(
                        file_name,
                        row.line,
                        f"team change for {row.email} effective {row.effective} is not after their current membership start {current.start}",
                    )
                current.end = row.effective - timedelta(days=1)
                current.save(update_fields=["end"])
                Membership.objects.create(person=person, team=team, start=row.effective)
                result.team_moves += 1
                changed.append(person)
            if row.manager:
                team.managers.add(person)
            for provider, kind, value in row.identities:
                identity, _ = Identity.objects.get_or_create(provider=provider, kind=kind, value=value)
                if identity.person_id != person.pk:
                    identity.person = person
                    identity.save(update_fields=["person"])
                    result.identities_linked += 1
                    changed.append(person)
            touched.append(person)
        result.identities_linked += identities_autolink_for_people(touched)  # marks what it links
        # Names order ties on the boards, memberships decide team figures, identities whose usage it is. A
        # directory sent again unchanged marks nothing: at 85,000 people it would recompute every window.
        standings_mark_people({person.pk for person in changed})
        audit_record("org.import", summary=file_name, data=asdict(result))
    return result
