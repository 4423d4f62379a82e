"""REST API of allowances and team budgets (issue 13), under the rules of usage.access: admins read and write
everything; managers read their subtree's (its people's allowances, its teams' defaults and budgets); engineers
read their own allowance. Burn figures are those of the pages (leaderboard.budgets)."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from leaderboard.budgets import Burn, person_burn, team_burn
from usage.access import (
    access_person,
    can_manage_budgets,
    can_see_allowance,
    viewer_for,
    visible_allowance_owner_ids,
)
from usage.models import Allowance, BudgetPeriod, Person, Team, TeamBudget
from usage.periods import org_today
from usage.services.budgets import (
    CSV_MAX_BYTES,
    AllowanceImportError,
    BudgetError,
    allowance_save,
    allowances_csv_import,
    budget_save,
    date_parse,
)

from .views import COMMON_ERRORS, DETAIL, ERROR_404, WriteThrottleMixin


class BurnSerializer(serializers.Serializer):
    period = serializers.DictField(help_text="The current period: period, start, end, label.")
    tokens_limit = serializers.IntegerField(allow_null=True)
    usd_limit = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    used_tokens = serializers.IntegerField()
    used_usd = serializers.DecimalField(max_digits=18, decimal_places=2)
    remaining_tokens = serializers.IntegerField(allow_null=True)
    remaining_usd = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    used_percent = serializers.FloatField(help_text="Of the limits set, the highest share used (0.1 % steps).")
    daily_rate_tokens = serializers.FloatField(help_text="Mean tokens a day over the last 7 days.")
    daily_rate_usd = serializers.FloatField()
    projected_tokens = serializers.IntegerField(help_text="Used plus the daily rate for each day left.")
    projected_usd = serializers.DecimalField(max_digits=18, decimal_places=2)
    projected_percent = serializers.FloatField()
    forecast_band_tokens = serializers.ListField(child=serializers.IntegerField())
    forecast_band_usd = serializers.ListField(child=serializers.DecimalField(max_digits=18, decimal_places=2))
    run_out_date = serializers.DateField(allow_null=True, help_text="Day the limit is reached at this rate.")


def burn_dict(burn: Burn) -> dict:
    return {
        "period": {
            "period": burn.period.period,
            "start": burn.period.start,
            "end": burn.period.end,
            "label": burn.period.label,
        },
        "tokens_limit": burn.tokens_limit,
        "usd_limit": burn.usd_limit,
        "used_tokens": burn.used_tokens,
        "used_usd": burn.used_usd,
        "remaining_tokens": burn.remaining_tokens,
        "remaining_usd": burn.remaining_usd,
        "used_percent": round(burn.used_percent, 1),
        "daily_rate_tokens": round(burn.rate_tokens, 1),
        "daily_rate_usd": round(burn.rate_usd, 2),
        "projected_tokens": burn.projected_tokens,
        "projected_usd": burn.projected_usd,
        "projected_percent": round(burn.projected_percent, 1),
        "forecast_band_tokens": list(burn.band_tokens),
        "forecast_band_usd": list(burn.band_usd),
        "run_out_date": burn.run_out_date,
    }


class AllowanceSerializer(serializers.ModelSerializer):
    person = serializers.PrimaryKeyRelatedField(queryset=Person.objects.all(), allow_null=True, required=False)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), allow_null=True, required=False)
    person_email = serializers.SerializerMethodField()

    class Meta:
        model = Allowance
        fields = ["id", "person", "person_email", "team", "period", "tokens", "usd", "start", "end"]
        read_only_fields = ["id"]

    def get_person_email(self, allowance) -> str | None:
        return allowance.person.email if allowance.person_id else None


class TeamBudgetSerializer(serializers.ModelSerializer):
    slack_webhook_url = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text="https only; never returned. Empty removes it."
    )
    slack_configured = serializers.SerializerMethodField()
    thresholds = serializers.ListField(child=serializers.IntegerField(), required=False)

    class Meta:
        model = TeamBudget
        fields = [
            "id",
            "team",
            "period",
            "tokens",
            "usd",
            "thresholds",
            "slack_webhook_url",
            "slack_configured",
            "start",
            "end",
        ]
        read_only_fields = ["id"]

    def get_slack_configured(self, budget) -> bool:
        return bool(budget.encrypted_slack_webhook)


def _as_400(error: BudgetError):
    return ValidationError({error.field: [error.message]})


def _require_manage(request) -> None:
    if not can_manage_budgets(viewer_for(request.user)):
        raise PermissionDenied("Only admins set allowances and budgets.")


@extend_schema_view(
    list=extend_schema(
        operation_id="allowances_list",
        summary="Allowances you may see",
        description="Admins: all. Managers: their subtree's people and teams. Engineers: their own.",
    ),
    retrieve=extend_schema(operation_id="allowances_retrieve", responses={200: AllowanceSerializer, 404: ERROR_404}),
    create=extend_schema(
        operation_id="allowances_create",
        summary="Set a person's or a team's allowance from a date (admins)",
        description="Give `person` or `team`, `tokens` and/or `usd` (not negative), `period` (month or quarter) and "
        "`start`. The open allowance before it ends the day before; one that overlaps another is a 400 naming "
        "the field. Throttled (scope `writes`).",
        responses={201: AllowanceSerializer, **COMMON_ERRORS},
    ),
    destroy=extend_schema(operation_id="allowances_delete", summary="Delete an allowance (admins)"),
)
@extend_schema(tags=["budgets"])
class AllowanceViewSet(
    WriteThrottleMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = AllowanceSerializer
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        rows = Allowance.objects.select_related("person").order_by("start", "pk")
        people, teams = visible_allowance_owner_ids(viewer_for(self.request.user))
        if people is None:
            return rows
        return rows.filter(Q(person_id__in=people) | Q(team_id__in=teams))

    def create(self, request):
        _require_manage(request)
        form = AllowanceSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            allowance = allowance_save(
                person=data.get("person"),
                team=data.get("team"),
                period=data.get("period", BudgetPeriod.MONTH),
                tokens=data.get("tokens"),
                usd=data.get("usd"),
                start=data["start"],
                end=data.get("end"),
            )
        except BudgetError as error:
            raise _as_400(error) from None
        return Response(AllowanceSerializer(allowance).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        _require_manage(request)
        return super().destroy(request, *args, **kwargs)

    @extend_schema(
        operation_id="allowances_import",
        summary="Set allowances from a CSV (admins)",
        description="Multipart `file`: columns `email,period,tokens,usd,effective`. The whole file is checked "
        "first; any bad row (unknown email, negative or non-numeric figure, overlapping dates) is a 400 listing "
        "each row and field, and nothing is saved.",
        request={
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
        },
        responses={200: OpenApiResponse(description='`{"saved": <rows>}`'), **COMMON_ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_csv(self, request):
        _require_manage(request)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["send the CSV as multipart field `file`"]})
        if upload.size > CSV_MAX_BYTES:
            raise ValidationError(
                {
                    "file": [
                        f"{upload.name}: larger than {CSV_MAX_BYTES} bytes. Split it into smaller files, each with the "
                        "header row, and send them one after another."
                    ]
                }
            )
        try:
            saved = allowances_csv_import(upload.read().decode("utf-8-sig"), upload.name, org_today())
        except UnicodeDecodeError:
            raise ValidationError({"file": [f"{upload.name}: not UTF-8 text"]}) from None
        except AllowanceImportError as error:
            raise ValidationError({"file": [str(e) for e in error.errors]}) from None
        return Response({"saved": saved})


@extend_schema_view(
    list=extend_schema(
        operation_id="budgets_list",
        summary="Team budgets you may see, with this period's burn",
        description="Admins: all. Managers: their subtree's teams. Engineers: none. `burn` is the current period's "
        "(null when the budget does not apply today). `team` (an id) lists that team's budgets only.",
        parameters=[OpenApiParameter("team", OpenApiTypes.INT, description="Only this team's budgets.")],
    ),
    retrieve=extend_schema(operation_id="budgets_retrieve", responses={200: TeamBudgetSerializer, 404: ERROR_404}),
    create=extend_schema(
        operation_id="budgets_create",
        summary="Set a team's budget from a date (admins)",
        description="`team`, `tokens` and/or `usd`, `period`, `start`, optional `thresholds` (default "
        "[50, 80, 100]) and `slack_webhook_url` (https only, stored encrypted, never returned). Throttled.",
        responses={201: TeamBudgetSerializer, **COMMON_ERRORS},
    ),
)
@extend_schema(tags=["budgets"])
class TeamBudgetViewSet(WriteThrottleMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TeamBudgetSerializer
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def get_queryset(self):
        rows = TeamBudget.objects.select_related("team").order_by("team_id", "start", "pk")
        team = self.request.query_params.get("team", "").strip()
        if team:
            if not (team.isascii() and team.isdigit()):
                raise ValidationError({"team": [f"{team!r} is not a team id"]})
            rows = rows.filter(team_id=int(team))
        _people, teams = visible_allowance_owner_ids(viewer_for(self.request.user))
        return rows if teams is None else rows.filter(team_id__in=teams)

    def _with_burn(self, budget: TeamBudget) -> dict:
        today = org_today()
        data = TeamBudgetSerializer(budget).data
        applies = budget.start <= today and (budget.end is None or budget.end >= today)
        data["burn"] = burn_dict(team_burn(budget, today)) if applies else None
        return data

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([self._with_burn(b) for b in page])

    def retrieve(self, request, *args, **kwargs):
        return Response(self._with_burn(self.get_object()))

    def create(self, request):
        _require_manage(request)
        form = TeamBudgetSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            budget = budget_save(
                team=data["team"],
                period=data.get("period", BudgetPeriod.MONTH),
                tokens=data.get("tokens"),
                usd=data.get("usd"),
                thresholds=data.get("thresholds"),
                slack_webhook_url=data.get("slack_webhook_url"),
                start=data["start"],
                end=data.get("end"),
            )
        except BudgetError as error:
            raise _as_400(error) from None
        return Response(self._with_burn(budget), status=status.HTTP_201_CREATED)


class PersonAllowanceView(GenericAPIView):
    serializer_class = BurnSerializer
    pagination_class = None

    @extend_schema(
        operation_id="person_allowance",
        summary="A person's allowance and its burn this period",
        description="For the person themselves, their managers and admins (403 for others; 404 for an unknown "
        "id). `date` (YYYY-MM-DD) evaluates another day's period. `allowance` and `burn` are null without one.",
        responses={
            200: OpenApiResponse(description="`{allowance, burn}`"),
            403: OpenApiResponse(DETAIL),
            404: ERROR_404,
        },
        tags=["budgets"],
    )
    def get(self, request, pk: int):
        viewer = viewer_for(request.user)
        person, _detail = access_person(viewer, pk)
        if not can_see_allowance(viewer, person.pk):
            raise PermissionDenied("A person's allowance is for them, their managers and admins.")
        try:
            day = date_parse(request.query_params.get("date"), "date", org_today())
        except BudgetError as error:
            raise _as_400(error) from None
        found = person_burn(person.pk, day)
        if found is None:
            return Response({"allowance": None, "burn": None})
        allowance, burn = found
        return Response({"allowance": AllowanceSerializer(allowance).data, "burn": burn_dict(burn)})
