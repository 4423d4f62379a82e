"""Where a person's figures come from: for each day and provider in a window, the imports and pulls that
reported it, which of them count (source precedence) and whether the cost counted is billed or estimated.

Read from the person's usage records (a person's window is a few hundred rows at most, found through the
identity-and-day index); the same rules as the rollups (usage.services.standings) decide what counts, so the
counted tokens here equal the person's figures on the board.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from usage.figures import COST_REPORT_KIND
from usage.models import (
    CostSource,
    IdentityAttribution,
    ImportSource,
    Provider,
    UsageRecord,
)
from usage.periods import Window
from usage.services.catalog import model_spelled_as
from usage.services.precedence import precedence_rules, preferred_source, source_label


@dataclass
class SourceShare:
    import_id: int
    source: str  # format name
    label: str  # "Anthropic usage report (JSON), API pull (prod-anthropic)"
    tokens: int
    cost_usd: Decimal
    counted: bool  # its tokens count (False: a preferred source reports the same use)
    note: str = ""
    bases: set[str] = field(default_factory=set)

    @property
    def cost_basis(self) -> str:
        """billed, estimated, billed and estimated, or none (no cost, or replaced by the cost report)."""
        return " and ".join(sorted(self.bases - {CostSource.NONE})) or "none"


@dataclass
class DayProvenance:
    day: date
    provider: str
    provider_label: str
    tokens: int = 0  # counted
    cost_usd: Decimal = Decimal(0)  # counted
    sources: list[SourceShare] = field(default_factory=list)

    @property
    def cost_basis(self) -> str:
        """How the counted cost was reached: billed, estimated, billed and estimated, or none."""
        bases = set().union(*(s.bases for s in self.sources if s.counted)) - {CostSource.NONE}
        return " and ".join(sorted(bases)) or "none"


def _via(source: str, connection: str | None) -> str:
    return f"API pull ({connection})" if source == ImportSource.API and connection else ImportSource(source).label


def person_provenance(person_id: int, window: Window, *, provider: str = "", model: str = "") -> list[DayProvenance]:
    """Newest day first; within a day, providers by name."""
    records = UsageRecord.objects.filter(
        identity__person_id=person_id,
        identity__attribution=IdentityAttribution.PERSONAL,
        day__range=(window.start, window.end),
    )
    if provider:
        records = records.filter(provider=provider)
    if model:  # the catalog's model: every spelling the sources use for it
        records = records.filter(model_spelled_as(model=model))
    rows = records.values(
        "day",
        "provider",
        "usage_kind",
        "cost_source",
        "import_batch_id",
        "import_batch__detected_format",
        "import_batch__source",
        "import_batch__connection__name",
    ).annotate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"))
    rows = list(rows)
    reported: dict[tuple, set[str]] = defaultdict(set)  # (day, provider) → the sources reporting it
    for r in rows:
        reported[r["day"], r["provider"]].add(r["import_batch__detected_format"])
    billed_days = {(r["day"], r["provider"]) for r in rows if r["usage_kind"] == COST_REPORT_KIND}
    rules = precedence_rules()
    labels = dict(Provider.choices)
    days: dict[tuple, DayProvenance] = {}
    shares: dict[tuple, SourceShare] = {}
    for r in rows:
        key = (r["day"], r["provider"])
        entry = days.setdefault(key, DayProvenance(r["day"], r["provider"], labels.get(r["provider"], r["provider"])))
        source = r["import_batch__detected_format"]
        preferred_by = preferred_source(
            rules, r["provider"], source, r["usage_kind"], reported=reported.get(key, set())
        )
        is_bill = r["usage_kind"] == COST_REPORT_KIND
        counted = preferred_by is None
        cost_replaced = not is_bill and key in billed_days
        tokens, cost = int(r["tokens"] or 0), Decimal(r["cost"] or 0)
        if counted:
            entry.tokens += tokens
            entry.cost_usd += Decimal(0) if cost_replaced else cost
        note = (
            f"also reported by the {source_label(preferred_by)}, which counts"
            if preferred_by
            else "its cost is replaced by the cost report"
            if cost_replaced and cost
            else "the provider's bill"
            if is_bill
            else ""
        )
        share_key = (*key, r["import_batch_id"], counted)
        share = shares.get(share_key)
        if share is None:
            via = _via(r["import_batch__source"], r["import_batch__connection__name"])
            share = shares[share_key] = SourceShare(
                import_id=r["import_batch_id"],
                source=source,
                label=f"{source_label(source)}, {via}",
                tokens=0,
                cost_usd=Decimal(0),
                counted=counted,
                note=note,
            )
            entry.sources.append(share)
        share.tokens += tokens
        share.cost_usd += cost
        if counted and not cost_replaced:
            share.bases.add(r["cost_source"])
    return sorted(days.values(), key=lambda d: (-d.day.toordinal(), d.provider))
