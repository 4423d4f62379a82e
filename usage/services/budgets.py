"""Allowances and team budgets (issue 13): saving them effective-dated, the CSV bulk import, and which allowance
applies to whom on a day.

An allowance belongs to a person (an override) or to a team (the default for everyone in its subtree without a
nearer one). Like memberships, a new allowance from a date ends the open one the day before, and one set before
a later one runs until it starts; a range that overlaps any other of the same owner is refused. Every write validates first and saves in one transaction, so
bad input changes nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Q

from usage.crypto import api_key_decrypt, api_key_encrypt
from usage.models import Allowance, BudgetPeriod, Membership, Person, Team, TeamBudget

CSV_COLUMNS = ("email", "period", "tokens", "usd", "effective")
CSV_MAX_BYTES = 5 * 1024 * 1024  # an allowance file, page or API
DEFAULT_THRESHOLDS = (50, 80, 100)
PERIODS = tuple(p.value for p in BudgetPeriod)
MAX_TOKENS = 10**15  # far above any real allowance; keeps the figure inside a 64-bit column
MAX_USD = Decimal("999999999999.99")


class BudgetError(ValueError):
    """Bad allowance or budget input: names the field (and the CSV line) and the reason."""

    def __init__(self, field: str, message: str, line: int | None = None):
        where = f"line {line}, " if line else ""
        super().__init__(f"{where}{field}: {message}")
        self.field, self.message, self.line = field, message, line


# --- Parsing the figures -----------------------------------------------------------------------------------


def tokens_parse(raw, field: str = "tokens") -> int | None:
    if raw is None or str(raw).strip() == "":
        return None
    text = str(raw).strip().replace("_", "")
    if not text.lstrip("-").isdigit():
        raise BudgetError(field, f"{raw!r} is not a whole number of tokens")
    value = int(text)
    if value < 0:
        raise BudgetError(field, f"{value} is negative; an allowance is 0 or more")
    if value > MAX_TOKENS:
        raise BudgetError(field, f"{value} is larger than {MAX_TOKENS}")
    return value


def usd_parse(raw, field: str = "usd") -> Decimal | None:
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise BudgetError(field, f"{raw!r} is not an amount in USD") from None
    if not value.is_finite():
        raise BudgetError(field, f"{raw!r} is not an amount in USD")
    if value < 0:
        raise BudgetError(field, f"{value} is negative; an allowance is 0 or more")
    if value > MAX_USD or value != value.quantize(Decimal("0.01")):
        raise BudgetError(field, f"{value} must be at most {MAX_USD} with at most 2 decimals")
    return value


def period_parse(raw, field: str = "period") -> str:
    value = (str(raw or "").strip().lower()) or BudgetPeriod.MONTH
    if value not in PERIODS:
        raise BudgetError(field, f"{raw!r} is not a period; use {' or '.join(PERIODS)}")
    return value


def date_parse(raw, field: str, default: date | None = None) -> date | None:
    if raw is None or str(raw).strip() == "":
        return default
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise BudgetError(field, f"{raw!r} is not a date; use YYYY-MM-DD") from None


def thresholds_parse(raw) -> list[int]:
    """Percentages from a list or "50, 80, 100"; empty means the defaults."""
    if raw is None or raw == "" or raw == []:
        return list(DEFAULT_THRESHOLDS)
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    values = []
    for item in items:
        text = str(item).strip()
        if not text.isdigit() or not 1 <= int(text) <= 1000:
            raise BudgetError("thresholds", f"{item!r} is not a percentage from 1 to 1000")
        values.append(int(text))
    return sorted(set(values))


def webhook_check(url: str) -> str:
    """A Slack incoming webhook must be https (it carries a secret in its path)."""
    url = (url or "").strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise BudgetError("slack_webhook_url", "must be an https:// URL (a Slack incoming webhook)")
    return url


# --- Effective dating ------------------------------------------------------------------------------------


def _placed(rows, start: date, end: date | None, label: str) -> tuple[list, date | None]:
    """Where a new range goes among one owner's rows: (rows to end the day before `start` — the open one that
    began earlier —, the new range's end). Without an end it runs until the next one starts. A range that
    overlaps any other is refused; a row that starts the same day is replaced (a re-imported file changes
    nothing)."""
    later = [row.start for row in rows if row.start > start]
    if end is None and later:
        end = min(later) - timedelta(days=1)
    to_close = []
    for row in rows:
        if row.start == start:
            continue
        if row.end is None and row.start < start:
            to_close.append(row)
        elif row.start <= (end or date.max) and (row.end is None or row.end >= start):
            until = f"to {row.end}" if row.end else "with no end"
            field = "end" if row.start > start else "effective"
            raise BudgetError(field, f"overlaps the {label} effective from {row.start} {until}")
    return to_close, end


def _save_dated(model, owner: dict, values: dict, start: date, end: date | None, label: str):
    if end is not None and end < start:
        raise BudgetError("end", f"{end} is before the start {start}")
    rows = list(model.objects.select_for_update().filter(**owner))
    to_close, end = _placed(rows, start, end, label)
    for row in to_close:
        row.end = start - timedelta(days=1)
        row.save(update_fields=["end"])
    record = next((r for r in rows if r.start == start), None) or model(**owner, start=start)
    for name, value in values.items():
        setattr(record, name, value)
    record.end = end
    record.save()
    return record


def allowance_save(
    *,
    person: Person | None = None,
    team: Team | None = None,
    period: str = BudgetPeriod.MONTH,
    tokens=None,
    usd=None,
    start: date,
    end: date | None = None,
) -> Allowance:
    """Set a person's or team's allowance from `start`; the open one before it ends the day before."""
    if (person is None) == (team is None):
        raise BudgetError("person", "an allowance is for one person or one team")
    values = {"period": period_parse(period), "tokens": tokens_parse(tokens), "usd": usd_parse(usd)}
    if values["tokens"] is None and values["usd"] is None:
        raise BudgetError("tokens", "give tokens, usd or both")
    owner = {"person": person} if person is not None else {"team": team}
    with transaction.atomic():
        return _save_dated(Allowance, owner, values, start, end, "allowance")


def budget_save(
    *,
    team: Team,
    period: str = BudgetPeriod.MONTH,
    tokens=None,
    usd=None,
    thresholds=None,
    slack_webhook_url: str | None = None,
    start: date,
    end: date | None = None,
) -> TeamBudget:
    """Set a team's budget from `start`. `slack_webhook_url` None keeps the stored webhook, "" removes it."""
    values = {
        "period": period_parse(period),
        "tokens": tokens_parse(tokens),
        "usd": usd_parse(usd),
        "thresholds": thresholds_parse(thresholds),
    }
    if values["tokens"] is None and values["usd"] is None:
        raise BudgetError("tokens", "give tokens, usd or both")
    if slack_webhook_url is not None:
        url = webhook_check(slack_webhook_url)
        values["encrypted_slack_webhook"] = api_key_encrypt(url) if url else b""
    with transaction.atomic():
        return _save_dated(TeamBudget, {"team": team}, values, start, end, "budget")


def budget_webhook(budget: TeamBudget) -> str:
    return api_key_decrypt(budget.encrypted_slack_webhook) if budget.encrypted_slack_webhook else ""


# --- The CSV bulk import -----------------------------------------------------------------------------------


@dataclass
class AllowanceRow:
    line: int
    person: Person
    period: str
    tokens: int | None
    usd: Decimal | None
    effective: date


class AllowanceImportError(Exception):
    """Every bad row of a file, each naming its line and field; nothing was saved."""

    def __init__(self, file_name: str, errors: list[BudgetError]):
        self.errors = errors
        super().__init__(f"{file_name}: " + "; ".join(str(e) for e in errors))


def allowances_csv_import(text: str, file_name: str, today: date) -> int:
    """Set people's allowances from `email,period,tokens,usd,effective` (effective: default today). The whole
    file is checked first and saved in one transaction: a bad row rejects the file. Returns rows saved."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    missing = [c for c in ("email", "tokens", "usd") if c not in header]
    if missing:
        raise AllowanceImportError(
            file_name,
            [BudgetError("header", f"missing column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}", 1)],
        )
    reader.fieldnames = header
    raw_rows = list(reader)
    emails = {(r.get("email") or "").strip().lower() for r in raw_rows}
    people = {p.email: p for p in Person.objects.filter(email__in=emails)}
    rows, errors, seen = [], [], {}
    for line, raw in enumerate(raw_rows, start=2):
        try:
            email = (raw.get("email") or "").strip().lower()
            if not email:
                raise BudgetError("email", "is empty")
            if email not in people:
                raise BudgetError("email", f"no person with email {email!r}")
            row = AllowanceRow(
                line,
                people[email],
                period_parse(raw.get("period")),
                tokens_parse(raw.get("tokens")),
                usd_parse(raw.get("usd")),
                date_parse(raw.get("effective"), "effective", today),
            )
            if row.tokens is None and row.usd is None:
                raise BudgetError("tokens", "give tokens, usd or both")
            if (email, row.effective) in seen:
                raise BudgetError("effective", f"overlaps line {seen[email, row.effective]} (same person and date)")
            seen[email, row.effective] = line
            rows.append(row)
        except BudgetError as error:
            errors.append(BudgetError(error.field, error.message, line))
    if errors:
        raise AllowanceImportError(file_name, errors)
    with transaction.atomic():
        for row in sorted(rows, key=lambda r: r.effective):
            try:
                allowance_save(
                    person=row.person, period=row.period, tokens=row.tokens, usd=row.usd, start=row.effective
                )
            except BudgetError as error:
                raise AllowanceImportError(file_name, [BudgetError(error.field, error.message, row.line)]) from None
    return len(rows)


# --- What applies on a day -----------------------------------------------------------------------------------


def _effective_on(day: date) -> Q:
    return Q(start__lte=day) & (Q(end__isnull=True) | Q(end__gte=day))


def allowances_on(day: date, person_ids=None) -> dict[int, Allowance]:
    """Each person's allowance on the day: their own, else the nearest team default up their team's tree."""
    from usage.services.standings import team_ancestors

    rows = Allowance.objects.filter(_effective_on(day))
    own = {a.person_id: a for a in rows if a.person_id is not None}
    by_team = {a.team_id: a for a in rows if a.team_id is not None}
    memberships = Membership.objects.filter(_effective_on(day))
    if person_ids is not None:
        memberships = memberships.filter(person_id__in=person_ids)
    result = {}
    if by_team:
        ancestors = team_ancestors()
        for person_id, team_id in memberships.values_list("person_id", "team_id"):
            nearest = next((by_team[t] for t in ancestors.get(team_id, []) if t in by_team), None)
            if nearest is not None:
                result[person_id] = nearest
    result.update(own)
    if person_ids is not None:
        wanted = set(person_ids)
        result = {pid: a for pid, a in result.items() if pid in wanted}
    return result


def budgets_on(day: date) -> list[TeamBudget]:
    return list(TeamBudget.objects.filter(_effective_on(day)).select_related("team"))


def team_budget_on(team_id: int, day: date) -> TeamBudget | None:
    return TeamBudget.objects.filter(_effective_on(day), team_id=team_id).first()
