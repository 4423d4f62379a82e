"""The standings worked out the slow, obvious way from UsageRecord (the source of truth), for tests to compare
the read models that usage.services.standings keeps with.

Nothing here reads the read models to compute what they should hold, and nothing is taken from the code under test
but the list of figures, the calendar and which metrics day windows rank: a refresh that sums the wrong pieces,
counts a cost report, misses a team move or ranks ties wrongly disagrees with this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from leaderboard.selectors import TOTALS_FIELDS, person_totals, ranked_order, stored_order
from usage.figures import COUNT_FIGURES, KEPT_METRICS, METRICS, SUMMED_FIGURES, UNREPORTED_FIGURES
from usage.models import (
    Membership,
    Person,
    SourcePrecedence,
    StandingOrder,
    StandingWindow,
    Team,
    TeamMemberStanding,
    TeamStanding,
    UsageRecord,
)
from usage.periods import CALENDAR_PERIODS, ROLLING_PERIODS, Window, current_windows, window_for
from usage.services.standings import board_pairs, team_ancestors, team_top_people

# A kept row counts its days (a team's: its members' days) that report each unreported figure: none, and the
# figure is unknown.
REPORTED_DAYS = {name: f"{name}_reported_days" for name in UNREPORTED_FIGURES}
FIGURES = (*SUMMED_FIGURES, "active_days", *REPORTED_DAYS.values())
COST_REPORT_KIND = "cost"  # bills: a person's where they own its identity (then it replaces their estimates)


def _zero() -> dict:
    return {
        **dict.fromkeys(COUNT_FIGURES, 0),
        **dict.fromkeys(UNREPORTED_FIGURES),  # unknown until a row reports it
        "cost_usd": Decimal(0),
        "billed_cost_usd": Decimal(0),
    }


def _add(total: dict, figures: dict) -> None:
    """Sums as SQL does: an unknown figure (None) adds nothing; all unknown stays unknown."""
    for name in SUMMED_FIGURES:
        if figures[name] is not None:
            total[name] = figures[name] if total[name] is None else total[name] + figures[name]


class _Days:
    """The distinct days of a row's usage, and of its usage reporting each unreported figure."""

    def __init__(self):
        self.active: set[date] = set()
        self.reporting = {name: set() for name in UNREPORTED_FIGURES}

    def add(self, day: date, figures: dict) -> None:
        self.active.add(day)
        for name, days in self.reporting.items():
            if figures[name] is not None:
                days.add(day)

    def counts(self) -> dict[str, int]:
        return {"active_days": len(self.active), **{REPORTED_DAYS[n]: len(d) for n, d in self.reporting.items()}}


def competition_ranks(values: dict[int, object]) -> dict[int, int | None]:
    """Rank of each key on its value, highest first; ties share a rank and the next rank skips ("1, 1, 3").
    Only positive values are ranked: none of the metric, or an unknown figure, has no rank."""
    ranked = {key: value for key, value in values.items() if value is not None and value > 0}
    return {
        key: 1 + sum(1 for other in ranked.values() if other > value) if key in ranked else None
        for key, value in values.items()
    }


def board_places(totals: dict[int, dict], metric: str, names: dict[int, str]) -> dict[int, int | None]:
    """1..n in the board's order: the metric descending, then display name, then id; unranked people (none of
    the metric, or unknown) have no place."""
    ranked = [pid for pid in totals if totals[pid][metric] is not None and totals[pid][metric] > 0]
    ordered = sorted(ranked, key=lambda pid: (-totals[pid][metric], names[pid], pid))
    places = {pid: place for place, pid in enumerate(ordered, start=1)}
    return {pid: places.get(pid) for pid in totals}


# Efficiency metrics, worked out here again (not taken from usage.figures): their values, best first, and
# who is ranked on them (the top half by total tokens, ties at the edge included).
EFFICIENCY = ("cache_hit_rate", "output_share", "cost_per_mtok", "billed_equivalent_tokens")


def efficiency_value(metric: str, f: dict):
    prompt = f["input_tokens"] + f["cache_write_tokens"] + f["cache_read_tokens"]
    total = f["total_tokens"]
    if metric == "cache_hit_rate":
        return f["cache_read_tokens"] / prompt if prompt else None
    if metric == "output_share":
        return f["output_tokens"] / total if total else None
    if metric == "cost_per_mtok":
        return f["cost_usd"] * 1_000_000 / total if total else None
    weighted = 100 * f["input_tokens"] + 125 * f["cache_write_tokens"] + 10 * f["cache_read_tokens"]
    return (weighted + 500 * f["output_tokens"]) // 100


def efficiency_key(metric: str, f: dict) -> float:
    """Sort key, best first; an undefined value last."""
    value = efficiency_value(metric, f)
    if value is None:
        return float("inf")
    return float(value) if metric == "cost_per_mtok" else -float(value)


def efficiency_ranked(people: dict[int, dict]) -> set[int]:
    volumes = {pid: f["total_tokens"] for pid, f in people.items()}
    ranks = competition_ranks(volumes)
    return {pid for pid, rank in ranks.items() if volumes[pid] > 0 and rank <= (len(people) + 1) // 2}


def efficiency_ranks_and_places(people: dict[int, dict], metric: str, names: dict[int, str]):
    ranked = efficiency_ranked(people)
    keys = {pid: efficiency_key(metric, people[pid]) for pid in ranked}
    ranks = {pid: 1 + sum(1 for other in keys.values() if other < key) for pid, key in keys.items()}
    ordered = sorted(ranked, key=lambda pid: (keys[pid], names[pid], pid))
    places = {pid: place for place, pid in enumerate(ordered, start=1)}
    return {pid: ranks.get(pid) for pid in people}, {pid: places.get(pid) for pid in people}


class Truth:
    """Every counted usage row — personal identities assigned to a person, with the team whose membership
    covered its day; shared identities with their team and no person; service identities left out; one source
    per use; a person's cost reports in place of their estimates, other cost reports left out — read once; the
    figures of any window are summed from these in Python."""

    def __init__(self):
        parents = dict(Team.objects.values_list("id", "parent_id"))
        self.ancestors = {}
        for team_id in parents:
            chain, current = [], team_id
            while current is not None:
                chain.append(current)
                current = parents[current]
            self.ancestors[team_id] = chain
        self.names = dict(Person.objects.values_list("id", "display_name"))
        memberships = defaultdict(list)
        for person_id, team_id, start, end in Membership.objects.values_list("person_id", "team_id", "start", "end"):
            memberships[person_id].append((start, end, team_id))
        self.rows: list[tuple[date, str, int, int | None, dict]] = []
        # Days with usage of each provider, assigned or not (those are the days that get calendar windows).
        self.usage_days: set[tuple[date, str]] = set()
        records = list(
            UsageRecord.objects.values(
                "day",
                "provider",
                "identity__person_id",
                "identity__attribution",
                "identity__shared_team_id",
                "cost_usd",
                "cost_source",
                "usage_kind",
                "import_batch__detected_format",
                *COUNT_FIGURES,
            )
        )

        def personal(r: dict) -> bool:
            return r["identity__attribution"] == "personal" and r["identity__person_id"] is not None

        # One count per use: a row is not counted where a preferred source reports the same person's use of the
        # provider on the same day.
        reported = {
            (r["identity__person_id"], r["day"], r["provider"], r["import_batch__detected_format"])
            for r in records
            if personal(r) and r["usage_kind"] != COST_REPORT_KIND
        }
        rules = list(SourcePrecedence.objects.values_list("provider", "preferred", "over", "usage_kind"))
        # Billed beats estimated: a person's cost report replaces the cost of their usage that provider and day.
        billed = {
            (r["identity__person_id"], r["day"], r["provider"])
            for r in records
            if personal(r) and r["usage_kind"] == COST_REPORT_KIND
        }
        for record in records:
            is_bill = record["usage_kind"] == COST_REPORT_KIND
            if is_bill and not personal(record):  # account-level: counted for nobody
                continue
            self.usage_days.add((record["day"], record["provider"]))
            person_id, day = record["identity__person_id"], record["day"]
            figures = {name: record[name] for name in COUNT_FIGURES}
            figures["cost_usd"] = record["cost_usd"]
            figures["billed_cost_usd"] = record["cost_usd"] if record["cost_source"] == "billed" else Decimal(0)
            if record["identity__attribution"] == "service":  # CI, batch: no one's
                continue
            if record["identity__attribution"] == "shared":  # the team's, no person's
                self.rows.append((day, record["provider"], None, record["identity__shared_team_id"], figures))
                continue
            if person_id is None:
                continue
            if any(
                provider == record["provider"]
                and over == record["import_batch__detected_format"]
                and kind in ("", record["usage_kind"])
                and (person_id, day, provider, preferred) in reported
                for provider, preferred, over, kind in rules
            ):
                continue
            covering = [
                team for start, end, team in memberships[person_id] if start <= day and (end is None or day <= end)
            ]
            assert len(covering) <= 1, f"person {person_id} is in {len(covering)} teams on {day}"
            replaced = not is_bill and (person_id, day, record["provider"]) in billed
            if replaced:
                figures["cost_usd"], figures["billed_cost_usd"] = Decimal(0), Decimal(0)
            self.rows.append((day, record["provider"], person_id, covering[0] if covering else None, figures))

    def _rows_in(self, start: date, end: date, provider: str):
        for day, row_provider, person_id, team_id, figures in self.rows:
            if start <= day <= end and (not provider or row_provider == provider):
                yield day, person_id, team_id, figures

    def people(self, start: date, end: date, provider: str = "") -> dict[int, dict]:
        """Each person's figures in the window; active days are the distinct days with any counted row."""
        totals, days = defaultdict(_zero), defaultdict(_Days)
        for day, person_id, _team_id, figures in self._rows_in(start, end, provider):
            if person_id is None:  # a team's shared identity
                continue
            _add(totals[person_id], figures)
            days[person_id].add(day, figures)
        return {pid: {**total, **days[pid].counts()} for pid, total in totals.items()}

    def team_members(self, start: date, end: date, provider: str = "") -> dict[tuple[int | None, int], dict]:
        """Each (team that covered the day, person)'s figures in the window; person None: the team's shared
        identities."""
        totals, days = defaultdict(_zero), defaultdict(_Days)
        for day, person_id, team_id, figures in self._rows_in(start, end, provider):
            _add(totals[team_id, person_id], figures)
            days[team_id, person_id].add(day, figures)
        return {key: {**total, **days[key].counts()} for key, total in totals.items()}

    def teams(self, start: date, end: date, provider: str = "") -> dict[int, dict]:
        """Each team subtree's figures (a person's usage counts for the teams above the team that covered the
        day, and its shared identities' usage), its active members and its largest contributor on every metric (a
        tie goes to the smaller id). Shared usage is neither a member, a contributor nor active days."""
        per_person, days = defaultdict(_zero), defaultdict(_Days)
        for day, person_id, team_id, figures in self._rows_in(start, end, provider):
            for ancestor in self.ancestors.get(team_id, []) if team_id is not None else []:
                _add(per_person[ancestor, person_id], figures)
                days[ancestor, person_id].add(day, figures)
        teams: dict[int, dict] = {}
        people: dict[int, dict[int, dict]] = defaultdict(dict)
        for (team_id, person_id), figures in per_person.items():
            people[team_id][person_id] = {**figures, **days[team_id, person_id].counts()}
        for team_id, members in people.items():
            total = _zero()
            for figures in members.values():
                _add(total, figures)
            people_only = {pid: figures for pid, figures in members.items() if pid is not None}
            total["active_days"] = sum(figures["active_days"] for figures in people_only.values())
            for column in REPORTED_DAYS.values():  # the shared identities' days too, as their figures
                total[column] = sum(figures[column] for figures in members.values())
            total["active_members"] = len(people_only)
            # No top person on an efficiency ratio (it would be whoever has the fewest tokens at 100 %).
            total["top_people"] = {
                metric: None
                if metric in EFFICIENCY or not people_only
                else max(
                    people_only,
                    key=lambda pid, m=metric: (people_only[pid][m] is not None, people_only[pid][m] or 0, -pid),
                )
                for metric in METRICS
            }
            teams[team_id] = total
        return teams

    def expected_windows(self, today: date) -> set[tuple[str, date, date, str]]:
        """The windows a refresh on `today` must keep: for all providers, every calendar window of a day with
        usage and today's windows with their previous ones; for each provider, those of them with its usage,
        but not its days (one provider's days are read from the daily rollups)."""
        expected = set()
        for day, provider in self.usage_days:
            for window in (window_for(period, day) for period in CALENDAR_PERIODS):
                expected.add((window.period, window.start, window.end, ""))
                if window.period != "day":
                    expected.add((window.period, window.start, window.end, provider))
        for window in current_windows(today):
            expected.add((window.period, window.start, window.end, ""))
            expected |= {
                (window.period, window.start, window.end, provider)
                for day, provider in self.usage_days
                if window.start <= day <= window.end and window.period != "day"
            }
        return expected


def ranks_and_places(window: StandingWindow, people: Iterable[int], metric: str) -> tuple[dict, dict]:
    """Each of the people's rank and board place on `metric` (None where not ranked): kept in the window's
    StandingOrder for usage.figures.KEPT_METRICS, ordered from the window's kept totals when asked for the
    others."""
    ranks, places = dict.fromkeys(people), dict.fromkeys(people)
    if metric in KEPT_METRICS:
        order = stored_order(window.pk, metric)  # as the pages read it
        board = zip(order.ids, order.ranks, strict=True)
    else:
        order = ranked_order(Window(window.period, window.start, window.end), window.provider, "", None, metric)
        board = zip(order.ids, order.ranks, strict=True)
    for place, (person_id, rank) in enumerate(board, start=1):
        if rank:  # 0: under an efficiency metric's minimum volume, listed apart after the ranked
            ranks[person_id], places[person_id] = rank, place
    return ranks, places


def top_people(window: StandingWindow, stored: list[dict]) -> dict[int, dict]:
    """Each team's largest contributor on every metric (none on a ratio): kept in the team rows for
    KEPT_METRICS, asked for the others."""
    ancestors = team_ancestors()
    asked = {
        metric: team_top_people(window.pk, metric, ancestors)
        for metric in METRICS
        if metric not in EFFICIENCY and metric not in KEPT_METRICS
    }

    def top(row: dict, metric: str) -> int | None:
        if metric in EFFICIENCY:
            return None
        return row[f"top_{metric}"] if metric in KEPT_METRICS else asked[metric].get(row["team_id"])

    return {row["team_id"]: {metric: top(row, metric) for metric in METRICS} for row in stored}


def _differences(stored: dict, expected: dict) -> str:
    """Only what differs (nested figures included), so a failure names what is wrong rather than printing both
    sides whole."""
    found = []
    for key in sorted(stored.keys() | expected.keys(), key=str):
        mine, theirs = stored.get(key), expected.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            if mine != theirs:
                found.append(f"{key}: {{{_differences(mine, theirs)}}}")
        elif mine != theirs:
            found.append(f"{key}: stored {mine} != {theirs}")
    return "; ".join(found)


def _window_label(window: StandingWindow) -> str:
    return f"{window.period} {window.start}..{window.end} {window.provider or 'all providers'}"


def standings_differences(truth: Truth | None = None, *, today: date | None = None) -> list[str]:
    """Where the stored standings disagree with the truth, one line per window and kind of row ([] when they
    agree). With `today`, also the windows that should be kept and are not, or are kept and should not be."""
    truth = truth or Truth()
    problems: list[str] = []
    member_rows, team_rows = defaultdict(list), defaultdict(list)
    for row in TeamMemberStanding.objects.values():
        member_rows[row["window_id"]].append(row)
    for row in TeamStanding.objects.values():
        team_rows[row["window_id"]].append(row)
    windows = list(StandingWindow.objects.order_by("period", "start", "end", "provider"))
    for window in windows:
        label, span = _window_label(window), (window.start, window.end, window.provider)

        expected_people = truth.people(*span)
        # As the pages read them: each person's team-member rows summed.
        totals = person_totals(Window(window.period, window.start, window.end), provider=window.provider)
        stored_people = {pid: {name: getattr(t, name) for name in TOTALS_FIELDS} for pid, t in totals.items()}
        expected = {pid: {name: f[name] for name in TOTALS_FIELDS} for pid, f in expected_people.items()}
        if stored_people != expected:
            problems.append(f"{label}: people {_differences(stored_people, expected)}")
        if window.people != len(expected_people):
            problems.append(f"{label}: people count {window.people} != {len(expected_people)}")
        for metric in KEPT_METRICS:
            people, totals = board_pairs(StandingOrder.objects.get(window=window, metric=metric).board)
            expected_totals = {pid: f[metric] for pid, f in expected_people.items() if f[metric]}
            if len(set(people)) != len(people) or dict(zip(people, totals, strict=True)) != expected_totals:
                problems.append(
                    f"{label}: {metric} board {list(zip(people, totals, strict=True))} != {expected_totals}"
                )
        for metric in METRICS:
            ranks, places = ranks_and_places(window, stored_people, metric)
            if metric in EFFICIENCY:
                expected_ranks, expected_places = efficiency_ranks_and_places(expected_people, metric, truth.names)
                if (ranks, places) != (expected_ranks, expected_places):
                    problems.append(f"{label}: {metric} {_differences(ranks, expected_ranks)} places {places}")
                continue
            values = {pid: figures[metric] for pid, figures in expected_people.items()}
            expected_ranks = competition_ranks(values)
            if ranks != expected_ranks:
                problems.append(f"{label}: rank_{metric} {_differences(ranks, expected_ranks)} ({values})")
            expected_places = board_places(expected_people, metric, truth.names)
            if places != expected_places:
                problems.append(f"{label}: place_{metric} {_differences(places, expected_places)} ({values})")

        stored = member_rows.pop(window.pk, [])
        stored_members = {(row["team_id"], row["person_id"]): {name: row[name] for name in FIGURES} for row in stored}
        expected_members = truth.team_members(*span)
        if len(stored_members) != len(stored):
            problems.append(f"{label}: {len(stored)} team member rows for {len(stored_members)} (team, person)")
        if stored_members != expected_members:
            problems.append(f"{label}: team members {_differences(stored_members, expected_members)}")

        stored = team_rows.pop(window.pk, [])
        tops = top_people(window, stored)
        stored_teams = {
            row["team_id"]: {
                **{name: row[name] for name in FIGURES},
                "active_members": row["active_members"],
                "top_people": tops[row["team_id"]],
            }
            for row in stored
        }
        expected_teams = truth.teams(*span)
        if len(stored_teams) != len(stored):
            problems.append(f"{label}: {len(stored)} team rows for {len(stored_teams)} teams")
        if stored_teams != expected_teams:
            problems.append(f"{label}: teams {_differences(stored_teams, expected_teams)}")

    for kind, orphans in (("team member", member_rows), ("team", team_rows)):
        if orphans:
            problems.append(f"{kind} rows of windows that do not exist: {sorted(orphans)}")
    if today is not None:
        kept = {(w.period, w.start, w.end, w.provider) for w in windows}
        if missing := truth.expected_windows(today) - kept:
            problems.append(f"windows not kept: {sorted(missing)}")
        moving = {(w.period, w.start, w.end) for w in current_windows(today)}
        stale = {key for key in kept if key[0] in (*ROLLING_PERIODS, "all") and key[:3] not in moving}
        if stale:
            problems.append(f"rolling windows that no longer end today or on a previous window's end: {sorted(stale)}")
    return problems
