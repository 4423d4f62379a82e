"""The write side's data: org (teams, people, memberships), identities, imports and normalized usage."""

import hashlib
from datetime import date

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    CURSOR = "cursor", "Cursor"
    GOOGLE = "google", "Google Cloud"
    AWS_BEDROCK = "aws_bedrock", "AWS Bedrock"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    GITHUB_COPILOT = "github_copilot", "GitHub Copilot"
    OTHER = "other", "Other"


class Team(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    managers = models.ManyToManyField("Person", blank=True, related_name="managed_teams")

    class Meta:
        ordering = ["name"]
        constraints = [
            # Sibling names are unique so an org path like "Engineering/Platform" names exactly one team.
            models.UniqueConstraint(fields=["parent", "name"], name="team_unique_name_per_parent"),
            models.UniqueConstraint(fields=["name"], condition=Q(parent__isnull=True), name="team_unique_root_name"),
        ]

    def __str__(self) -> str:
        return self.name


def _pseudonym_for(seed: str) -> str:
    adjectives = [
        "Amber",
        "Brisk",
        "Calm",
        "Deft",
        "Eager",
        "Fleet",
        "Gentle",
        "Hardy",
        "Ivory",
        "Jolly",
        "Keen",
        "Lucid",
        "Mellow",
        "Nimble",
        "Quiet",
        "Rapid",
        "Steady",
        "Tidy",
        "Vivid",
        "Witty",
    ]
    animals = [
        "Otter",
        "Heron",
        "Lynx",
        "Badger",
        "Falcon",
        "Marten",
        "Ibex",
        "Koala",
        "Puffin",
        "Gecko",
        "Bison",
        "Crane",
        "Dingo",
        "Egret",
        "Ferret",
        "Gannet",
        "Hare",
        "Jackal",
        "Lemur",
        "Newt",
    ]
    digest = hashlib.sha256(seed.encode()).digest()
    return f"{adjectives[digest[0] % len(adjectives)]} {animals[digest[1] % len(animals)]} {digest[2] % 90 + 10}"


class Person(models.Model):
    email = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    show_name = models.BooleanField(default=True, help_text="Off: other engineers see a stable pseudonym.")
    # Fixed at creation so it stays stable when the name, email or SECRET_KEY change.
    pseudonym = models.CharField(max_length=60, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="person"
    )

    class Meta:
        ordering = ["display_name"]
        constraints = [models.UniqueConstraint(Lower("email"), name="person_unique_email_ci")]

    def __str__(self) -> str:
        return self.display_name

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        if not self.pseudonym:
            self.pseudonym = _pseudonym_for(self.email)
        super().save(*args, **kwargs)


class Membership(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="memberships")
    start = models.DateField()
    end = models.DateField(null=True, blank=True, help_text="Last day in the team; empty = current.")

    class Meta:
        ordering = ["person", "start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__isnull=True) | Q(end__gte=models.F("start")), name="membership_end_after_start"
            ),
            models.UniqueConstraint(
                fields=["person"], condition=Q(end__isnull=True), name="membership_one_current_per_person"
            ),
        ]
        indexes = [
            # "Which team was this person in on day D" — the join every team total makes.
            models.Index(fields=["person", "start", "end"], name="membership_person_dates"),
        ]

    def __str__(self) -> str:
        return f"{self.person} in {self.team} from {self.start}"


class IdentityKind(models.TextChoices):
    API_KEY = "api_key", "API key"
    USER_ID = "user_id", "User id"
    EMAIL = "email", "Email"
    PROJECT = "project", "Project"
    WORKSPACE = "workspace", "Workspace"
    TAG = "tag", "Tag"


class IdentityAttribution(models.TextChoices):
    """Whom an identity's usage counts for."""

    PERSONAL = "personal", "Personal"
    SHARED = "shared", "Shared (a team's)"
    SERVICE = "service", "Service (CI, batch)"


class Identity(models.Model):
    """How a provider names who used it; mapped to a Person by email, directory file or an admin."""

    provider = models.CharField(max_length=20, choices=Provider.choices)
    kind = models.CharField(max_length=20, choices=IdentityKind.choices)
    value = models.CharField(max_length=500)
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="identities")
    # A directory file (users / api keys list) may tell the owner's email before the person exists.
    owner_email = models.EmailField(blank=True)
    label = models.CharField(max_length=200, blank=True, help_text="Provider's name for it, e.g. the key name.")
    # The provider's user id of whoever created or owns this key, workspace or project (from a directory file):
    # once that user id is linked to a person, this identity follows (usage.services.identities).
    owner_user_id = models.CharField(max_length=200, blank=True)
    # Shared usage counts for `shared_team`'s totals and no person's; service usage (CI, batch) counts for no one.
    attribution = models.CharField(
        max_length=10, choices=IdentityAttribution.choices, default=IdentityAttribution.PERSONAL
    )
    shared_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="shared_identities"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["provider", "kind", "value"], name="identity_unique_natural_key"),
            models.CheckConstraint(
                condition=~Q(attribution="shared") | Q(shared_team__isnull=False), name="identity_shared_has_team"
            ),
        ]
        indexes = [
            models.Index(fields=["person"], name="identity_person"),
            models.Index(fields=["provider", "owner_user_id"], name="identity_owner_user"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.kind}:{self.value}"


class ImportSource(models.TextChoices):
    UPLOAD = "upload", "Upload"
    DROP_FOLDER = "drop_folder", "Drop folder"
    API = "api", "API pull"
    COMMAND = "command", "Command"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


def raw_upload_path(instance: "ImportBatch", filename: str) -> str:
    return f"imports/{date.today():%Y/%m}/{instance.sha256[:16]}-{filename}"


class ImportBatch(models.Model):
    source = models.CharField(max_length=20, choices=ImportSource.choices)
    original_name = models.CharField(max_length=255)
    raw_file = models.FileField(upload_to=raw_upload_path, max_length=500)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    requested_format = models.CharField(max_length=50, blank=True, help_text="Override of auto-detection.")
    detected_format = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=20, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    # Who runs it: the Celery task id (a redelivered message keeps its id and may resume) or a command's id.
    claim_id = models.CharField(max_length=64, blank=True)
    import_good_rows = models.BooleanField(default=False, help_text="Import the good rows of a file with bad ones.")
    # For formats with no identity in the file (ccusage): who the usage belongs to.
    attribute_to = models.ForeignKey(Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    connection = models.ForeignKey(
        "ProviderConnection", null=True, blank=True, on_delete=models.SET_NULL, related_name="imports"
    )
    rows_total = models.BigIntegerField(null=True, blank=True, help_text="Known once parsing starts, for progress.")
    rows_read = models.BigIntegerField(default=0)
    rows_imported = models.BigIntegerField(default=0)
    rows_skipped = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    records_written = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text='[{"line": 12, "reason": "..."}]')
    error_summary = models.TextField(blank=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    people_affected = models.IntegerField(default=0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Reliability (docs/architecture.md): a running import beats while its worker lives, so one whose worker
    # died is requeued by the sweep; dispatched_at is empty while no message has reached the broker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Runs started, including ones cut off.")
    # When the file says it was exported (where the format carries it); else the upload time orders exports.
    exported_at = models.DateTimeField(null=True, blank=True)
    scopes_superseded = models.IntegerField(
        default=0, help_text="Provider × account × day scopes not written because a newer export covers them."
    )
    # What this export replaced: records of its scopes that earlier exports had and it no longer has.
    records_replaced = models.BigIntegerField(default=0)
    replaced_imports = models.JSONField(default=list, blank=True, help_text="The imports those records came from.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"
        indexes = [models.Index(fields=["status", "-finished_at"], name="import_status_finished")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.original_name} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class CostSource(models.TextChoices):
    BILLED = "billed", "Billed"
    ESTIMATED = "estimated", "Estimated"
    NONE = "none", "None"


class UsageRecord(models.Model):
    """One normalized row of usage per natural key (day, provider, account, identity, model, usage kind)."""

    day = models.DateField()
    provider = models.CharField(max_length=20, choices=Provider.choices)
    account = models.CharField(max_length=255, blank=True)
    # No index of its own: usage_identity_day (identity, day) serves every lookup by identity, and each index is
    # written for every record an import stores (docs/PERFORMANCE.md, Ingest).
    identity = models.ForeignKey(Identity, on_delete=models.PROTECT, related_name="usage_records", db_index=False)
    model = models.CharField(max_length=200, blank=True)
    usage_kind = models.CharField(max_length=50, default="tokens")
    input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(null=True, blank=True, help_text="Empty: the source does not report requests.")
    cost_usd = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    cost_source = models.CharField(max_length=10, choices=CostSource.choices, default=CostSource.NONE)
    import_batch = models.ForeignKey(ImportBatch, on_delete=models.PROTECT, related_name="usage_records")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "provider", "account", "identity", "model", "usage_kind"],
                name="usage_unique_natural_key",
            ),
            models.CheckConstraint(
                condition=Q(
                    input_tokens__gte=0, cache_write_tokens__gte=0, cache_read_tokens__gte=0, output_tokens__gte=0
                ),
                name="usage_tokens_not_negative",
            ),
        ]
        indexes = [
            # Rankings: every window query filters on day, then groups by identity.
            models.Index(fields=["day", "identity"], name="usage_day_identity"),
            models.Index(fields=["identity", "day"], name="usage_identity_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.provider} {self.model} {self.total_tokens}"


class ModelPrice(models.Model):
    """List prices (USD per million tokens) used to estimate cost where a format has tokens but no cost."""

    provider = models.CharField(max_length=20, choices=Provider.choices)
    model_pattern = models.CharField(
        max_length=200, help_text="fnmatch pattern on the model name, e.g. claude-sonnet-4*"
    )
    effective_from = models.DateField(default=date(2024, 1, 1))
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cache_read_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cache_write_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)

    class Meta:
        ordering = ["provider", "model_pattern", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model_pattern", "effective_from"], name="price_unique_effective"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.model_pattern} from {self.effective_from}"


class CurrencyRate(models.Model):
    """Admin-set rate to convert a billing currency into USD; never silently treated as USD."""

    currency = models.CharField(max_length=3, unique=True)
    usd_per_unit = models.DecimalField(max_digits=18, decimal_places=8)

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.usd_per_unit} USD"


class ColumnMapping(models.Model):
    """A saved mapping of a generic CSV's columns onto the normalized fields, reused on later imports."""

    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.OTHER)
    # {"day": "Date", "identity": "User", "identity_kind": "email", "model": "Model", "input_tokens": "...", ...}
    columns = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ProviderConnection(models.Model):
    """A provider admin API that Tokenboard pulls usage from on a schedule."""

    provider = models.CharField(max_length=20, choices=Provider.choices)
    name = models.CharField(max_length=100, unique=True)
    encrypted_api_key = models.BinaryField(editable=False)
    base_url = models.URLField(blank=True, help_text="Empty = the provider's default.")
    schedule = models.CharField(max_length=100, default="0 * * * *", help_text="Cron expression (default hourly).")
    restatement_days = models.PositiveSmallIntegerField(default=3)
    enabled = models.BooleanField(default=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_rows_pulled = models.BigIntegerField(default=0)
    failing = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A personal API token; only its SHA-256 digest is stored, the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="token")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(help_text="The token stops working at this moment.")
    # Revoked tokens are kept (not deleted) so an API call with one can say so, and the audit trail can name it.
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} {self.prefix}…"

    def refusal(self, now) -> str:
        """Why the token no longer works ("" while it does)."""
        if self.revoked_at is not None:
            return f"This API token was revoked on {self.revoked_at:%Y-%m-%d %H:%M} UTC."
        if self.expires_at <= now:
            return f"This API token expired on {self.expires_at:%Y-%m-%d %H:%M} UTC; create a new one on your profile."
        return ""


# --- Read models --------------------------------------------------------------------------------------------
# Derived from UsageRecord (the source of truth) by usage.services.standings and rebuilt from it by
# `manage.py rebuild_rollups`. Nothing at request time aggregates UsageRecord: pages and the API read these.
# Their foreign keys carry no database constraint: the tables are rewritten in bulk, and a constraint check per
# row would double the refresh time for nothing the refresh does not already guarantee.


def _derived_fk(to: str, **kwargs) -> models.ForeignKey:
    return models.ForeignKey(to, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", **kwargs)


def _window_fk() -> models.ForeignKey:
    """A standings row's window. Not indexed alone: each table's first composite index leads with it. Every
    read of a standings table names its windows, so a standings row's person and team are not indexed alone
    either: such an index was written for every row of a refresh and read by nothing."""
    return models.ForeignKey(
        "StandingWindow", on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )


class UsageFigures(models.Model):
    """The summed figures of usage.figures.SUMMED_FIGURES."""

    input_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(null=True, blank=True, help_text="Empty: no source of it reports requests.")
    cost_usd = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    billed_cost_usd = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        abstract = True


class KeptFigures(UsageFigures):
    """A kept window's row: the figures summed over its days, and how many of those days count."""

    active_days = models.IntegerField(default=0)
    requests_reported_days = models.IntegerField(
        default=0,
        help_text="The row's days (a team's: its members' days) whose usage reports requests; none: requests is "
        "unknown. A refresh adds a day that stops reporting them as -1, not by recomputing the window.",
    )

    class Meta:
        abstract = True


class DailyRollup(UsageFigures):
    """Usage per day, provider, model and person, with the team whose membership covered that day. Unassigned
    usage keeps its identity (person empty) so admins still see it; so do shared identities (team set, person
    empty) and service identities (both empty). The model is the catalog's canonical name where an alias maps
    the exported spelling (ModelAlias), else the spelling as exported (family empty). A cost report counts only
    where a person owns its key, project or workspace (usage.services.standings.COST_REPORT_KIND)."""

    day = models.DateField()
    provider = models.CharField(max_length=20, choices=Provider.choices)
    model = models.CharField(max_length=200, blank=True)
    model_family = models.CharField(max_length=100, blank=True)
    # Their own indexes would repeat the first column of rollup_person_day and rollup_team_day.
    person = _derived_fk(Person, null=True, db_index=False)
    team = _derived_fk(Team, null=True, db_index=False)
    identity = _derived_fk(Identity, null=True, db_index=False, help_text="Only for unassigned usage.")

    class Meta:
        indexes = [
            # Refresh: replace a day. Model filters: the model is checked in the index, not row by row.
            models.Index(fields=["day", "model"], name="rollup_day_model"),
            models.Index(fields=["person", "day"], name="rollup_person_day"),  # a person's series and mixes
            models.Index(fields=["team", "day"], name="rollup_team_day"),  # a team's series and members
            # Unassigned usage only: an index of every row would hold tens of millions of empty entries.
            models.Index(fields=["identity"], name="rollup_identity", condition=models.Q(identity__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.provider} {self.model} person {self.person_id} {self.total_tokens}"


class StandingWindow(models.Model):
    """One window whose standings are kept: every calendar day, week, month, quarter and year with usage, all
    time and the rolling 7/30/90 days up to today (with their previous windows), for all providers
    (provider empty) and for each provider."""

    period = models.CharField(max_length=10)
    start = models.DateField()
    end = models.DateField()
    provider = models.CharField(max_length=20, blank=True)
    people = models.IntegerField(default=0, help_text="People ranked.")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["period", "start", "end", "provider"], name="standing_window_unique")
        ]
        # "Which stored windows contain this day" — what a refresh recomputes.
        indexes = [models.Index(fields=["start", "end"], name="standing_window_span")]

    def __str__(self) -> str:
        return f"{self.period} {self.start}–{self.end} {self.provider or 'all providers'}"


class TeamMemberStanding(KeptFigures):
    """A person's usage in a window counted for the team that covered each day (a mid-window move gives two
    rows). Team standings, the team filter and the team members table read it."""

    window = _window_fk()
    team = _derived_fk(Team, null=True, db_index=False)
    person = _derived_fk(Person, null=True, db_index=False, help_text="Empty: the team's shared identities.")

    class Meta:
        indexes = [
            # A team's members (window, team), and a refresh matching its changes to their rows.
            models.Index(fields=["window", "team", "person"], name="team_member_standing_key"),
            # A person's rows in each team (a refresh watching who can become a team's top person).
            models.Index(fields=["window", "person"], name="team_member_standing_person"),
        ]

    def __str__(self) -> str:
        return f"window {self.window_id} team {self.team_id} person {self.person_id}"


class StandingOrder(models.Model):
    """A kept window's board on one metric of usage.figures.KEPT_METRICS: each person with some of it and their
    total, in board order (the metric, then name, then id), packed as pairs of 8-byte big-endian integers
    (usage.services.standings.board_pairs). Rewritten whole by each refresh of the window: one person moving up
    moves every place they pass, so kept per person row a small import rewrote most of the window's rows
    (docs/PERFORMANCE.md)."""

    window = _window_fk()
    metric = models.CharField(max_length=40)
    board = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["window", "metric"], name="standing_order_unique")]

    def __str__(self) -> str:
        return f"window {self.window_id} {self.metric}"


class TeamStanding(KeptFigures):
    """A team subtree's totals in a window (usage of the days each person was in the subtree), its active
    members (people with usage counted for it) and its largest contributor on each metric of
    usage.figures.KEPT_METRICS (`top_<metric>`, a person id)."""

    window = _window_fk()
    team = _derived_fk(Team, db_index=False)
    active_members = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["window", "team"], name="team_standing_unique")]

    def __str__(self) -> str:
        return f"window {self.window_id} team {self.team_id}"


class StandingsDirtyDay(models.Model):
    """A day whose usage changed since the standings were last refreshed; written in the same transaction as
    the change, so a refresh can never miss it. Not `whole`: only the usage of the identities marked for the day
    (StandingsDirtyIdentity) changed, as after an import of a few people's days."""

    day = models.DateField(unique=True)
    marked_at = models.DateTimeField()
    whole = models.BooleanField(default=True)

    def __str__(self) -> str:
        return str(self.day)


class StandingsDirtyIdentity(models.Model):
    """An identity whose usage of a day changed (a day marked not `whole`): the refresh rewrites only the rollups
    of its person (or of the identity itself, when no person counts it) for the day. Not a foreign key: the marks
    outlive nothing they name."""

    day = models.DateField()
    identity_id = models.BigIntegerField()
    marked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "identity_id"], name="dirty_identity_day")]

    def __str__(self) -> str:
        return f"identity {self.identity_id} on {self.day}"


class StandingsDirtyPerson(models.Model):
    """A person whose name, teams or identities changed since the standings were last refreshed: their place on
    the kept boards is found again even where their figures did not change (a new name reorders a tie). Their
    days are marked too (StandingsDirtyDay). Not a foreign key: a deleted person is marked as well."""

    person_id = models.BigIntegerField(unique=True)
    marked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"person {self.person_id}"


class StandingsState(models.Model):
    """The one row that says how current the standings are. Its row lock serializes refreshes."""

    refreshed_at = models.DateTimeField(null=True, blank=True, help_text="Last refresh that completed.")
    rolled_on = models.DateField(null=True, blank=True, help_text="The day the rolling windows end on.")
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    generation = models.UUIDField(
        null=True,
        blank=True,
        help_text="New at every refresh: a cached answer of the standings keys on it (unlike a count or a time, "
        "no other standings ever had it: not a restored backup's, nor another database's sharing the cache).",
    )
    rebuild_requested = models.BooleanField(
        default=False,
        help_text="A migration changed what the standings keep: the next refresh rebuilds them whole "
        "(as rebuild_rollups does), the standings before it serving meanwhile.",
    )

    def __str__(self) -> str:
        return f"standings as of {self.refreshed_at}"


def _add_top_columns() -> None:
    # Declared from usage.figures.KEPT_METRICS, so keeping another metric's order adds its columns.
    from usage.figures import KEPT_METRICS

    for metric in KEPT_METRICS:
        TeamStanding.add_to_class(f"top_{metric}", models.BigIntegerField(null=True))


_add_top_columns()


# --- Source precedence (one count per use) ---------------------------------------------------------------------


class SourcePrecedence(models.Model):
    """Two sources that describe the same usage: where both report a person's use of the provider on a day,
    only `preferred` counts. Sources are format names (an import's detected format). Applied when the daily
    rollups are written, so changing a rule changes no stored usage record."""

    provider = models.CharField(max_length=20, choices=Provider.choices)
    preferred = models.CharField(max_length=60, help_text="The source that counts.")
    over = models.CharField(max_length=60, help_text="The source it replaces where both report the same usage.")
    usage_kind = models.CharField(
        max_length=50, blank=True, help_text="Only the replaced source's rows of this usage kind; empty = all."
    )
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["provider", "preferred", "over"]
        verbose_name_plural = "source precedence"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "preferred", "over", "usage_kind"], name="source_precedence_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.preferred} over {self.over}"


# --- Audit trail (issue 11) ----------------------------------------------------------------------------------
# One append-only table for everything the audit trail records. django-auditlog writes the model changes into it
# (AUDITLOG_LOGENTRY_MODEL; registrations in usage.audit), usage.services.audit the events that are no model
# change (logins, exports, uploads, tokens...).


class AuditQuerySet(models.QuerySet):
    """Append-only: rows are never changed or deleted through the ORM, except by the retention purge."""

    def update(self, **kwargs):
        raise PermissionError("The audit trail is append-only.")

    def delete(self):
        raise PermissionError("The audit trail is append-only; old entries go by TOKENBOARD_AUDIT_RETENTION_DAYS.")

    def purge(self) -> int:
        """Delete these entries: only usage.services.audit.audit_purge calls this, for retention."""
        return super().delete()[0]


class AuditEntryManager(LogEntryManager.from_queryset(AuditQuerySet)):
    pass


class AuditEntry(AbstractLogEntry):
    """Who did what, when and from where. `event` names it ("login.failed", "export", "identity.assign"...);
    `changes` holds a model change's fields ({field: [old, new]}), `additional_data` an event's details."""

    event = models.CharField(max_length=60, db_index=True)
    # Events that are no model change (a failed login, an export) have no object.
    content_type = models.ForeignKey(
        "contenttypes.ContentType", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AuditEntryManager()

    class Meta(AbstractLogEntry.Meta):
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        indexes = [models.Index(fields=["event", "-timestamp"], name="audit_event_time")]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("The audit trail is append-only.")
        if not self.event:
            from usage.audit import model_event

            self.event = model_event(self)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit trail is append-only.")


# --- Model catalog (issue 10) ----------------------------------------------------------------------------------
# Sources spell one model many ways ("Claude Sonnet 4.5", "claude-4.5-sonnet-thinking",
# "claude-sonnet-4-5-20250929"); the rollups (usage.services.standings) count each under its canonical model.
# Changing the catalog changes no UsageRecord: it marks the days whose usage it renames (usage.services.catalog).


class CatalogModel(models.Model):
    """A canonical model, e.g. "Claude Sonnet 4.5" of the family "Claude Sonnet" by Anthropic."""

    name = models.CharField(max_length=200, unique=True)
    family = models.CharField(max_length=100)
    vendor = models.CharField(max_length=100)

    class Meta:
        ordering = ["vendor", "family", "name"]

    def __str__(self) -> str:
        return self.name


class ModelAlias(models.Model):
    """One spelling a source uses for a catalog model, matched case-insensitively (stored lower-cased). Every
    model's own name is one of its aliases."""

    spelling = models.CharField(max_length=200, unique=True)
    model = models.ForeignKey(CatalogModel, on_delete=models.PROTECT, related_name="aliases")

    class Meta:
        ordering = ["spelling"]
        verbose_name_plural = "model aliases"

    def __str__(self) -> str:
        return f"{self.spelling} → {self.model}"

    def save(self, *args, **kwargs):
        self.spelling = self.spelling.strip().lower()
        super().save(*args, **kwargs)


# --- Allowances, budgets, alerts and digests (issue 13) -------------------------------------------------------


class BudgetPeriod(models.TextChoices):
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"


def _budget_constraints(prefix: str) -> list:
    return [
        models.CheckConstraint(
            condition=Q(tokens__isnull=False) | Q(usd__isnull=False), name=f"{prefix}_tokens_or_usd"
        ),
        models.CheckConstraint(
            condition=Q(tokens__isnull=True) | Q(tokens__gte=0), name=f"{prefix}_tokens_not_negative"
        ),
        models.CheckConstraint(condition=Q(usd__isnull=True) | Q(usd__gte=0), name=f"{prefix}_usd_not_negative"),
        models.CheckConstraint(
            condition=Q(end__isnull=True) | Q(end__gte=models.F("start")), name=f"{prefix}_end_after_start"
        ),
    ]


class Allowance(models.Model):
    """What a person may use per period, in tokens and/or USD, effective-dated like memberships. On a person it
    is an override; on a team it is the default of everyone in its subtree without a nearer one
    (usage.services.budgets.allowances_on)."""

    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.CASCADE, related_name="allowances")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="allowances")
    period = models.CharField(max_length=10, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    tokens = models.BigIntegerField(null=True, blank=True)
    usd = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    start = models.DateField()
    end = models.DateField(null=True, blank=True, help_text="Last day it applies; empty = current.")

    class Meta:
        ordering = ["start"]
        constraints = [
            *_budget_constraints("allowance"),
            models.CheckConstraint(
                condition=Q(person__isnull=True, team__isnull=False) | Q(person__isnull=False, team__isnull=True),
                name="allowance_person_xor_team",
            ),
        ]

    def __str__(self) -> str:
        return f"allowance of {self.person or self.team} from {self.start}"


class TeamBudget(models.Model):
    """A team subtree's budget per period, with the percentages at which its managers are alerted and an
    optional Slack incoming webhook (encrypted at rest like provider keys: anyone holding it can post)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="budgets")
    period = models.CharField(max_length=10, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    tokens = models.BigIntegerField(null=True, blank=True)
    usd = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    thresholds = models.JSONField(default=list, blank=True, help_text="Percentages, e.g. [50, 80, 100].")
    encrypted_slack_webhook = models.BinaryField(blank=True, default=b"", editable=False)
    start = models.DateField()
    end = models.DateField(null=True, blank=True, help_text="Last day it applies; empty = current.")

    class Meta:
        ordering = ["team", "start"]
        constraints = _budget_constraints("team_budget")

    def __str__(self) -> str:
        return f"budget of {self.team} from {self.start}"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    # Crossed together with a higher threshold: recorded (so it never fires later) but only the higher one is sent.
    SUPERSEDED = "superseded", "Superseded"


class Notification(models.Model):
    """One alert or digest to one recipient, written before it is sent. Its natural key (channel, recipient,
    subject, trigger, period) is unique, so a re-run or a retried task never sends the same thing twice."""

    channel = models.CharField(max_length=10, choices=[("email", "Email"), ("slack", "Slack")])
    recipient = models.CharField(max_length=254, help_text="An email address, or the team's Slack channel.")
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject_kind = models.CharField(
        max_length=10, choices=[("person", "Person"), ("team", "Team"), ("digest", "Digest")]
    )
    subject_id = models.BigIntegerField()
    trigger = models.CharField(max_length=20, help_text="A threshold percentage, 'forecast' or 'weekly'.")
    period_start = models.DateField()
    title = models.CharField(max_length=300)
    reason = models.TextField()
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "recipient", "subject_kind", "subject_id", "trigger", "period_start"],
                name="notification_once_per_period",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.recipient}: {self.title} ({self.status})"


class NotificationPreference(models.Model):
    """A person's choice about the weekly digest (budget alerts to managers cannot be turned off)."""

    person = models.OneToOneField(Person, on_delete=models.CASCADE, related_name="notification_preference")
    weekly_digest = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.person}: digest {'on' if self.weekly_digest else 'off'}"


# --- Fair play (issue 14): hourly shape, anomaly holds, outcomes ----------------------------------------------


class UsageHour(models.Model):
    """One identity's usage in one org-local hour, where the source has timestamps (Cursor events, LiteLLM
    logs): the day's hourly shape that the anomaly rules and the review page read. Written with the usage, in
    the import's transaction; a re-import replaces the hours it covers."""

    # One index, the natural key as the primary key: it serves the reads (a range of days; an identity's day), and
    # an import writes about one hour per row of an hourly export, each index costing a share of it (a surrogate
    # id and its index were a quarter of the merge: docs/PERFORMANCE.md, Ingest). No database foreign key either:
    # its check per row was 40 % of a million hours' merge. The import checks and locks each of its identities once
    # instead (usage.services.outcomes.hour_identities_lock), and PROTECT guards deletes.
    pk = models.CompositePrimaryKey("day", "identity", "hour", "model")
    identity = models.ForeignKey(
        Identity, on_delete=models.PROTECT, related_name="usage_hours", db_index=False, db_constraint=False
    )
    day = models.DateField()
    hour = models.PositiveSmallIntegerField()  # 0–23, org-local
    model = models.CharField(max_length=200, blank=True)
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(hour__lte=23), name="usage_hour_in_day")]

    def __str__(self) -> str:
        return f"{self.identity_id} {self.day} {self.hour:02d}h {self.total_tokens}"


class HoldStatus(models.TextChoices):
    HELD = "held", "Held for review"
    CLEARED = "cleared", "Cleared: counts"
    CONFIRMED = "confirmed", "Confirmed: excluded"


class UsageHold(models.Model):
    """A (person, day) whose usage looked like a loop (usage.services.anomalies). Held and confirmed days are
    left out of the rollups, so out of every ranking and title; a cleared day counts again."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="usage_holds")
    day = models.DateField()
    status = models.CharField(max_length=10, choices=HoldStatus.choices, default=HoldStatus.HELD)
    rules = models.JSONField(default=list, help_text="The rules that fired.")
    evidence = models.JSONField(default=dict, help_text="The day's figures, baseline and hourly shape.")
    person_note = models.TextField(blank=True)
    person_note_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day", "person"]
        constraints = [models.UniqueConstraint(fields=["person", "day"], name="usage_hold_unique")]
        indexes = [models.Index(fields=["status", "-day"], name="usage_hold_status_day")]

    def __str__(self) -> str:
        return f"{self.person} {self.day} {self.status}"


class HoldDecision(models.Model):
    """Every decision on a hold, with who and when (the hold keeps only the latest)."""

    hold = models.ForeignKey(UsageHold, on_delete=models.CASCADE, related_name="decisions")
    status = models.CharField(max_length=10, choices=HoldStatus.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField()
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["decided_at"]

    def __str__(self) -> str:
        return f"hold {self.hold_id} {self.status} at {self.decided_at}"


class OutcomeRecord(models.Model):
    """What a source says the usage produced, per identity and day: Claude Code analytics (commits, pull
    requests, lines added — its accepted edits) and Cursor's daily usage (lines added and accepted). A figure
    the source does not report is empty, never 0."""

    day = models.DateField()
    provider = models.CharField(max_length=20, choices=Provider.choices)
    source = models.CharField(max_length=30, help_text="The format that reported it, e.g. claude_code.")
    identity = models.ForeignKey(Identity, on_delete=models.PROTECT, related_name="outcomes")
    commits = models.BigIntegerField(null=True, blank=True)
    pull_requests = models.BigIntegerField(null=True, blank=True)
    lines_added = models.BigIntegerField(null=True, blank=True)
    lines_accepted = models.BigIntegerField(null=True, blank=True)
    # The source's own usage behind these outcomes (Claude Code analytics); empty where it has none (Cursor).
    tokens = models.BigIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    import_batch = models.ForeignKey(ImportBatch, on_delete=models.PROTECT, related_name="outcome_records")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "provider", "source", "identity"], name="outcome_unique_key")
        ]
        indexes = [models.Index(fields=["identity", "day"], name="outcome_identity_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.source} {self.identity_id}"
