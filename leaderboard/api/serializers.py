"""Serializers of API v1. Read-side results are plain dicts built in views.py from the selectors' standings;
these classes render them (Decimals as strings with 6 places) and document every field in the schema.

A field with required=False is left out of the response when the dict has no such key: that is how `email`
and `cost_usd` are omitted where the caller's role may not see them (usage.access decides, in the selectors).
"""

from rest_framework import serializers
from rest_framework.fields import SkipField

from usage.figures import METRIC_DEFINITIONS, METRIC_LABELS, SHARE_METRICS, TOTALS_COLUMNS, UNREPORTED_FIGURES
from usage.models import IdentityAttribution, IdentityKind, ImportBatch, Person, Provider, Team

COST = {"max_digits": 18, "decimal_places": 6, "coerce_to_string": True}


class OmittableDecimalField(serializers.DecimalField):
    """Left out where the dict has no such key (the caller may not see cost), null where its value is None.
    DRF's allow_null alone would fill a missing key with null."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def get_attribute(self, instance):
        if isinstance(instance, dict) and self.source not in instance:
            raise SkipField()
        return super().get_attribute(instance)


class TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class PersonRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField(help_text="Real name, or a stable pseudonym for opted-out people.")
    email = serializers.EmailField(required=False, help_text="Only where the caller may see this person's detail.")
    team = TeamRefSerializer(allow_null=True, help_text="Current team.")


class TotalsSerializer(serializers.Serializer):
    """The usage figures (usage.figures.TOTALS_COLUMNS, then cost and active days)."""

    nullable = False

    def get_fields(self):
        """The figures, then the fields a subclass declares (subclasses put them in their order)."""
        fields = {
            name: serializers.IntegerField(
                allow_null=self.nullable or name in UNREPORTED_FIGURES,
                help_text=METRIC_LABELS[name]
                + (". Null where no source of the usage reports it." if name in UNREPORTED_FIGURES else "."),
            )
            for name in TOTALS_COLUMNS
        }
        fields["cost_usd"] = serializers.DecimalField(
            **COST, required=False, help_text="US dollars; only where the caller's role may see cost."
        )
        fields["active_days"] = serializers.IntegerField(
            allow_null=self.nullable, help_text="Days with any usage in the window (summed over people for a team)."
        )
        for name in SHARE_METRICS:
            fields[name] = serializers.FloatField(allow_null=True, help_text=METRIC_DEFINITIONS[name])
        fields["cost_per_mtok"] = OmittableDecimalField(
            **COST, help_text=METRIC_DEFINITIONS["cost_per_mtok"] + " Cost rules apply."
        )
        fields["billed_equivalent_tokens"] = serializers.IntegerField(
            allow_null=self.nullable, help_text=METRIC_DEFINITIONS["billed_equivalent_tokens"]
        )
        return {**fields, **super().get_fields()}


class NullableTotalsSerializer(TotalsSerializer):
    """Team figures: null where the team has too few active members for the caller to see them."""

    nullable = True


class WindowSerializer(serializers.Serializer):
    period = serializers.CharField()
    start = serializers.DateField(help_text="First day, inclusive.")
    end = serializers.DateField(help_text="Last day, inclusive.")
    label = serializers.CharField()


class PersonStandingSerializer(TotalsSerializer):
    rank = serializers.IntegerField(help_text="Competition rank on the metric: ties share a rank (1, 1, 3).")
    previous_rank = serializers.IntegerField(
        allow_null=True, help_text="Rank in the previous window of the same size; null if absent then."
    )
    person = PersonRefSerializer()

    def get_fields(self):
        fields = super().get_fields()
        return {name: fields[name] for name in ("rank", "previous_rank", "person", *TotalsSerializer().get_fields())}


class TopPersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class TeamStandingSerializer(NullableTotalsSerializer):
    rank = serializers.IntegerField(help_text="Competition rank: ties share a rank.")
    previous_rank = serializers.IntegerField(allow_null=True)
    team = TeamRefSerializer()
    parent_id = serializers.IntegerField(allow_null=True)
    members = serializers.IntegerField(help_text="Current members of the team's subtree.")
    active_members = serializers.IntegerField(help_text="People with usage in the subtree during the window.")
    figures_visible = serializers.BooleanField(
        help_text="False when the team has fewer active members than the minimum the caller may see; "
        "then every figure is null (the team keeps its rank)."
    )
    per_member = NullableTotalsSerializer(
        help_text="The figures divided by active members; `per_capita=true` ranks on these."
    )
    top_person = TopPersonSerializer(allow_null=True, help_text="Largest contributor on the metric.")

    def get_fields(self):
        fields = super().get_fields()
        head = ("rank", "previous_rank", "team", "parent_id", "members", "active_members", "figures_visible")
        return {name: fields[name] for name in (*head, *TotalsSerializer().get_fields(), "per_member", "top_person")}


class IdentityRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField()
    label = serializers.CharField(allow_blank=True)


class OutcomeSerializer(serializers.Serializer):
    """What a source says the usage produced in the window (null: the source does not report that figure)."""

    source = serializers.CharField(help_text="`claude_code` or `cursor_daily_usage`.")
    label = serializers.CharField()
    commits = serializers.IntegerField(allow_null=True)
    pull_requests = serializers.IntegerField(allow_null=True)
    lines_added = serializers.IntegerField(allow_null=True)
    lines_accepted = serializers.IntegerField(allow_null=True)
    usage_days = serializers.IntegerField(help_text="Days with this provider's usage in the window.")
    covered_days = serializers.IntegerField(help_text="Of those, the days the source reported.")
    tokens = serializers.IntegerField(
        help_text="The ratio's numerator: the source's own usage (Claude Code), else the provider's tokens (Cursor)."
    )
    tokens_per_accepted_line = serializers.FloatField(
        allow_null=True, help_text="tokens ÷ lines_accepted; null unless the source covers every usage day."
    )
    cost_usd = serializers.DecimalField(**COST, required=False, help_text="Only where the caller sees cost.")
    cost_per_pull_request = OmittableDecimalField(
        max_digits=18,
        decimal_places=2,
        coerce_to_string=True,
        help_text="cost_usd ÷ pull_requests; only where the caller sees cost, null unless covered.",
    )


class PersonDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    email = serializers.EmailField(required=False, help_text="Only with detail rights.")
    team = TeamRefSerializer(allow_null=True)
    active = serializers.BooleanField()
    detail = serializers.BooleanField(help_text="Whether the caller sees this person's detail (cost, email, usage).")
    window = WindowSerializer()
    rank = serializers.IntegerField(allow_null=True, help_text="Rank among people for the window and metric.")
    totals = TotalsSerializer()
    identities = IdentityRefSerializer(many=True, required=False, help_text="Only with detail rights.")
    outcomes = OutcomeSerializer(many=True, help_text="Outcomes reported by sources, beside the tokens.")


class MemberSerializer(TotalsSerializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    email = serializers.EmailField()
    team = TeamRefSerializer()

    def get_fields(self):
        fields = super().get_fields()
        return {
            name: fields[name] for name in ("id", "display_name", "email", "team", *TotalsSerializer().get_fields())
        }


class TeamDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    parent = TeamRefSerializer(allow_null=True)
    children = TeamRefSerializer(many=True)
    detail = serializers.BooleanField(help_text="Whether the caller manages this team (or is an admin).")
    window = WindowSerializer()
    members = serializers.IntegerField(help_text="Current members of the subtree.")
    active_members = serializers.IntegerField()
    figures_visible = serializers.BooleanField()
    totals = NullableTotalsSerializer()
    shared_totals = NullableTotalsSerializer(
        help_text="The part of `totals` from the subtree's shared identities: the team's, no person's."
    )
    member_list = MemberSerializer(
        many=True, required=False, help_text="Current members of the subtree with their figures; detail only."
    )
    outcomes = OutcomeSerializer(many=True, help_text="The subtree's outcomes; empty when figures are hidden.")


class GroupSeriesSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Model or provider name.")
    total_tokens = serializers.IntegerField()
    share = serializers.FloatField(help_text="Share of the window's tokens, 0 to 1.")
    daily = serializers.ListField(child=serializers.IntegerField(), help_text="Total tokens per day, as `days`.")


class DailySerializer(TotalsSerializer):
    day = serializers.DateField()

    def get_fields(self):
        fields = super().get_fields()
        return {name: fields[name] for name in ("day", *TotalsSerializer().get_fields())}


class SeriesSerializer(serializers.Serializer):
    window = WindowSerializer()
    group_by = serializers.ChoiceField(choices=["model", "provider"])
    days = serializers.ListField(child=serializers.DateField())
    daily = DailySerializer(many=True, help_text="Every day of the window, zeros included.")
    groups = GroupSeriesSerializer(many=True, help_text="Largest first.")
    totals = TotalsSerializer()
    longest_streak = serializers.IntegerField(help_text="Longest run of consecutive active days.")


class SourceShareSerializer(serializers.Serializer):
    import_id = serializers.IntegerField(help_text="The import or pull (an admin opens it at /imports/{id}/).")
    source = serializers.CharField(help_text="The source's format name, e.g. anthropic_usage.")
    label = serializers.CharField(help_text="The source and how it arrived (upload, drop folder, API pull).")
    tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(**COST)
    cost_basis = serializers.CharField(help_text="billed, estimated, billed and estimated, or none.")
    counted = serializers.BooleanField(help_text="False where a preferred source reports the same use.")
    note = serializers.CharField(allow_blank=True)


class DayProvenanceSerializer(serializers.Serializer):
    day = serializers.DateField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    tokens = serializers.IntegerField(help_text="Tokens counted (equal to the day's figures on the board).")
    cost_usd = serializers.DecimalField(**COST, help_text="Cost counted.")
    cost_basis = serializers.CharField(help_text="billed, estimated, billed and estimated, or none.")
    sources = SourceShareSerializer(many=True)


class PersonSeriesSerializer(SeriesSerializer):
    person = PersonRefSerializer()
    provenance = DayProvenanceSerializer(
        many=True,
        help_text="Per day and provider (newest first): the imports and pulls that reported the usage, which "
        "of them count, and whether the cost is billed or estimated.",
    )


class TeamSeriesSerializer(SeriesSerializer):
    team = TeamRefSerializer()


class UsageRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    day = serializers.DateField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    account = serializers.CharField(allow_blank=True)
    identity = IdentityRefSerializer()
    person = TopPersonSerializer(allow_null=True, help_text="Null while the identity is unassigned.")
    model = serializers.CharField(allow_blank=True)
    usage_kind = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    requests = serializers.IntegerField(allow_null=True, help_text="Null: the source does not report requests.")
    cost_usd = serializers.DecimalField(**COST)
    cost_source = serializers.CharField()
    import_id = serializers.IntegerField(help_text="The import that last wrote this record.")


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="Line (or record) number in the file.")
    reason = serializers.CharField()


class ImportSerializer(serializers.ModelSerializer):
    period_start = serializers.DateField(allow_null=True, help_text="First day of usage in the file.")
    period_end = serializers.DateField(allow_null=True, help_text="Last day of usage in the file.")
    errors = ImportErrorSerializer(many=True, help_text="Rejected rows with their line numbers (first 1000).")
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True, read_only=True)
    summary = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportBatch
        fields = [
            "id",
            "status",
            "source",
            "original_name",
            "size_bytes",
            "sha256",
            "requested_format",
            "detected_format",
            "import_good_rows",
            "rows_total",
            "rows_read",
            "rows_imported",
            "rows_skipped",
            "rows_rejected",
            "records_written",
            "people_affected",
            "period_start",
            "period_end",
            "error_summary",
            "errors",
            "summary",
            "started_by",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "status_url",
            "dispatched_at",
            "exported_at",
            "scopes_superseded",
            "records_replaced",
            "replaced_imports",
        ]
        read_only_fields = fields

    def get_summary(self, batch) -> str:
        from usage.services.imports import import_summary

        return import_summary(batch)

    def get_status_url(self, batch) -> str:
        from django.urls import reverse

        path = reverse("api-v1:import-detail", args=[batch.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The export (csv, json, jsonl; gzip or zip accepted).")
    format = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=ImportBatch._meta.get_field("requested_format").max_length,
        help_text="Format name; empty = detect from the file.",
    )
    import_good_rows = serializers.BooleanField(
        required=False, default=False, help_text="Import the good rows of a file that has bad ones."
    )
    attribute_to = serializers.PrimaryKeyRelatedField(
        queryset=Person.objects.all(),
        required=False,
        allow_null=True,
        help_text="Person id the usage belongs to, for formats without an identity in the file.",
    )


class IdentitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField()
    label = serializers.CharField(allow_blank=True)
    owner_email = serializers.CharField(allow_blank=True, help_text="Owner email learned from a directory file.")
    owner_user_id = serializers.CharField(
        allow_blank=True, help_text="The provider's user id of its creator/owner; the identity follows that user."
    )
    attribution = serializers.ChoiceField(choices=IdentityAttribution.choices)
    shared_team = TeamRefSerializer(allow_null=True, help_text="The team a shared identity counts for.")
    person = TopPersonSerializer(allow_null=True)
    total_tokens = serializers.IntegerField(help_text="All-time tokens of this identity.")
    records = serializers.IntegerField(help_text="Daily usage records of this identity.")
    first_day = serializers.DateField(allow_null=True)
    last_day = serializers.DateField(allow_null=True)
    created_at = serializers.DateTimeField()


class IdentityAssignSerializer(serializers.Serializer):
    person = serializers.PrimaryKeyRelatedField(
        queryset=Person.objects.all(), allow_null=True, required=False, help_text="Person id, or null to unassign."
    )
    attribution = serializers.ChoiceField(
        choices=IdentityAttribution.choices,
        required=False,
        help_text="personal: counts for its person; shared: for `team`'s totals, no person's; service: no one's.",
    )
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(), allow_null=True, required=False, help_text="The team of a shared identity."
    )
    confirm = serializers.BooleanField(
        default=False,
        help_text="Assign to a person even though the identity holds more than 1% of the last 30 days' tokens "
        "(without it: 409 with the share).",
    )

    def validate(self, data):
        if "person" not in data and "attribution" not in data:
            raise serializers.ValidationError(
                {"person": "This field is required (a person id, or null), unless `attribution` is given."}
            )
        if data.get("attribution") == IdentityAttribution.SHARED and not data.get("team"):
            raise serializers.ValidationError({"team": "a shared identity counts for a team; give its id"})
        return data
