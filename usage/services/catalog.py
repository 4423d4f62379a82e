"""The model catalog: canonical models with their family and vendor, and every source's spelling of them
(usage.models.CatalogModel, ModelAlias).

The rollups count usage under the canonical model its spelling maps to (usage.services.standings), so filters,
charts, mixes and titles all see one model however the sources spell it. Changing the catalog changes no
UsageRecord: it marks the days whose usage is spelled in a way it affects, and the next refresh recounts them.

Refused, with a message: an empty spelling or name; a spelling that is another model's name (it would chain
one model into another); moving or deleting a model's own name; deleting a spelling or model that usage
still uses (its usage would be left unmapped — map the spelling to another model instead).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.db.models import Max, Q, Sum
from django.db.models.functions import Lower

from usage.models import CatalogModel, DailyRollup, ModelAlias, UsageRecord
from usage.services.standings import standings_mark_days


class CatalogRefused(Exception):
    """A catalog change that would chain models or leave usage unmapped; the message says why."""


def spelling_normalized(text: str) -> str:
    """As the rollups match it: lower case (SQL LOWER), inner spaces kept so an exported name maps exactly."""
    return text.strip().lower()


def _records_spelled(spellings: Iterable[str]):
    return UsageRecord.objects.annotate(model_ci=Lower("model")).filter(model_ci__in=list(spellings))


def _mark_spellings(spellings: Iterable[str]) -> None:
    """Usage spelled this way is counted under another model or family from now on: recount its days."""
    standings_mark_days(_records_spelled(spellings).values_list("day", flat=True).distinct())


def model_canonical(name: str) -> str:
    """The canonical name of the model spelled `name`, or `name` itself when the catalog does not map it."""
    if not name:
        return name
    alias = ModelAlias.objects.filter(spelling=spelling_normalized(name)).select_related("model").first()
    return alias.model.name if alias else name


def model_spelled_as(*, model: str = "", family: str = "") -> Q:
    """A UsageRecord condition: spelled as the canonical `model` (any of its spellings) and/or as a model of
    `family`. A name the catalog does not know matches itself as exported."""
    condition = Q()
    if model:
        spellings = list(ModelAlias.objects.filter(model__name=model).values_list("spelling", flat=True))
        condition &= _any_spelling(spellings) if spellings else Q(model=model)
    if family:
        spellings = list(ModelAlias.objects.filter(model__family=family).values_list("spelling", flat=True))
        condition &= _any_spelling(spellings) if spellings else Q(pk__in=[])
    return condition


def _any_spelling(spellings: list[str]) -> Q:
    condition = Q(pk__in=[])
    for spelling in spellings:
        condition |= Q(model__iexact=spelling)
    return condition


# --- Changing the catalog ----------------------------------------------------------------------------------


def _check_name_free(name: str, model: CatalogModel | None) -> None:
    if not name:
        raise CatalogRefused("a model needs a name")
    taken = ModelAlias.objects.filter(spelling=spelling_normalized(name)).select_related("model").first()
    if taken is not None and taken.model != model:
        raise CatalogRefused(
            f"“{name}” is already a spelling of {taken.model.name}; a model named so would chain one model "
            f"into the other. Move or delete that spelling first, or add it to {taken.model.name}."
        )


@transaction.atomic
def catalog_model_save(*, name: str, family: str, vendor: str, model: CatalogModel | None = None) -> CatalogModel:
    """Create a model (or rename / regroup one); its name is always one of its spellings."""
    name, family, vendor = name.strip(), family.strip(), vendor.strip()
    if not family:
        raise CatalogRefused(f"{name or 'the model'} needs a family (e.g. “Claude Sonnet” for Claude Sonnet 4.5)")
    _check_name_free(name, model)
    if CatalogModel.objects.filter(name__iexact=name).exclude(pk=getattr(model, "pk", None)).exists():
        raise CatalogRefused(f"there is already a model named {name}")
    model = model or CatalogModel()
    model.name, model.family, model.vendor = name, family, vendor
    model.save()
    ModelAlias.objects.get_or_create(spelling=spelling_normalized(name), defaults={"model": model})
    _mark_spellings(model.aliases.values_list("spelling", flat=True))
    return model


@transaction.atomic
def model_alias_save(*, spelling: str, model: CatalogModel) -> ModelAlias:
    """Map a spelling to a model: a new spelling, or one moved from another model."""
    spelling = spelling_normalized(spelling)
    if not spelling:
        raise CatalogRefused("the spelling is empty")
    if len(spelling) > ModelAlias._meta.get_field("spelling").max_length:
        raise CatalogRefused(
            f"the spelling is longer than {ModelAlias._meta.get_field('spelling').max_length} characters"
        )
    named = CatalogModel.objects.annotate(name_ci=Lower("name")).filter(name_ci=spelling).exclude(pk=model.pk).first()
    if named is not None:
        raise CatalogRefused(
            f"“{spelling}” is the name of {named.name}: mapping it to {model.name} would chain one model into "
            f"the other. Merge them by moving {named.name}'s other spellings and deleting it."
        )
    alias, created = ModelAlias.objects.get_or_create(spelling=spelling, defaults={"model": model})
    if not created and alias.model_id != model.pk:
        alias.model = model
        alias.save()
    _mark_spellings([spelling])
    return alias


def _usage_count(spellings: list[str]) -> int:
    return _records_spelled(spellings).count()


@transaction.atomic
def model_alias_delete(alias: ModelAlias) -> None:
    if alias.spelling == spelling_normalized(alias.model.name):
        raise CatalogRefused(f"“{alias.spelling}” is {alias.model.name}'s own name; rename the model instead")
    used = _usage_count([alias.spelling])
    if used:
        raise CatalogRefused(
            f"{used:,} usage records are spelled “{alias.spelling}”; deleting it would leave them unmapped. "
            "Map the spelling to another model instead."
        )
    alias.delete()


@transaction.atomic
def catalog_model_delete(model: CatalogModel) -> None:
    spellings = list(model.aliases.values_list("spelling", flat=True))
    used = _usage_count(spellings)
    if used:
        raise CatalogRefused(
            f"{used:,} usage records are spelled as {model.name}; deleting it would leave them unmapped. "
            "Move its spellings to another model first."
        )
    model.aliases.all().delete()
    model.delete()


# --- Reading ------------------------------------------------------------------------------------------------


@dataclass
class UnmappedModel:
    name: str
    providers: list[str]
    total_tokens: int
    last_day: date


def unmapped_models() -> list[UnmappedModel]:
    """Model names with usage that no alias maps, biggest first: counted under the name as exported (never
    dropped) until an admin maps them. Read from the rollups, where a mapped name has a family."""
    rows = (
        DailyRollup.objects.filter(model_family="")
        .exclude(model="")
        .values("model", "provider")
        .annotate(tokens=Sum("total_tokens"), last_day=Max("day"))
    )
    by_name: dict[str, UnmappedModel] = {}
    for row in rows:
        entry = by_name.setdefault(row["model"], UnmappedModel(row["model"], [], 0, row["last_day"]))
        entry.providers.append(row["provider"])
        entry.total_tokens += row["tokens"] or 0
        entry.last_day = max(entry.last_day, row["last_day"])
    return sorted(by_name.values(), key=lambda m: (-m.total_tokens, m.name))


def catalog_models():
    """Every catalog model with its spellings, by vendor, family and name."""
    return CatalogModel.objects.prefetch_related("aliases")
