"""Source precedence: where two sources report the same usage, which one counts.

Rules are data (SourcePrecedence) an admin sees and changes on /sources/. They are applied where the daily rollups
are written (usage.services.standings), so a rule change rewrites the rollups of the days it affects and changes
no stored usage record. An import's page reports the usage it shares with other imports (`import_overlaps`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, Sum

from usage.figures import COST_REPORT_KIND
from usage.models import IdentityAttribution, ImportBatch, SourcePrecedence, UsageRecord
from usage.parsers.registry import FORMATS
from usage.services.standings import standings_mark_days


class PrecedenceError(ValueError):
    pass


def source_label(name: str) -> str:
    """A source's name as people read it: the format's label."""
    base = name.split(":", 1)[0]
    return FORMATS[base].label if base in FORMATS else name


def source_choices() -> list[tuple[str, str]]:
    """Formats that carry usage (directories name people, they report none)."""
    return [(name, fmt.label) for name, fmt in FORMATS.items() if not name.endswith("_directory")]


def _check(rule: SourcePrecedence) -> None:
    """Refuse a rule that names an unknown source, ranks a source over itself, or closes a loop (a loop would
    leave every source in it uncounted wherever they overlap)."""
    known = {name for name, _label in source_choices()}
    for field in ("preferred", "over"):
        if getattr(rule, field) not in known:
            raise PrecedenceError(f"{getattr(rule, field)!r} is not a source Tokenboard imports")
    if rule.preferred == rule.over:
        raise PrecedenceError(f"{source_label(rule.over)} cannot take precedence over itself")
    others = SourcePrecedence.objects.filter(provider=rule.provider).exclude(pk=rule.pk)
    beaten_by: dict[str, set[str]] = defaultdict(set)
    for preferred, over in others.values_list("preferred", "over"):
        beaten_by[over].add(preferred)
    # A loop: `preferred` is already (directly or through other rules) beaten by `over`.
    seen, todo = set(), [rule.preferred]
    while todo:
        source = todo.pop()
        if source == rule.over:
            raise PrecedenceError(
                f"{source_label(rule.over)} already takes precedence over {source_label(rule.preferred)} "
                f"for {rule.get_provider_display()}: this rule would make a loop"
            )
        if source not in seen:
            seen.add(source)
            todo.extend(beaten_by[source])


def _mark_days_of(provider: str, sources: set[str]) -> None:
    """The days whose counting a rule on these sources may change."""
    usage = UsageRecord.objects.filter(provider=provider, import_batch__detected_format__in=sources)
    standings_mark_days(usage.values_list("day", flat=True).distinct())


@transaction.atomic
def precedence_save(rule: SourcePrecedence) -> SourcePrecedence:
    """Create or change a rule, after checking it; the days it affects (before and after) are recounted."""
    _check(rule)
    affected = {rule.preferred, rule.over}
    if rule.pk:
        before = SourcePrecedence.objects.get(pk=rule.pk)
        affected |= {before.preferred, before.over}
        if before.provider != rule.provider:
            _mark_days_of(before.provider, affected)
    rule.save()
    _mark_days_of(rule.provider, affected)
    return rule


@transaction.atomic
def precedence_delete(rule: SourcePrecedence) -> None:
    _mark_days_of(rule.provider, {rule.preferred, rule.over})
    rule.delete()


# --- Which source counts (the Python side of usage.services.standings.reported_by_preferred_source_sql) --------


def precedence_rules() -> list[tuple[str, str, str, str]]:
    """Every rule as (provider, preferred, over, usage kind), read once for many rows."""
    return list(SourcePrecedence.objects.values_list("provider", "preferred", "over", "usage_kind"))


def preferred_source(rules, provider: str, source: str, usage_kind: str, *, reported: set[str]) -> str | None:
    """The source that counts instead of a row of `source`, where `reported` are the sources that report the
    same person's use of the provider that day; None when the row counts."""
    return next(
        (
            preferred
            for rule_provider, preferred, over, kind in rules
            if rule_provider == provider and over == source and kind in ("", usage_kind) and preferred in reported
        ),
        None,
    )


# --- What an import shares with others -------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlap:
    """Usage of this import that another import also reports."""

    tokens: int  # of the source that is not counted
    other_imports: list[int]
    counted_source: str  # label of the source that counts
    this_counts: bool


def _overlapping(rule: SourcePrecedence, batch: ImportBatch, *, batch_counts: bool) -> dict[tuple, int]:
    """(person, day) → the tokens not counted, where this import and another report a person's use on a day."""
    base = UsageRecord.objects.filter(
        provider=rule.provider, identity__person__isnull=False, identity__attribution=IdentityAttribution.PERSONAL
    ).exclude(usage_kind=COST_REPORT_KIND)
    if batch.period_start and batch.period_end:
        base = base.filter(day__range=(batch.period_start, batch.period_end))
    mine = Q(import_batch=batch)
    losing, winning = (Q(), mine) if batch_counts else (mine, Q())
    losing_rows = base.filter(losing, import_batch__detected_format=rule.over)
    if rule.usage_kind:
        losing_rows = losing_rows.filter(usage_kind=rule.usage_kind)
    losers = {
        (person, day): tokens
        for person, day, tokens in losing_rows.values_list("identity__person_id", "day")
        .annotate(tokens=Sum("total_tokens"))
        .values_list("identity__person_id", "day", "tokens")
    }
    if not losers:
        return {}
    days = {day for _person, day in losers}
    winners = set(
        base.filter(winning, import_batch__detected_format=rule.preferred, day__in=days)
        .values_list("identity__person_id", "day")
        .distinct()
    )
    return {key: tokens for key, tokens in losers.items() if key in winners}


def _imports_of(rule_source: str, provider: str, keys: set[tuple], exclude: int) -> list[int]:
    days = {day for _person, day in keys}
    people = {person for person, _day in keys}
    return sorted(
        set(
            UsageRecord.objects.filter(
                provider=provider,
                import_batch__detected_format=rule_source,
                day__in=days,
                identity__person_id__in=people,
            )
            .exclude(import_batch_id=exclude)
            .values_list("import_batch_id", flat=True)
        )
    )


def import_overlaps(batch: ImportBatch) -> list[Overlap]:
    """For each rule this import's source takes part in: the tokens reported twice, and by which imports."""
    source = batch.detected_format
    if not source:
        return []
    found = []
    for rule in SourcePrecedence.objects.filter(Q(preferred=source) | Q(over=source)):
        this_counts = rule.preferred == source
        overlap = _overlapping(rule, batch, batch_counts=this_counts)
        if not overlap:
            continue
        other_source = rule.over if this_counts else rule.preferred
        others = _imports_of(other_source, rule.provider, set(overlap), exclude=batch.pk)
        found.append(Overlap(sum(overlap.values()), others, source_label(rule.preferred), this_counts))
    return found
