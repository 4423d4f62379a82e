"""Provider admin API collectors: one module per provider, all the same shape (see base.Collector).

A collector only talks HTTP: it follows each endpoint's pagination to the end and returns the raw pages
as `Dataset`s, each named after the parser (usage/parsers/) that reads it. It stores nothing; the service
(usage.services.connections) turns every dataset into one ImportBatch once *all* pages are in.
"""

from .base import Collector, Dataset
from .http import ProviderAuthError, ProviderError, ProviderRequestError, ProviderUnavailable


def collector_class(provider: str) -> type[Collector]:
    from . import anthropic, cursor, openai

    classes = {module.COLLECTOR.provider: module.COLLECTOR for module in (openai, anthropic, cursor)}
    try:
        return classes[provider]
    except KeyError:
        raise ProviderRequestError(
            f"no API collector for provider {provider!r}; supported: {', '.join(sorted(classes))}"
        ) from None


SUPPORTED_PROVIDERS = ("openai", "anthropic", "cursor")

__all__ = [
    "Collector",
    "Dataset",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRequestError",
    "ProviderUnavailable",
    "SUPPORTED_PROVIDERS",
    "collector_class",
]
