"""Whatever happens to the usage — imports, restatements, identical re-imports, cost reports, team moves,
identities assigned late — and whenever the refreshes run, the stored standings of every window end up equal to
the usage records summed directly (tests/leaderboard/standings_truth.py), ranked with ties shared."""

import os
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from unittest.mock import patch

import pytest
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from leaderboard.selectors import people_ranking
from leaderboard.windows import ranking_query_from
from tests.factories import ImportBatchFactory, MembershipFactory, PersonFactory, TeamFactory, UserFactory
from tests.leaderboard.standings_truth import Truth, competition_ranks, standings_differences
from usage.access import viewer_for
from usage.models import Identity, Membership, UsageRecord
from usage.services import standings
from usage.services.imports import RECORD_FIELDS, usage_records_upsert
from usage.services.standings import (
    standings_mark_identities,
    standings_mark_people,
    standings_mark_usage,
    standings_refresh,
)

TODAY = date(2026, 9, 15)  # a Tuesday
# Where windows meet: quarter, month and week ends and starts, and the edges of the rolling 7/30-day windows
# and their previous windows.
EDGE_DAYS = [
    date(2026, 6, 30),
    date(2026, 7, 1),
    date(2026, 7, 18),
    date(2026, 7, 31),
    date(2026, 8, 1),
    date(2026, 8, 16),
    date(2026, 8, 17),
    date(2026, 8, 31),
    date(2026, 9, 1),
    date(2026, 9, 6),
    date(2026, 9, 7),
    date(2026, 9, 8),
    date(2026, 9, 9),
    date(2026, 9, 13),
    date(2026, 9, 14),
    TODAY,
]
PROVIDERS = ("openai", "anthropic")
TEAMS = 5  # Org → {Eng → Platform, Sales → Field}
NAMES = ("Alex", "Blair", "Casey")  # few, so people share names and the board falls back to the id
PROPERTY = settings(
    max_examples=int(os.environ.get("STANDINGS_EXAMPLES", "40")),  # ~0.5 s each on PostgreSQL
    deadline=None,
    database=None,  # no .hypothesis folder in the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Mostly the edge days, so changes, moves and windows meet on the same days often.
days = st.one_of(
    st.sampled_from(EDGE_DAYS),
    st.sampled_from(EDGE_DAYS),
    st.integers(0, 70).map(lambda n: TODAY - timedelta(days=n)),
)
# Few distinct values, so people tie on every metric often.
tokens = st.sampled_from([0, 100, 250, 1000])
figures = st.fixed_dictionaries(
    {
        "input_tokens": tokens,
        "cache_write_tokens": tokens,
        "cache_read_tokens": tokens,
        "output_tokens": tokens,
        "requests": st.one_of(st.none(), st.integers(0, 3)),  # None: the source does not report requests
        "cost_usd": st.sampled_from(["0", "0.25", "1.5", "12.0001"]).map(Decimal),
        "cost_source": st.sampled_from(["billed", "estimated", "none"]),
    }
)
models = st.sampled_from(["model-a", "model-b"])
# (identity, day, model, figures); the identity is an index, taken modulo the org's identities (-1: the one
# nobody owns yet).
row = st.tuples(st.integers(0, 99), days, models, figures)
# Where the file came from: Claude Code analytics on org keys overlaps the Anthropic usage report, which counts
# (the seeded source precedence); "other" competes with nothing.
SOURCES = {"anthropic_usage": "messages", "claude_code": "claude_code", "other": "tokens"}
sources = st.sampled_from(sorted(SOURCES))
# Whose usage record to move (or anyone, on any day), on its day or the next, to which other team.
moves = st.tuples(
    st.just("move"), st.integers(0, 999), st.one_of(st.sampled_from([0, 1]), days), st.integers(1, TEAMS - 1)
)
attribute = st.tuples(
    st.just("attribute"),
    st.integers(0, 99),
    st.sampled_from(["shared", "shared", "service", "personal"]),
    st.integers(0, TEAMS - 1),
)
OPERATIONS = (
    st.tuples(st.just("import"), st.lists(row, min_size=1, max_size=4), sources),
    st.tuples(st.just("restate"), st.lists(st.tuples(st.integers(0, 999), figures), min_size=1, max_size=3)),
    st.tuples(st.just("reimport")),
    st.tuples(st.just("cost report"), st.integers(0, 99), days, figures),
    moves,
    moves,  # twice as likely: team moves are where incremental refreshes go wrong
    st.tuples(st.just("assign"), st.integers(0, 99)),
    # An identity marked shared (with a team), service or personal again; twice as likely, mostly shared.
    attribute,
    attribute,
    # A new name reorders a tie on every board the person is on, though no figure changes.
    st.tuples(st.just("rename"), st.integers(0, 99), st.sampled_from(NAMES)),
    st.tuples(st.just("refresh")),
)
# The kind drawn first, evenly (st.one_of leans on its first branches).
operation = st.sampled_from(OPERATIONS).flatmap(lambda kind: kind)
person = st.tuples(
    st.sampled_from(NAMES), st.integers(0, TEAMS - 1), st.lists(st.sampled_from(PROVIDERS), min_size=1, max_size=2)
)
orgs = st.tuples(st.lists(person, min_size=4, max_size=6), st.sampled_from(PROVIDERS))
# The first import (always with usage of the identity nobody owns), refreshed; then the changes that a later
# refresh must take in from what was marked.
first_imports = st.builds(
    lambda rows, unassigned: ("import", [*rows, unassigned]),
    st.lists(row, min_size=1, max_size=4),
    st.tuples(st.just(-1), days, models, figures),
)
programs = st.tuples(first_imports, st.lists(operation, min_size=2, max_size=6))


@contextmanager
def rolled_back():
    """One example's data, gone at its end: the examples share the test's database transaction."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


class Org:
    """A three-level team tree, people with one or two identities each, and one identity nobody owns yet."""

    def __init__(self, people, unassigned_provider):
        root = TeamFactory(name="Org")
        eng, sales = TeamFactory(name="Eng", parent=root), TeamFactory(name="Sales", parent=root)
        self.teams = [
            root,
            eng,
            sales,
            TeamFactory(name="Platform", parent=eng),
            TeamFactory(name="Field", parent=sales),
        ]
        self.people, self.identities = [], []
        for number, (name, team, providers) in enumerate(people):
            someone = PersonFactory(display_name=name)
            MembershipFactory(person=someone, team=self.teams[team], start=date(2020, 1, 1))
            self.people.append(someone)
            for provider in providers:
                self.identities.append(
                    Identity.objects.create(
                        provider=provider, kind="user_id", value=f"p{number}-{len(self.identities)}", person=someone
                    )
                )
        self.unassigned = Identity.objects.create(provider=unassigned_provider, kind="user_id", value="nobody")
        self.identities.append(self.unassigned)


def upsert(rows: list[tuple], source: str = "other") -> None:
    """As an import does: records upserted on their natural key, their (day, identity) marked, in one
    transaction."""
    batch = ImportBatchFactory(detected_format=source)
    now = timezone.now()
    unique = {row[:6]: (*row, batch.pk, now) for row in rows}  # one row per natural key, like a parsed file
    with transaction.atomic():
        usage_records_upsert(unique.values())
        standings_mark_usage((day, identity_id) for day, _provider, _account, identity_id, *_rest in unique)


def record_row(identity: Identity, day: date, model: str, figures: dict, usage_kind: str = "tokens") -> tuple:
    """A record in RECORD_FIELDS order, without the batch and update time."""
    counts = [figures[name] for name in ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens")]
    cost, source = figures["cost_usd"], figures["cost_source"]
    return (
        day,
        identity.provider,
        "",
        identity.pk,
        model,
        usage_kind,
        *counts,
        sum(counts),
        figures["requests"],
        cost if source != "none" else Decimal(0),
        source,
    )


def stored_rows() -> list[tuple]:
    names = [name if name not in ("identity", "import_batch") else f"{name}_id" for name in RECORD_FIELDS[:-2]]
    return list(UsageRecord.objects.order_by("pk").values_list(*names))


def run(step, org: Org) -> None:
    kind, *args = step
    if kind == "import":
        rows, source = args[0], args[1] if len(args) > 1 else "other"
        upsert(
            [
                record_row(org.identities[i % len(org.identities)], day, model, f, SOURCES[source])
                for i, day, model, f in rows
            ],
            source,
        )
    elif kind == "restate":  # the provider corrects records it sent: same natural keys, new figures
        existing = stored_rows()
        restated = []
        for index, new in args[0]:
            day, _provider, _account, identity_id, model, usage_kind, *_old = existing[index % len(existing)]
            restated.append(record_row(Identity.objects.get(pk=identity_id), day, model, new, usage_kind))
        upsert(restated)
    elif kind == "reimport":  # the same files again: nothing changes, every day is marked
        upsert(stored_rows())
    elif kind == "cost report":  # an account-level bill, with tokens that must not count either
        identity, day, new = org.identities[args[0] % len(org.identities)], args[1], args[2]
        upsert([record_row(identity, day, "", {**new, "cost_source": "billed"}, "cost")])
    elif kind == "move":
        which, when, other = args
        someone, day = org.people[which % len(org.people)], when
        if isinstance(when, int):  # from the day of a usage record (or the day after), its owner if any
            record = UsageRecord.objects.order_by("pk").select_related("identity")[which % UsageRecord.objects.count()]
            someone = record.identity.person or someone
            day = record.day + timedelta(days=when)
        current = Membership.objects.get(person=someone, end__isnull=True)
        team = org.teams[(org.teams.index(current.team) + other) % TEAMS]  # never the team they are in
        counted_after = UsageRecord.objects.filter(identity__person=someone, day__gte=day).exclude(usage_kind="cost")
        event("move: " + ("changes counted usage" if counted_after.exists() else "no usage from that day"))
        if current.start < day:
            current.end = day - timedelta(days=1)
            current.save()
            Membership.objects.create(person=someone, team=team, start=day)
        else:  # moved again from the same day: the latest move is corrected
            current.team = team
            current.save()
        standings_mark_people([someone.pk])
    elif kind == "assign":
        if org.unassigned.person_id is None:
            org.unassigned.person = org.people[args[0] % len(org.people)]
            org.unassigned.save()
            standings_mark_identities([org.unassigned.pk])
            event("assign: an identity with usage gets its owner")
    elif kind == "attribute":
        identity = org.identities[args[0] % len(org.identities)]
        identity.attribution = args[1]
        identity.shared_team = org.teams[args[2]] if args[1] == "shared" else None
        identity.save()
        standings_mark_identities([identity.pk])
        event(f"attribute: {args[1]}")
    elif kind == "rename":
        someone = org.people[args[0] % len(org.people)]
        someone.display_name = args[1]
        someone.save()
        standings_mark_people([someone.pk])
        event("rename")
    elif kind == "refresh":
        assert standings_refresh(today=TODAY) is not None
        # Exact after any refresh, not only the last: nothing a refresh leaves is fixed up later.
        assert standings_differences(today=TODAY) == []


@pytest.mark.needs_services
@PROPERTY
@given(org_spec=orgs, program=programs, add_any_change=st.booleans(), scoped=st.booleans())
def test_the_standings_of_every_window_equal_the_usage_records_summed_directly(
    db, org_spec, program, add_any_change, scoped
):
    first, steps = program
    # Spelled out on failure (with the ids, to read the differences by).
    note(f"people (name, team, providers) and the unassigned identity's provider: {org_spec}")
    note(f"steps: {[first, ('refresh',), *steps]}")
    # A small org's changes touch most of its rows, which a refresh recomputes rather than adds (half the
    # examples): the other half adds every change it can to the kept windows, and places the people who moved
    # on the kept boards one by one.
    most_share = 0 if add_any_change else standings.CHANGES_MOST_SHARE
    merge_most_share = 0 if add_any_change else standings.MERGE_MOST_SHARE
    # Half the examples' imports mark their identities' days (the refresh rewrites only their people's rollups),
    # the other half whole days, as an import of more than SCOPED_MOST_IDENTITIES identities does.
    most_identities = standings.SCOPED_MOST_IDENTITIES if scoped else -1
    with (
        rolled_back(),
        patch.object(standings, "CHANGES_MOST_SHARE", most_share),
        patch.object(standings, "MERGE_MOST_SHARE", merge_most_share),
        patch.object(standings, "SCOPED_MOST_IDENTITIES", most_identities),
    ):
        org = Org(*org_spec)
        note(f"teams {[t.pk for t in org.teams]}, people {[p.pk for p in org.people]}")
        for step in (first, ("refresh",), *steps):
            run(step, org)
        assert standings_refresh(today=TODAY) is not None

        truth = Truth()
        # Every window, all providers and each provider: totals, active days, ranks with shared ties, board
        # places, team subtree totals by the membership of each day, active members and top contributors.
        assert standings_differences(truth, today=TODAY) == []

        # The board's previous rank is the person's rank in August on the same usage summed directly.
        admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
        board = list(people_ranking(ranking_query_from(QueryDict("period=month&date=2026-09-15")), viewer_for(admin)))
        september = {
            pid: figures
            for pid, figures in truth.people(date(2026, 9, 1), date(2026, 9, 30)).items()
            if figures["total_tokens"] > 0  # none of the metric: not ranked
        }
        august = truth.people(date(2026, 8, 1), date(2026, 8, 31))
        ranks = competition_ranks({pid: figures["total_tokens"] for pid, figures in september.items()})
        previous = competition_ranks({pid: figures["total_tokens"] for pid, figures in august.items()})
        assert {s.person_id: (s.rank, s.previous_rank) for s in board} == {
            pid: (ranks[pid], previous.get(pid)) for pid in september
        }
        assert [s.rank for s in board] == sorted(s.rank for s in board)

        # The other ways a board is served agree too: one provider (its days read from the rollups), windows
        # that are not kept (summed from kept pieces), another metric.
        for params in BOARDS:
            assert board_of(params, admin) == expected_board(truth, params), params


BOARDS = (
    "period=month&date=2026-09-15&provider=openai",
    "period=week&date=2026-09-01&provider=anthropic&metric=active_days",
    "period=7d&date=2026-09-15&provider=anthropic",
    "period=30d&date=2026-09-03",  # a rolling window that does not end today: not kept
    "start=2026-07-30&end=2026-09-08&metric=cost_usd",
    "start=2026-08-17&end=2026-09-14&provider=openai&metric=requests",
)


def board_of(params: str, admin) -> dict[int, tuple]:
    query = ranking_query_from(QueryDict(params))
    return {
        s.person_id: (s.rank, s.previous_rank, s.totals.metric(query.metric), s.totals.active_days)
        for s in people_ranking(query, viewer_for(admin))
    }


def expected_board(truth: Truth, params: str) -> dict[int, tuple]:
    query = ranking_query_from(QueryDict(params))
    window, previous_window, metric = query.window, query.window.previous(), query.metric
    now = truth.people(window.start, window.end, query.provider)
    before = truth.people(previous_window.start, previous_window.end, query.provider)
    ranks = competition_ranks({pid: figures[metric] for pid, figures in now.items()})
    previous = competition_ranks({pid: figures[metric] for pid, figures in before.items()})
    return {
        pid: (ranks[pid], previous.get(pid), figures[metric], figures["active_days"])
        for pid, figures in now.items()
        if ranks[pid] is not None
    }
