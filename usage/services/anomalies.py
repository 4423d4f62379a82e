"""Anomaly review: flag the (person, day)s whose usage looks like a loop rather than work, and hold them.

Four rules (settings.TOKENBOARD_ANOMALY_RULES; docs/admin-guide.md, Anomaly review):

- baseline: the day is far above the person's own history (robust z-score: median and MAD of their active
  days in the `history_days` before it, with at least `min_history_days` of them);
- cadence: one identity's requests spread near-evenly around the clock (at least `min_active_hours` hours
  with requests and a coefficient of variation of its 24 hourly counts at most `max_variation`), where the
  source has hours (an hour with tokens but no request count counts as one request);
- input_without_output: at least `min_prompt_tokens` prompt tokens with output at most `max_output_share`
  of the day's tokens;
- lone_key: one API key carries at least `min_share` of the day's tokens and runs at least `min_active_hours`
  hours while the person's other identities are idle.

A day is held when at least `min_rules` of the enabled rules fire: a genuine heavy day (above baseline, normal
shape) is not held. The standings refresh calls `anomalies_flag` on its dirty days before it writes their
rollups, so a held day never reaches a ranking; held and confirmed days stay out of the rollups
(usage.services.standings._rollups_rewrite) until an admin clears them (usage.services.review).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import ExpressionWrapper, F, FloatField, QuerySet, Sum

from usage.figures import COST_REPORT_KIND
from usage.models import HoldDecision, HoldStatus, Identity, IdentityKind, UsageHold, UsageHour, UsageRecord
from usage.periods import day_ranges
from usage.services.planner import sorted_grouping

logger = logging.getLogger(__name__)

RULES = ("baseline", "cadence", "input_without_output", "lone_key")
RULE_LABELS = {
    "baseline": "Far above the person's own baseline",
    "cadence": "Near-constant request cadence around the clock",
    "input_without_output": "Very high input with almost no output",
    "lone_key": "One API key burning while the person is otherwise idle",
}
MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation per median absolute deviation


# --- Settings that would fire on everyone or no one are refused ----------------------------------------------


def anomaly_settings_problems(rules: dict) -> list[str]:
    """What is wrong with TOKENBOARD_ANOMALY_RULES, one message per problem ([] when usable). Reported by the
    system check usage.E014 (usage.checks), so `manage.py check`, `migrate` and `runserver` refuse them."""
    problems = []
    enabled = rules.get("enabled", [])
    unknown = [name for name in enabled if name not in RULES]
    if unknown:
        problems.append(f"enabled: unknown rule(s) {', '.join(map(str, unknown))}; the rules are {', '.join(RULES)}")
    if not enabled:
        problems.append("enabled: no rule is enabled, so no day would ever be held")
    min_rules = rules.get("min_rules")
    if not isinstance(min_rules, int) or not 1 <= min_rules <= max(len(enabled), 1):
        problems.append(
            f"min_rules={min_rules!r}: must be 1 to {len(enabled)} (the enabled rules); 0 would hold every day "
            "with usage and more than the enabled rules would hold none"
        )

    def check(rule: str, key: str, low, high, why: str) -> None:
        value = rules.get(rule, {}).get(key)
        if not isinstance(value, (int, float)) or not low <= value <= high:
            problems.append(f"{rule}.{key}={value!r}: must be from {low} to {high}; {why}")

    if "baseline" in enabled:
        check("baseline", "z_threshold", 1, 1000, "below 1 it fires on about every day above the median")
        check("baseline", "min_history_days", 3, 365, "fewer days make no baseline")
        history, needed = rules["baseline"].get("history_days"), rules["baseline"].get("min_history_days")
        check("baseline", "history_days", 3, 3650, "the history the baseline is taken from")
        if isinstance(history, int) and isinstance(needed, int) and needed > history:
            problems.append(
                f"baseline.min_history_days={needed} is more than history_days={history}: it would never fire"
            )
    if "cadence" in enabled:
        check("cadence", "min_active_hours", 12, 24, "fewer hours fire on a long working day; more than 24 on none")
        check("cadence", "max_variation", 0.01, 1.0, "0 fires on no one, above 1 on nearly any day with hours")
    if "input_without_output" in enabled:
        check("input_without_output", "min_prompt_tokens", 1000, 10**15, "a small floor fires on tiny quiet days")
        check("input_without_output", "max_output_share", 0.0001, 0.2, "a high share fires on ordinary work")
    if "lone_key" in enabled:
        check("lone_key", "min_share", 0.5, 1.0, "below half, a key is not alone")
        check("lone_key", "min_active_hours", 8, 24, "fewer hours fire on a working day; more than 24 on none")
    return problems


# --- Detection -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourlyShape:
    """One identity's requests per org-local hour on a day, as the cadence and lone-key rules read them: the
    hours that had any, and the sum and the sum of squares of the 24 counts. Summed in the database: a month of
    an import's hours is up to a million rows, too many to read back one by one."""

    active_hours: int
    requests: int
    squares: int

    def variation(self) -> float:
        """The coefficient of variation of the 24 hourly counts (population standard deviation over the mean):
        √(24·Σn² − (Σn)²) / Σn, in integers under the root, so it is exact."""
        if not self.requests:
            return math.inf
        return math.sqrt(24 * self.squares - self.requests**2) / self.requests


@dataclass
class PersonDay:
    """One person's usage on one day, as the rules read it."""

    person_id: int
    day: date
    total_tokens: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    by_identity: dict[int, int] = field(default_factory=dict)  # identity id → tokens
    hours_by_identity: dict[int, HourlyShape] = field(default_factory=dict)  # the identities whose source has hours

    def active_hours(self, identity_id: int) -> int:
        shape = self.hours_by_identity.get(identity_id)
        return shape.active_hours if shape else 0

    def busiest_with_hours(self) -> int | None:
        """The identity with hours that used the most tokens."""
        if not self.hours_by_identity:
            return None
        return max(self.hours_by_identity, key=lambda i: (self.by_identity.get(i, 0), -i))


def _candidates(days: set[date], rules: dict) -> set[tuple[int, date]] | None:
    """The (person, day)s on which enough rules could fire to hold them, found in two grouped queries so a
    rebuild does not read every person's every day: the baseline can fire on any day, the hourly rules only
    where a source has hours, the output rule only on days with enough quiet input. None: any day could."""
    enabled = set(rules["enabled"])
    always = 1 if "baseline" in enabled else 0
    if always >= rules["min_rules"]:
        return None
    hour_rules = len(enabled & {"cadence", "lone_key"})
    with_hours: set[tuple[int, date]] = set()
    quiet: set[tuple[int, date]] = set()
    for first, last in day_ranges(days):
        if hour_rules:
            with_hours |= set(
                UsageHour.objects.filter(day__range=(first, last), identity__person__isnull=False)
                .values_list("identity__person_id", "day")
                .distinct()
            )
        if "input_without_output" in enabled:
            config = rules["input_without_output"]
            sums = (
                UsageRecord.objects.filter(day__range=(first, last), identity__person__isnull=False)
                .exclude(usage_kind=COST_REPORT_KIND)
                .values("day", "identity__person_id")
                .annotate(
                    prompt=Sum(F("input_tokens") + F("cache_read_tokens") + F("cache_write_tokens")),
                    output=Sum("output_tokens"),
                    total=Sum("total_tokens"),
                )
                # Both tests in SQL: most heavy (person, day)s pass the first, and reading them all back held
                # 4 GB in a rebuild at 85,000 people × 120 days.
                .filter(
                    prompt__gte=config["min_prompt_tokens"],
                    output__lte=ExpressionWrapper(F("total") * config["max_output_share"], output_field=FloatField()),
                )
            )
            # Grouped by sorting, the day first: a rebuild's half-year of (person, day)s hashed spilled 1 GB in 17
            # batches, 27.0 s against 19.5 s sorted at 85,000 people (docs/PERFORMANCE.md).
            with sorted_grouping():
                quiet |= {(row["identity__person_id"], row["day"]) for row in sums}
    return {
        key
        for key in with_hours | quiet
        if always + (hour_rules if key in with_hours else 0) + (key in quiet) >= rules["min_rules"]
    }


def _person_days(
    days: set[date], candidates: set[tuple[int, date]] | None, people: set[int] | None
) -> dict[tuple[int, date], PersonDay]:
    found: dict[tuple[int, date], PersonDay] = {}
    if candidates is not None:
        people = {pid for pid, _day in candidates}
    for first, last in day_ranges(days):
        records = UsageRecord.objects.filter(day__range=(first, last), identity__person__isnull=False)
        if people is not None:
            records = records.filter(identity__person_id__in=people)
        rows = (
            records.exclude(usage_kind=COST_REPORT_KIND)
            .values("identity__person_id", "identity_id", "day")
            .annotate(
                total=Sum("total_tokens"),
                input=Sum("input_tokens"),
                cache_read=Sum("cache_read_tokens"),
                cache_write=Sum("cache_write_tokens"),
                output=Sum("output_tokens"),
                requests=Sum("requests"),
            )
        )
        for row in rows:
            key = (row["identity__person_id"], row["day"])
            if candidates is not None and key not in candidates:
                continue
            figures = found.setdefault(key, PersonDay(*key))
            figures.total_tokens += row["total"]
            figures.prompt_tokens += row["input"] + row["cache_read"] + row["cache_write"]
            figures.output_tokens += row["output"]
            figures.requests += row["requests"] or 0  # known requests (None: not reported)
            figures.by_identity[row["identity_id"]] = figures.by_identity.get(row["identity_id"], 0) + row["total"]
        for person_id, identity_id, day, shape in _hourly_shapes(first, last, people):
            figures = found.get((person_id, day))
            if figures is not None:
                figures.hours_by_identity[identity_id] = shape
    return found


# An hour's count: its requests, or 1 where it has tokens but its source counts no requests.
HOUR_COUNT = "CASE WHEN COALESCE(requests, 0) <> 0 THEN requests WHEN tokens <> 0 THEN 1 ELSE 0 END"


def _hour_counts_sql(hours: QuerySet) -> tuple[str, list]:
    """SQL and parameters of (person, identity_id, day, hour, n): each of the hours' counts (HOUR_COUNT), summed
    over models."""
    per_hour = hours.values("identity_id", "day", "hour").annotate(
        person=F("identity__person_id"), requests=Sum("requests"), tokens=Sum("total_tokens")
    )
    sql, params = per_hour.query.sql_with_params()
    return f"SELECT person, identity_id, day, hour, {HOUR_COUNT} AS n FROM ({sql}) per_hour", list(params)


def _hourly_shapes(first: date, last: date, people: set[int] | None) -> Iterator[tuple[int, int, date, HourlyShape]]:
    """(person, identity, day, shape) of the identities with hours between the dates (those of `people`)."""
    hours = UsageHour.objects.filter(day__range=(first, last), identity__person__isnull=False)
    if people is not None:
        hours = hours.filter(identity__person_id__in=people)
    counts, params = _hour_counts_sql(hours)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT person, identity_id, day, SUM(CASE WHEN n > 0 THEN 1 ELSE 0 END), SUM(n), SUM(n * n)
            FROM ({counts}) counted GROUP BY person, identity_id, day
            """,
            params,
        )
        day_field = UsageHour._meta.get_field("day")  # a raw cursor's dates are strings on SQLite
        for person_id, identity_id, day, active, requests, squares in cursor.fetchall():
            yield (
                person_id,
                identity_id,
                day_field.to_python(day),
                HourlyShape(int(active), int(requests), int(squares)),
            )


def _hourly(identity_id: int, day: date) -> list[int]:
    """The identity's 24 hourly counts on the day (a hold's evidence)."""
    counts, params = _hour_counts_sql(UsageHour.objects.filter(identity_id=identity_id, day=day))
    hourly = [0] * 24
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT hour, n FROM ({counts}) counted", params)
        for hour, count in cursor.fetchall():
            hourly[hour] = int(count)
    return hourly


def _history(person_ids: set[int], first: date, last: date) -> dict[int, dict[date, int]]:
    """Each person's daily tokens between the dates, their held and confirmed days left out."""
    history: dict[int, dict[date, int]] = defaultdict(dict)
    rows = (
        UsageRecord.objects.filter(day__range=(first, last), identity__person_id__in=person_ids)
        .exclude(usage_kind=COST_REPORT_KIND)
        .values("identity__person_id", "day")
        .annotate(total=Sum("total_tokens"))
    )
    for row in rows:
        history[row["identity__person_id"]][row["day"]] = row["total"]
    excluded = UsageHold.objects.filter(
        person_id__in=person_ids, day__range=(first, last), status__in=(HoldStatus.HELD, HoldStatus.CONFIRMED)
    ).values_list("person_id", "day")
    for person_id, day in excluded:
        history[person_id].pop(day, None)
    return history


def robust_z(value: float, history: list[float]) -> tuple[float, float, float]:
    """(z, median, MAD) of value against the history: (value − median) / (1.4826 × MAD). A flat history (MAD 0)
    is scaled by a tenth of its median instead, so a tenfold day still stands out."""
    median = statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history)
    scale = MAD_TO_SIGMA * mad or max(median * 0.1, 1.0)
    return (value - median) / scale, median, mad


def _fired(figures: PersonDay, history: dict[date, int], kinds: dict[int, str], rules: dict) -> dict[str, str]:
    """The rules that fire on the day, each with what made it fire (readable, for the review page)."""
    enabled = set(rules["enabled"])
    fired = {}
    if "baseline" in enabled:
        config = rules["baseline"]
        since = figures.day - timedelta(days=config["history_days"])
        past = [tokens for day, tokens in history.items() if since <= day < figures.day and tokens > 0]
        if len(past) >= config["min_history_days"]:
            z, median, _mad = robust_z(figures.total_tokens, past)
            if z >= config["z_threshold"]:
                fired["baseline"] = (
                    f"robust z-score {z:.1f} against a median of {median:,.0f} tokens over {len(past)} days"
                )
    if "cadence" in enabled:
        config = rules["cadence"]
        for _identity_id, shape in sorted(figures.hours_by_identity.items()):
            variation = shape.variation()
            if shape.active_hours >= config["min_active_hours"] and variation <= config["max_variation"]:
                fired["cadence"] = (
                    f"one identity had requests in {shape.active_hours} of 24 hours, variation {variation:.2f}"
                )
                break
    if "input_without_output" in enabled:
        config = rules["input_without_output"]
        share = figures.output_tokens / figures.total_tokens if figures.total_tokens else 0.0
        if figures.prompt_tokens >= config["min_prompt_tokens"] and share <= config["max_output_share"]:
            fired["input_without_output"] = f"{figures.prompt_tokens:,} prompt tokens, output {share:.3%} of tokens"
    if "lone_key" in enabled and figures.total_tokens:
        config = rules["lone_key"]
        identity_id, tokens = max(figures.by_identity.items(), key=lambda item: (item[1], -item[0]))
        share = tokens / figures.total_tokens
        hours = figures.active_hours(identity_id)
        others_idle = all(figures.active_hours(i) == 0 for i in figures.hours_by_identity if i != identity_id)
        if (
            kinds.get(identity_id) == IdentityKind.API_KEY
            and share >= config["min_share"]
            and hours >= config["min_active_hours"]
            and others_idle
        ):
            fired["lone_key"] = f"one API key had {share:.0%} of the tokens over {hours} hours"
    return fired


def anomalies_flag(days: Iterable[date], people: set[int] | None = None) -> list[UsageHold]:
    """Check every (person, day) with usage on the days that has no hold yet (only those of `people`, when given),
    and hold those on which at least `min_rules` rules fire. Run by the standings refresh, inside its transaction,
    before the days' rollups are written. Decided holds are never reopened here: an admin's decision stands."""
    days = set(days)
    rules = settings.TOKENBOARD_ANOMALY_RULES
    if not days or not rules.get("enabled") or people is not None and not people:
        return []
    # Some people's days (an import's) are read whole: narrowing them first read as much again, since the
    # identities an import changed are the ones with hours (2.4 s of 8 for 500 people's 31 days at 85,000 people).
    candidates = _candidates(days, rules) if people is None else None
    if candidates is not None and not candidates:
        return []
    person_days = _person_days(days, candidates, people)
    already = set(
        UsageHold.objects.filter(day__in=days, person_id__in={pid for pid, _day in person_days}).values_list(
            "person_id", "day"
        )
    )
    unheld = {key: figures for key, figures in person_days.items() if key not in already}
    if not unheld:
        return []
    reach = timedelta(days=rules["baseline"]["history_days"])
    history = _history({pid for pid, _day in unheld}, min(days) - reach, max(days))
    identity_ids = {i for figures in unheld.values() for i in figures.by_identity}
    kinds, labels = {}, {}
    for pk, kind, label, value in Identity.objects.filter(pk__in=identity_ids).values_list(
        "pk", "kind", "label", "value"
    ):
        kinds[pk], labels[pk] = kind, f"{label or value} ({kind})"
    holds = []
    for (person_id, day), figures in sorted(unheld.items(), key=lambda item: (item[0][1], item[0][0])):
        fired = _fired(figures, history.get(person_id, {}), kinds, rules)
        if len(fired) < rules["min_rules"]:
            continue
        since = day - reach
        past = sorted(t for d, t in history.get(person_id, {}).items() if since <= d < day and t > 0)
        busiest = figures.busiest_with_hours()
        holds.append(
            UsageHold(
                person_id=person_id,
                day=day,
                rules=sorted(fired),
                evidence={
                    "fired": fired,
                    "total_tokens": figures.total_tokens,
                    "prompt_tokens": figures.prompt_tokens,
                    "output_tokens": figures.output_tokens,
                    "requests": figures.requests,
                    # The hourly shape of the busiest identity with hours, and which one it is.
                    "hourly": _hourly(busiest, day) if busiest else None,
                    "hourly_identity": labels.get(busiest, "") if busiest else "",
                    "baseline_median": statistics.median(past) if past else None,
                    "baseline_days": len(past),
                    "identities": [
                        {"id": i, "label": labels.get(i, str(i)), "tokens": t}
                        for i, t in sorted(figures.by_identity.items(), key=lambda item: -item[1])
                    ],
                },
            )
        )
    if not holds:
        return holds
    UsageHold.objects.bulk_create(holds)
    # The hold itself is the first decision: by the rules (no user), when they fired.
    created = UsageHold.objects.filter(status=HoldStatus.HELD, decisions__isnull=True)
    HoldDecision.objects.bulk_create(
        [
            HoldDecision(
                hold=hold, status=HoldStatus.HELD, decided_at=hold.created_at, note="held by " + ", ".join(hold.rules)
            )
            for hold in created
        ]
    )
    for hold in holds:
        logger.info("held %s for review: %s", hold.day, ", ".join(hold.rules))
    return holds
