"""/api/v1/connections/ (admins): provider connections. `api_key` is write-only — accepted on create and
update, stored encrypted, never returned. Status fields (last success, last error, rows pulled, next run) are
read-only. Writes go through usage.services.connections, like the Connections page and the Django admin."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from usage.access import IsTokenboardAdmin
from usage.collectors import SUPPORTED_PROVIDERS
from usage.models import Provider, ProviderConnection
from usage.services.connections import (
    QueueUnavailable,
    connection_create,
    connection_delete,
    connection_next_run,
    connection_sync_queue,
    connection_test,
    connection_update,
)

from .views import WriteThrottleMixin

PROVIDER_CHOICES = [(value, label) for value, label in Provider.choices if value in SUPPORTED_PROVIDERS]


class ConnectionInputSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=PROVIDER_CHOICES)
    name = serializers.CharField(max_length=100)
    api_key = serializers.CharField(write_only=True, style={"input_type": "password"}, trim_whitespace=True)
    base_url = serializers.URLField(required=False, allow_blank=True, default="")
    schedule = serializers.CharField(max_length=100, required=False, default="0 * * * *")
    restatement_days = serializers.IntegerField(min_value=0, max_value=90, required=False, default=3)
    enabled = serializers.BooleanField(required=False, default=True)


class ConnectionOutputSerializer(serializers.ModelSerializer):
    next_run = serializers.SerializerMethodField()

    class Meta:
        model = ProviderConnection
        fields = [
            "id",
            "provider",
            "name",
            "base_url",
            "schedule",
            "restatement_days",
            "enabled",
            "last_success_at",
            "last_error",
            "last_error_at",
            "last_rows_pulled",
            "failing",
            "next_run",
            "created_at",
        ]
        read_only_fields = fields

    def get_next_run(self, connection) -> str | None:
        moment = connection_next_run(connection)
        return moment.isoformat() if moment else None


def _service_call(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except DjangoValidationError as error:
        raise ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages) from None


class ConnectionListView(WriteThrottleMixin, GenericAPIView):
    permission_classes = [IsTokenboardAdmin]
    serializer_class = ConnectionOutputSerializer

    def get_queryset(self):
        return ProviderConnection.objects.order_by("name")

    @extend_schema(
        operation_id="connections_list",
        summary="Provider connections with their health",
        responses={200: ConnectionOutputSerializer(many=True)},
        tags=["connections"],
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ConnectionOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="connections_create",
        summary="Add a provider connection (its beat schedule is created with it)",
        request=ConnectionInputSerializer,
        responses={201: ConnectionOutputSerializer},
        tags=["connections"],
    )
    def post(self, request):
        data = ConnectionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        connection = _service_call(connection_create, **data.validated_data)
        return Response(ConnectionOutputSerializer(connection).data, status=status.HTTP_201_CREATED)


class ConnectionDetailView(WriteThrottleMixin, GenericAPIView):
    permission_classes = [IsTokenboardAdmin]
    serializer_class = ConnectionOutputSerializer

    @extend_schema(
        operation_id="connections_retrieve", responses={200: ConnectionOutputSerializer}, tags=["connections"]
    )
    def get(self, request, pk: int):
        return Response(ConnectionOutputSerializer(get_object_or_404(ProviderConnection, pk=pk)).data)

    @extend_schema(
        operation_id="connections_update",
        summary="Change a connection; omit api_key to keep the stored key",
        request=ConnectionInputSerializer(partial=True),
        responses={200: ConnectionOutputSerializer},
        tags=["connections"],
    )
    def patch(self, request, pk: int):
        connection = get_object_or_404(ProviderConnection, pk=pk)
        data = ConnectionInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        api_key = changes.pop("api_key", None)
        connection = _service_call(connection_update, connection=connection, api_key=api_key, **changes)
        return Response(ConnectionOutputSerializer(connection).data)

    @extend_schema(operation_id="connections_destroy", responses={204: None}, tags=["connections"])
    def delete(self, request, pk: int):
        connection_delete(get_object_or_404(ProviderConnection, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConnectionActionResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()


class ConnectionSyncView(WriteThrottleMixin, GenericAPIView):
    permission_classes = [IsTokenboardAdmin]
    serializer_class = ConnectionActionResultSerializer

    @extend_schema(
        operation_id="connections_sync",
        summary="Queue a pull now (the result shows in the connection's status fields)",
        request=None,
        responses={202: ConnectionActionResultSerializer},
        tags=["connections"],
    )
    def post(self, request, pk: int):
        connection = get_object_or_404(ProviderConnection, pk=pk)
        try:
            connection_sync_queue(connection)
        except QueueUnavailable as error:
            return Response({"ok": False, "message": str(error)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(
            {"ok": True, "message": f"queued a pull of {connection.name!r}"}, status=status.HTTP_202_ACCEPTED
        )


class ConnectionTestView(WriteThrottleMixin, GenericAPIView):
    permission_classes = [IsTokenboardAdmin]
    serializer_class = ConnectionActionResultSerializer

    @extend_schema(
        operation_id="connections_test",
        summary="One cheap authenticated call; says what is wrong (bad key, missing admin scope, unreachable)",
        request=None,
        responses={200: ConnectionActionResultSerializer},
        tags=["connections"],
    )
    def post(self, request, pk: int):
        check = connection_test(get_object_or_404(ProviderConnection, pk=pk))
        return Response({"ok": check.ok, "message": check.message})
