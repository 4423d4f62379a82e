"""Estimating cost from the price table where a format has tokens but no cost."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fnmatch import fnmatchcase

from usage.models import ModelPrice

MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class Price:
    pattern: str
    effective_from: date
    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal


class PriceBook:
    """All prices, loaded once per import; the newest price in effect on the day wins."""

    def __init__(self) -> None:
        self._by_provider: dict[str, list[Price]] = {}
        for row in ModelPrice.objects.order_by("-effective_from", "-model_pattern"):
            self._by_provider.setdefault(row.provider, []).append(
                Price(
                    row.model_pattern.lower(),
                    row.effective_from,
                    row.input_per_mtok,
                    row.cache_read_per_mtok,
                    row.cache_write_per_mtok,
                    row.output_per_mtok,
                )
            )
        self._cache: dict[tuple[str, str, date], Price | None] = {}

    def price_for(self, provider: str, model: str, day: date) -> Price | None:
        key = (provider, model, day)
        if key not in self._cache:
            model_lower = model.lower()
            self._cache[key] = next(
                (
                    p
                    for p in self._by_provider.get(provider, [])
                    if p.effective_from <= day and fnmatchcase(model_lower, p.pattern)
                ),
                None,
            )
        return self._cache[key]

    def estimate(
        self,
        *,
        provider: str,
        model: str,
        day: date,
        input_tokens: int,
        cache_read_tokens: int,
        cache_write_tokens: int,
        output_tokens: int,
    ) -> Decimal | None:
        price = self.price_for(provider, model, day)
        if price is None:
            return None
        cost = (
            input_tokens * price.input
            + cache_read_tokens * price.cache_read
            + cache_write_tokens * price.cache_write
            + output_tokens * price.output
        ) / MILLION
        return cost.quantize(COST_PLACES)
