"""Reconciliation of billed and estimated cost, per provider and month, for admins: what the providers' cost
reports bill, how much of it is attributed to people (and so counted in their rankings, replacing estimates),
what the price table estimated from the usage exports, and what the rankings count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Case, DecimalField, Sum, Value, When
from django.db.models.functions import Coalesce

from usage.figures import COST_REPORT_KIND
from usage.models import CostSource, DailyRollup, Provider, UsageRecord

ZERO = Value(Decimal(0), output_field=DecimalField(max_digits=18, decimal_places=6))


@dataclass(frozen=True)
class ProviderMonth:
    provider: str
    label: str
    billed: Decimal  # cost reports, all of them
    attributed: Decimal  # cost-report rows whose key, project or workspace a person owns
    estimated: Decimal  # usage rows priced from the price table or by the vendor's own estimate
    counted: Decimal  # what the rankings count (rollups)

    @property
    def unattributed(self) -> Decimal:
        return self.billed - self.attributed

    @property
    def difference(self) -> Decimal:
        """Billed minus estimated: how far the estimate is from the bill."""
        return self.billed - self.estimated


def _by_provider(rows, field: str) -> dict[str, Decimal]:
    return {row["provider"]: row[field] for row in rows}


def reconciliation(first: date, last: date) -> list[ProviderMonth]:
    usage = UsageRecord.objects.filter(day__range=(first, last))
    bills = (
        usage.filter(usage_kind=COST_REPORT_KIND)
        .values("provider")
        .annotate(
            billed=Coalesce(Sum("cost_usd"), ZERO),
            attributed=Coalesce(
                Sum(Case(When(identity__person__isnull=False, then="cost_usd"), default=ZERO)),
                ZERO,
            ),
        )
    )
    billed = {row["provider"]: row for row in bills}
    estimated = _by_provider(
        usage.exclude(usage_kind=COST_REPORT_KIND)
        .filter(cost_source=CostSource.ESTIMATED)
        .values("provider")
        .annotate(estimated=Coalesce(Sum("cost_usd"), ZERO)),
        "estimated",
    )
    counted = _by_provider(
        DailyRollup.objects.filter(day__range=(first, last))
        .values("provider")
        .annotate(counted=Coalesce(Sum("cost_usd"), ZERO)),
        "counted",
    )
    labels = dict(Provider.choices)
    return [
        ProviderMonth(
            provider=provider,
            label=labels.get(provider, provider),
            billed=billed.get(provider, {}).get("billed", Decimal(0)),
            attributed=billed.get(provider, {}).get("attributed", Decimal(0)),
            estimated=estimated.get(provider, Decimal(0)),
            counted=counted.get(provider, Decimal(0)),
        )
        for provider in sorted(billed.keys() | estimated.keys() | counted.keys())
    ]
