"""/api/v1/models/: the model catalog (read only; admins edit it on the Models page). Any signed-in user may
read the catalog — model names are what the `model` and `model_family` filters take; the names not in it yet
(`/models/unmapped/`) are for admins."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from usage.services.catalog import catalog_models, unmapped_models

from .views import IsTokenboardAdmin


class CatalogModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Canonical name; what `model=` filters and the mixes show.")
    family = serializers.CharField(help_text="What `model_family=` filters.")
    vendor = serializers.CharField()
    spellings = serializers.ListField(
        child=serializers.CharField(), help_text="Names sources export for it (lower case; matched ignoring case)."
    )


class UnmappedModelSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The name as exported; counted under it, with no family.")
    providers = serializers.ListField(child=serializers.CharField())
    total_tokens = serializers.IntegerField()
    last_day = serializers.DateField()


@extend_schema(tags=["models"])
class CatalogModelListView(GenericAPIView):
    serializer_class = CatalogModelSerializer
    pagination_class = None

    @extend_schema(
        operation_id="models_list",
        summary="The model catalog: canonical models, families, vendors and spellings",
        responses={200: CatalogModelSerializer(many=True)},
    )
    def get(self, request):
        rows = [
            {
                "id": model.pk,
                "name": model.name,
                "family": model.family,
                "vendor": model.vendor,
                "spellings": [alias.spelling for alias in model.aliases.all()],
            }
            for model in catalog_models()
        ]
        return Response(CatalogModelSerializer(rows, many=True).data)


@extend_schema(tags=["models"])
class UnmappedModelListView(GenericAPIView):
    permission_classes = [IsTokenboardAdmin]
    serializer_class = UnmappedModelSerializer
    pagination_class = None

    @extend_schema(
        operation_id="models_unmapped",
        summary="Exported model names no catalog spelling maps, biggest first (admins)",
        responses={200: UnmappedModelSerializer(many=True)},
    )
    def get(self, request):
        return Response(UnmappedModelSerializer([vars(m) for m in unmapped_models()], many=True).data)
