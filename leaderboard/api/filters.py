"""django-filter FilterSets of API v1. The window, provider, model and team parameters of /usage/ are the
shared ranking contract (leaderboard.windows) and are applied by the view, not here."""

import django_filters
from django import forms
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from usage.models import (
    Identity,
    IdentityAttribution,
    IdentityKind,
    ImportBatch,
    ImportSource,
    ImportStatus,
    Provider,
    UsageRecord,
)

MAX_ID = 2**63 - 1


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A database id: a whole number from 1 (a number filter would accept 1.5e38 and overflow the database)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class UsageRecordFilter(django_filters.FilterSet):
    person = IdFilter(field_name="identity__person_id", help_text="Person id.")
    identity = IdFilter(field_name="identity_id", help_text="Identity id.")
    kind = django_filters.CharFilter(field_name="usage_kind", help_text="Usage kind, e.g. `tokens`.")
    identity_kind = django_filters.ChoiceFilter(
        field_name="identity__kind", choices=IdentityKind.choices, help_text="Kind of identity."
    )
    assigned = django_filters.BooleanFilter(
        method="filter_assigned",
        help_text="true: only usage of personal identities assigned to a person (what people rankings count); "
        "false: the rest (unassigned, shared and service identities).",
    )

    class Meta:
        model = UsageRecord
        fields = ["person", "identity", "kind", "identity_kind", "assigned"]

    def filter_assigned(self, queryset, name, value):
        if value is None:
            return queryset
        counted = Q(identity__person__isnull=False, identity__attribution=IdentityAttribution.PERSONAL)
        return queryset.filter(counted if value else ~counted)


class ImportFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ImportStatus.choices)
    source = django_filters.ChoiceFilter(choices=ImportSource.choices)

    class Meta:
        model = ImportBatch
        fields = ["status", "source"]


class IdentityFilter(django_filters.FilterSet):
    assigned = django_filters.BooleanFilter(
        field_name="person", lookup_expr="isnull", exclude=True, help_text="false: only unassigned identities."
    )
    provider = django_filters.ChoiceFilter(choices=Provider.choices)
    kind = django_filters.ChoiceFilter(choices=IdentityKind.choices)
    attribution = django_filters.ChoiceFilter(
        choices=IdentityAttribution.choices, help_text="personal, shared (a team's) or service (CI, batch)."
    )
    person = IdFilter(field_name="person_id", help_text="Person id.")

    class Meta:
        model = Identity
        fields = ["assigned", "provider", "kind", "attribution", "person"]
