"""/api/v1/audit/ (admins): the audit trail, newest first, with the audit page's filters."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView

from usage.services.audit import AuditFilter, audit_entries, entry_actor, entry_details

from .views import COMMON_ERRORS, IsTokenboardAdmin


class AuditQuerySerializer(serializers.Serializer):
    event = serializers.CharField(required=False, max_length=60, default="")
    actor = serializers.CharField(required=False, max_length=150, default="")
    q = serializers.CharField(required=False, max_length=200, default="")
    since = serializers.DateField(required=False, default=None)
    until = serializers.DateField(required=False, default=None)


class AuditEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    event = serializers.CharField(help_text='e.g. "login", "login.failed", "export", "identity.assign".')
    actor = serializers.CharField(allow_blank=True, help_text="Username; empty for the system or a failed login.")
    remote_addr = serializers.IPAddressField(allow_null=True)
    object_type = serializers.CharField(allow_blank=True)
    object_id = serializers.CharField(allow_blank=True)
    object_repr = serializers.CharField(allow_blank=True)
    details = serializers.DictField(help_text="A change's fields ({field: [old, new]}) or an event's details.")


def audit_entry_dict(entry) -> dict:
    return {
        "id": entry.pk,
        "timestamp": entry.timestamp,
        "event": entry.event,
        "actor": entry_actor(entry),
        "remote_addr": entry.remote_addr,
        "object_type": entry.content_type.model if entry.content_type_id else "",
        "object_id": entry.object_pk,
        "object_repr": entry.object_repr,
        "details": entry_details(entry),
    }


class AuditListView(GenericAPIView):
    permission_classes = [IsTokenboardAdmin]
    serializer_class = AuditEntrySerializer

    @extend_schema(
        operation_id="audit_list",
        summary="The audit trail, newest first",
        description="Append-only records of sign-ins, uploads, imports, identities, mappings, connections (never "
        "a key), exports, API tokens, roles and prices. `event` matches a name or its prefix (`import` matches "
        "`import.upload`). Admins only (403 for others).",
        parameters=[
            OpenApiParameter("event", str, description="Event name or prefix, e.g. `login.failed`, `export`."),
            OpenApiParameter("actor", str, description="Part of the actor's username or email."),
            OpenApiParameter("q", str, description="Part of what the entry is about."),
            OpenApiParameter("since", str, description="First day (YYYY-MM-DD, inclusive)."),
            OpenApiParameter("until", str, description="Last day (YYYY-MM-DD, inclusive)."),
        ],
        responses={200: AuditEntrySerializer(many=True), **COMMON_ERRORS},
        tags=["audit"],
    )
    def get(self, request):
        query = AuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        wanted = AuditFilter(
            event=data["event"], actor=data["actor"], text=data["q"], since=data["since"], until=data["until"]
        )
        page = self.paginate_queryset(audit_entries(wanted))
        return self.get_paginated_response(AuditEntrySerializer([audit_entry_dict(e) for e in page], many=True).data)
