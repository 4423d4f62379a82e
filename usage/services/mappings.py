"""Saved column mappings for generic CSVs: read a sample's headers, guess the mapping, save it."""

from __future__ import annotations

import csv
import io
import re

from django.db import transaction

from usage.models import ColumnMapping, ImportBatch
from usage.parsers.base import ParseError
from usage.parsers.generic_csv import COLUMN_FIELDS, IDENTITY_KINDS, PROVIDERS
from usage.parsers.payload import detect_encoding

REQUIRED_FIELDS = ("day", "identity")
MEASURE_FIELDS = ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens", "requests", "cost_usd")
# Words that suggest a column for a field; the first header containing one of them (normalized) wins.
GUESSES = {
    "day": ("date", "day", "timestamp", "time"),
    "identity": ("email", "user", "owner", "login", "apikey", "key"),
    "model": ("model",),
    "account": ("account", "project", "workspace", "org"),
    "input_tokens": ("inputtokens", "prompttokens", "input"),
    "cache_write_tokens": ("cachewrite", "cachecreation"),
    "cache_read_tokens": ("cacheread", "cached"),
    "output_tokens": ("outputtokens", "completiontokens", "output"),
    "requests": ("requests", "calls"),
    "cost_usd": ("cost", "spend", "amount", "usd"),
}
MAX_NAME = ImportBatch._meta.get_field("requested_format").max_length - len("generic_csv:")


class MappingError(ValueError):
    pass


def sample_headers(data: bytes, file_name: str) -> list[str]:
    """The header row of a sample CSV (first bytes are enough), decoded like an import would be."""
    head = data[: 256 * 1024]
    try:
        text = head.decode(detect_encoding(head), errors="ignore")
    except ParseError as error:
        raise MappingError(f"{file_name}: {error.reason}") from None
    first_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    headers = [h.strip() for h in next(csv.reader(io.StringIO(first_line)), [])]
    headers = [h for h in headers if h]
    if len(headers) < 2:
        raise MappingError(f"{file_name}: line 1: expected a header row with at least two columns")
    if len(set(headers)) != len(headers):
        raise MappingError(f"{file_name}: line 1: duplicate column names")
    return headers


def _normalized(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def mapping_guess(headers: list[str]) -> dict[str, str]:
    """A first guess of {field: header}; each header is used once, more specific fields first."""
    guess: dict[str, str] = {}
    used: set[str] = set()
    order = ("cache_write_tokens", "cache_read_tokens", "input_tokens", "output_tokens", *COLUMN_FIELDS)
    for field in dict.fromkeys(order):
        for word in GUESSES[field]:
            match = next((h for h in headers if h not in used and word in _normalized(h)), None)
            if match:
                guess[field] = match
                used.add(match)
                break
    return guess


@transaction.atomic
def column_mapping_save(
    *, name: str, columns: dict[str, str], headers: list[str], identity_kind: str, provider: str, currency: str
) -> ColumnMapping:
    """Validate and save (create or replace) a mapping; raises MappingError saying what to fix."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not re.fullmatch(r"[\w.-]+", name):
        raise MappingError(f"name: use 1–{MAX_NAME} letters, digits, '.', '-' or '_'")
    columns = {field: column for field, column in columns.items() if column}
    unknown = [c for c in columns.values() if c not in headers]
    if unknown:
        raise MappingError(f"columns not in the sample: {', '.join(unknown)}")
    missing = [f for f in REQUIRED_FIELDS if f not in columns]
    if missing:
        raise MappingError(f"choose a column for: {', '.join(missing)}")
    if not any(f in columns for f in MEASURE_FIELDS):
        raise MappingError("choose at least one column with tokens, requests or cost")
    if identity_kind not in IDENTITY_KINDS:
        raise MappingError(f"identity kind must be one of {', '.join(sorted(IDENTITY_KINDS))}")
    if provider not in PROVIDERS:
        raise MappingError(f"provider must be one of {', '.join(sorted(PROVIDERS))}")
    currency = (currency or "USD").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise MappingError("currency must be a three-letter code such as USD")
    stored = {**columns, "identity_kind": identity_kind, "provider": provider, "currency": currency}
    mapping, _ = ColumnMapping.objects.update_or_create(name=name, defaults={"columns": stored, "provider": provider})
    return mapping
