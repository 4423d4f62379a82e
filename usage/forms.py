"""Forms of the admin pages (uploads, identity mapping). They validate input and resolve it to objects;
the work itself is done by usage.services."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.db.models import Q
from django.template.defaultfilters import filesizeformat

from usage.models import (
    CatalogModel,
    ColumnMapping,
    Identity,
    IdentityAttribution,
    IdentityKind,
    ImportBatch,
    ImportStatus,
    Person,
    Provider,
    Team,
)
from usage.parsers.registry import FORMATS

# --- upload ---------------------------------------------------------------------------------------------


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one <input type=file multiple> (Django's documented recipe)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    default_error_messages = {"empty": "the file is empty"}

    def clean(self, data, initial=None):
        items = data if isinstance(data, (list, tuple)) else [data]
        cleaned, errors = [], []
        for item in items:
            try:
                cleaned.append(super().clean(item, initial))
            except forms.ValidationError as error:
                name = getattr(item, "name", "")
                errors += [f"{name}: {message}" if name else message for message in error.messages]
        if errors:
            raise forms.ValidationError(errors)
        return cleaned


def format_choices() -> list[tuple[str, str]]:
    """Every registered format; the generic CSV once per saved column mapping ("generic_csv:<name>"),
    since it cannot be read without one. Built per form, so new mappings show up at once."""
    choices = [(name, f"{fmt.label} ({name})") for name, fmt in FORMATS.items() if name != "generic_csv"]
    if "generic_csv" in FORMATS:
        choices += [
            (f"generic_csv:{name}", f"Generic CSV with the column mapping “{name}”")
            for name in ColumnMapping.objects.order_by("name").values_list("name", flat=True)
        ]
    return [("", "Detect automatically")] + sorted(choices, key=lambda c: c[1].lower())


def person_lookup(text: str) -> tuple[Person | None, str]:
    """The one person `text` names (an email, or part of a name or email), or None and why not."""
    text = text.strip()
    if not text:
        return None, "Type a person's name or email."
    exact = Person.objects.filter(email__iexact=text).first()
    if exact is not None:
        return exact, ""
    matches = list(Person.objects.filter(Q(display_name__icontains=text) | Q(email__icontains=text))[:6])
    if len(matches) == 1:
        return matches[0], ""
    if not matches:
        return None, f"No person matches {text!r}."
    shown = ", ".join(f"{p.display_name} <{p.email}>" for p in matches[:5])
    more = " and more" if len(matches) > 5 else ""
    return None, f"{text!r} matches several people ({shown}{more}); type the email."


class UploadForm(forms.Form):
    files = MultipleFileField(label="Export files", help_text="Any supported format; gzip or zip accepted.")
    format = forms.ChoiceField(label="Format", required=False, help_text="Leave on automatic unless detection fails.")
    import_good_rows = forms.BooleanField(
        label="Import the good rows",
        required=False,
        help_text="By default a file with a bad row is rejected whole; tick to import the rest and list the bad rows.",
    )
    attribute_to = forms.CharField(
        label="Attribute to person",
        required=False,
        help_text="For files with no identity in them (ccusage): the person's email. Empty = you.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["format"].choices = format_choices()

    def clean_format(self) -> str:
        value = self.cleaned_data["format"]
        limit = ImportBatch._meta.get_field("requested_format").max_length
        if len(value) > limit:
            raise forms.ValidationError(
                f"the column mapping name is too long to record on an import; rename it to at most "
                f"{limit - len('generic_csv:')} characters"
            )
        return value

    def clean_files(self) -> list:
        files = self.cleaned_data["files"]
        limit = settings.TOKENBOARD_UPLOAD_MAX_BYTES
        errors = []
        for upload in files:
            if upload.size > limit:
                errors.append(
                    f"{upload.name}: the file is larger than the upload limit of {limit:,} bytes "
                    f"({filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}): export a shorter "
                    "date range or compress it (gzip/zip)"
                )
            elif upload.size == 0:
                errors.append(f"{upload.name}: the file is empty")
        if errors:
            raise forms.ValidationError(errors)
        return files

    def clean_attribute_to(self) -> Person | None:
        text = self.cleaned_data["attribute_to"].strip()
        if not text:
            return None
        person, problem = person_lookup(text)
        if person is None:
            raise forms.ValidationError(problem)
        return person


# --- imports history -----------------------------------------------------------------------------------


class ImportFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *ImportStatus.choices])


# --- identities ----------------------------------------------------------------------------------------


class IdentityFilterForm(forms.Form):
    STATES = [("", "All (unassigned first)"), ("unassigned", "Unassigned"), ("assigned", "Assigned")]

    state = forms.ChoiceField(required=False, choices=STATES, label="Show")
    provider = forms.ChoiceField(required=False, choices=[("", "Any provider"), *Provider.choices])
    attribution = forms.ChoiceField(
        required=False, choices=[("", "Personal, shared or service"), *IdentityAttribution.choices], label="Counts for"
    )
    q = forms.CharField(required=False, label="Search", max_length=200)


class IdentityAssignForm(forms.Form):
    """`person_id` comes from a search result button (htmx); `person` is the typed name or email, which is
    what a browser without JS submits. `unassign` detaches the identity."""

    person_id = forms.IntegerField(required=False)
    person = forms.CharField(required=False, max_length=254)
    unassign = forms.BooleanField(required=False)
    # Set by the confirmation page: the admin saw the identity's share of the tokens and assigns it anyway.
    confirm = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("unassign"):
            data["target"] = None
            return data
        if data.get("person_id"):
            person = Person.objects.filter(pk=data["person_id"]).first()
            if person is None:
                raise forms.ValidationError("That person no longer exists.")
        else:
            person, problem = person_lookup(data.get("person") or "")
            if person is None:
                raise forms.ValidationError(problem)
        data["target"] = person
        return data


class IdentityAttributionForm(forms.Form):
    """Whom an identity's usage counts for: its person, a team (shared) or no one (service)."""

    attribution = forms.ChoiceField(choices=IdentityAttribution.choices)
    team = forms.ModelChoiceField(queryset=Team.objects.all(), required=False)

    def clean(self):
        data = super().clean()
        if data.get("attribution") == IdentityAttribution.SHARED and not data.get("team"):
            self.add_error("team", "a shared identity counts for a team; choose the team")
        if data.get("attribution") != IdentityAttribution.SHARED:
            data["team"] = None
        return data


@dataclass
class BulkAssignment:
    line: int
    provider: str
    kind: str
    value: str
    person: Person | None
    attribution: str = IdentityAttribution.PERSONAL
    team: Team | None = None


BULK_COLUMNS = ("provider", "kind", "value", "email")
# Optional: attribution (personal, the default; shared, with the team's path, slug or name; service).
BULK_OPTIONAL_COLUMNS = ("attribution", "team")


def team_lookup(text: str) -> Team | None:
    """The team a path ("Engineering/Platform"), slug or unique name names."""
    parts = [part.strip() for part in text.split("/") if part.strip()]
    if len(parts) > 1:
        team = None
        for part in parts:
            team = Team.objects.filter(parent=team, name__iexact=part).first()
            if team is None:
                return None
        return team
    by_slug = Team.objects.filter(slug=text.strip().lower()).first()
    if by_slug is not None:
        return by_slug
    named = list(Team.objects.filter(name__iexact=text.strip())[:2])
    return named[0] if len(named) == 1 else None


BULK_MAX_BYTES = 10 * 1024 * 1024
MAX_LISTED_LINE_ERRORS = 50


class IdentityBulkForm(forms.Form):
    """A CSV with columns provider,kind,value,email. Every line is checked before anything changes: one bad
    line rejects the file, and every bad line is listed with its number."""

    file = forms.FileField(label="CSV file (provider,kind,value,email[,attribution,team])")
    confirm = forms.BooleanField(
        required=False,
        label="Assign identities that hold more than 1% of the last 30 days' tokens to one person anyway",
    )

    def clean_file(self) -> list[BulkAssignment]:
        upload = self.cleaned_data["file"]
        name = upload.name
        if upload.size > BULK_MAX_BYTES:
            raise forms.ValidationError(f"{name}: larger than {filesizeformat(BULK_MAX_BYTES)}")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(f"{name}: not UTF-8 text; save the CSV as UTF-8") from None
        reader = csv.DictReader(io.StringIO(text))
        headers = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in BULK_COLUMNS if c not in headers]
        if missing:
            raise forms.ValidationError(
                f"{name}: line 1: missing column(s) {', '.join(missing)} "
                f"(expected {','.join(BULK_COLUMNS)}; found {','.join(headers) or 'nothing'})"
            )
        reader.fieldnames = headers
        providers, kinds = {p.value for p in Provider}, {k.value for k in IdentityKind}
        rows: list[tuple[int, str, str, str, str, str, Team | None]] = []
        errors: list[str] = []
        seen: dict[tuple[str, str, str], int] = {}
        try:
            for record in reader:
                line = reader.line_num
                values = {
                    k: (v or "").strip() for k, v in record.items() if k in (*BULK_COLUMNS, *BULK_OPTIONAL_COLUMNS)
                }
                if not any(values.values()):
                    continue
                provider, kind, value, email = (values.get(c, "") for c in BULK_COLUMNS)
                provider, kind = provider.lower(), kind.lower()
                attribution = values.get("attribution", "").lower() or IdentityAttribution.PERSONAL
                team_text, team = values.get("team", ""), None
                problem = ""
                if provider not in providers:
                    problem = f"unknown provider {provider!r} (one of: {', '.join(sorted(providers))})"
                elif kind not in kinds:
                    problem = f"unknown kind {kind!r} (one of: {', '.join(sorted(kinds))})"
                elif not value:
                    problem = "value is empty"
                elif len(value) > Identity._meta.get_field("value").max_length:
                    problem = "value is too long"
                elif attribution not in IdentityAttribution.values:
                    problem = f"unknown attribution {attribution!r} (one of: {', '.join(IdentityAttribution.values)})"
                elif attribution == IdentityAttribution.PERSONAL and not email:
                    problem = "email is empty (a personal identity counts for a person)"
                elif attribution == IdentityAttribution.SHARED and not team_text:
                    problem = "team is empty (a shared identity counts for a team)"
                elif attribution == IdentityAttribution.SHARED and (team := team_lookup(team_text)) is None:
                    problem = f"no team {team_text!r} (give its path, e.g. Engineering/Platform, or its slug)"
                elif (provider, kind, value) in seen:
                    problem = f"{provider}:{kind}:{value} is already on line {seen[(provider, kind, value)]}"
                if problem:
                    errors.append(f"{name}: line {line}: {problem}")
                    continue
                seen[(provider, kind, value)] = line
                rows.append((line, provider, kind, value, email.lower(), attribution, team))
        except csv.Error as error:
            errors.append(f"{name}: line {reader.line_num}: unreadable CSV ({error})")
        people = {p.email.lower(): p for p in Person.objects.filter(email__in={r[4] for r in rows})}
        assignments = []
        for line, provider, kind, value, email, attribution, team in rows:
            person = people.get(email)
            if person is None and email:
                errors.append(f"{name}: line {line}: no person with email {email} (import the org CSV first)")
                continue
            assignments.append(BulkAssignment(line, provider, kind, value, person, attribution, team))
        if errors:
            errors.sort(key=_line_of)
            shown = errors[:MAX_LISTED_LINE_ERRORS]
            if len(errors) > len(shown):
                shown.append(f"… and {len(errors) - len(shown)} more bad lines")
            raise forms.ValidationError([f"Nothing was changed. {len(errors)} bad line(s):", *shown])
        if not assignments:
            raise forms.ValidationError(f"{name}: no rows to assign")
        return assignments


def _line_of(message: str) -> int:
    try:
        return int(message.split(": line ", 1)[1].split(":", 1)[0])
    except (IndexError, ValueError):
        return 0


# --- model catalog ---------------------------------------------------------------------------------------


class CatalogModelForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Canonical name, e.g. Claude Sonnet 4.5")
    family = forms.CharField(max_length=100, help_text="e.g. Claude Sonnet")
    vendor = forms.CharField(max_length=100, required=False, help_text="e.g. Anthropic")
    spelling = forms.CharField(
        max_length=200, required=False, help_text="An exported name to map to it at once (optional)."
    )


class ModelAliasForm(forms.Form):
    spelling = forms.CharField(max_length=200, help_text="The name as a source exports it.")
    model = forms.ModelChoiceField(queryset=CatalogModel.objects.order_by("name"))
