"""The weekly digest (issue 13): one email per person, about the last complete week (Monday–Sunday).

- everyone: their rank by total tokens and its movement, their week against their own average of the 8 weeks
  before, and their allowance burn;
- managers, per team they manage: the team's totals, its top movers, people forecast over their allowance, and
  new unassigned usage;
- admins: imports that failed in the week and provider connections that are failing.

Each digest is recorded once per person and week (usage.services.notifications), so a re-run sends nothing new.
People who turned the digest off (NotificationPreference) get none. Figures come from the read models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.template.loader import render_to_string

from usage.access import team_subtree_ids, viewer_for_person
from usage.models import ImportBatch, ImportStatus, Membership, Notification, Person, ProviderConnection
from usage.periods import Window, org_today, window_for
from usage.services.notifications import (
    DeliveryFailed,
    notification_deliver,
    notification_queue_on_commit,
    notification_record,
)

from .alerts import burn_lines, page_url, percent_text, tokens_text, usd_text
from .budgets import person_burn, person_burns
from .selectors import Totals, people_ranking, person_totals, unassigned_usage
from .windows import RankingQuery

AVERAGE_WEEKS = 8
TRIGGER = "weekly"


@dataclass
class DigestSection:
    title: str
    lines: list[str]
    link: str


@dataclass
class Digest:
    person: Person
    week: Window
    sections: list[DigestSection] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return f"Tokenboard weekly digest: {self.week.start:%d %b} – {self.week.end:%d %b %Y}"

    def text(self) -> str:
        parts = [f"Hello {self.person.display_name},", ""]
        for section in self.sections:
            parts += [section.title, *[f"- {line}" for line in section.lines], f"  {section.link}", ""]
        parts.append(f"Turn the weekly digest off on your profile: {page_url('/profile/')}")
        return "\n".join(parts)

    def html(self) -> str:
        return render_to_string("notifications/digest.html", {"digest": self, "profile_url": page_url("/profile/")})


def digest_week(today: date) -> Window:
    """The last complete Monday–Sunday week before `today`."""
    return window_for("week", today - timedelta(days=7))


def _movement(rank: int, previous: int | None) -> str:
    if previous is None:
        return "new this week"
    if previous == rank:
        return "no change"
    places = abs(previous - rank)
    return f"{'up' if previous > rank else 'down'} {places} place{'' if places == 1 else 's'}"


def _own_section(person: Person, week: Window, viewer) -> DigestSection:
    ranking = people_ranking(RankingQuery(window=week), viewer)
    mine = ranking.row_for(person.pk)
    lines = []
    if mine is None:
        lines.append("Rank: not ranked (no usage this week).")
    else:
        lines.append(
            f"Rank: #{mine.rank} of {ranking.ranked_count} by total tokens "
            f"({_movement(mine.rank, mine.previous_rank)})."
        )
    this_week = mine.totals.total_tokens if mine else 0
    before = Window("custom", week.start - timedelta(days=7 * AVERAGE_WEEKS), week.start - timedelta(days=1))
    average = person_totals(before).get(person.pk, Totals()).total_tokens // AVERAGE_WEEKS
    versus = f" ({(this_week - average) * 100 / average:+.0f}%)" if average else ""
    lines.append(
        f"Your week: {tokens_text(this_week)} tokens; your weekly average before: {tokens_text(average)}{versus}."
    )
    found = person_burn(person.pk, week.end)
    if found is None:
        lines.append("Allowance: none set.")
    else:
        lines += [
            f"Allowance {line[0].lower()}{line[1:]}" if i == 0 else line for i, line in enumerate(burn_lines(found[1]))
        ]
    return DigestSection(
        "Your week", lines, page_url(f"/people/{person.pk}/?period=week&date={week.start.isoformat()}")
    )


def _team_section(team, week: Window, viewer, today: date) -> DigestSection:
    members = person_totals(week, team_id=team.pk)
    total = Totals()
    for figures in members.values():
        total.add(figures)
    lines = [
        f"Team totals: {tokens_text(total.total_tokens)} tokens, {usd_text(total.cost_usd)}, "
        f"{len(members)} active member{'' if len(members) == 1 else 's'}."
    ]
    ranking = people_ranking(RankingQuery(window=week, team_id=team.pk), viewer)
    climbers, fallers, _new = ranking.movers(3)
    moved = [f"{s.display_name} ({s.rank_change:+d})" for s in (*climbers, *fallers)]
    lines.append(f"Top movers: {', '.join(moved)}." if moved else "Top movers: none.")
    in_team = Membership.objects.filter(team_id__in=team_subtree_ids([team.pk]), end__isnull=True)
    burns = person_burns(today, list(in_team.values_list("person_id", flat=True)))
    names = dict(Person.objects.filter(pk__in=list(burns)).values_list("id", "display_name"))
    over = sorted(
        (names[pid], burn.projected_percent) for pid, (_a, burn) in burns.items() if burn.projected_percent >= 100
    )
    lines.append(
        "Forecast over allowance: " + ", ".join(f"{name} ({percent_text(p)})" for name, p in over) + "."
        if over
        else "Forecast over allowance: nobody."
    )
    identities, tokens = unassigned_usage(week)
    lines.append(
        f"New unassigned usage: {identities} identit{'y' if identities == 1 else 'ies'}, {tokens_text(tokens)} tokens."
    )
    return DigestSection(
        f"Team {team.name}", lines, page_url(f"/teams/{team.pk}/?period=week&date={week.start.isoformat()}")
    )


def _admin_section(week: Window) -> DigestSection:
    failed = ImportBatch.objects.filter(
        status=ImportStatus.FAILED, created_at__date__gte=week.start, created_at__date__lte=week.end
    ).order_by("pk")
    lines = [f"Failed imports: {failed.count()}."]
    lines += [f"#{b.pk} {b.original_name}: {(b.error_summary or 'failed').splitlines()[0][:120]}" for b in failed[:10]]
    failing = list(ProviderConnection.objects.filter(failing=True).order_by("name"))
    lines.append(f"Failing connections: {len(failing)}.")
    lines += [f"{c.name}: {(c.last_error or 'failing').splitlines()[0][:120]}" for c in failing]
    return DigestSection("Imports and pulls", lines, page_url("/imports/"))


def digest_for(person: Person, today: date) -> Digest:
    week = digest_week(today)
    viewer = viewer_for_person(person)
    digest = Digest(person, week, [_own_section(person, week, viewer)])
    for team in person.managed_teams.order_by("name"):
        digest.sections.append(_team_section(team, week, viewer, week.end))
    if viewer.is_admin:
        digest.sections.append(_admin_section(week))
    return digest


def digest_recipients(to: str | None = None):
    """Active people with an email who have not turned the digest off (only `to`, if given)."""
    people = Person.objects.filter(active=True).exclude(email="").exclude(notification_preference__weekly_digest=False)
    if to:
        people = people.filter(email=to.strip().lower())
    return people.order_by("email")


def digest_record(digest: Digest) -> tuple[Notification, bool]:
    return notification_record(
        channel="email",
        recipient=digest.person.email,
        subject_kind="digest",
        subject_id=digest.person.pk,
        trigger=TRIGGER,
        period_start=digest.week.start,
        person=digest.person,
        title=digest.subject,
        reason=f"weekly digest {digest.week.label}",
        body_text=digest.text(),
        body_html=digest.html(),
    )


@dataclass
class DigestRun:
    person: Person
    digest: Digest
    outcome: str  # "rendered" (dry run), "queued", "sent", "already sent", "failed: …"


def digests_send(
    today: date | None = None, *, to: str | None = None, dry_run: bool = False, now: bool = False
) -> list[DigestRun]:
    """Render each recipient's digest; unless a dry run, record it (once per person and week) and queue it —
    or, with `now`, send it here (a failure is recorded and queued for retry)."""
    today = today or org_today()
    runs = []
    for person in digest_recipients(to):
        digest = digest_for(person, today)
        if dry_run:
            runs.append(DigestRun(person, digest, "rendered"))
            continue
        notification, created = digest_record(digest)
        if not created and notification.status == "sent":
            runs.append(DigestRun(person, digest, "already sent"))
        elif now:
            try:
                sent = notification_deliver(notification.pk)
                runs.append(DigestRun(person, digest, "sent" if sent else f"already {notification.status}"))
            except DeliveryFailed as error:
                notification_queue_on_commit(notification)
                runs.append(DigestRun(person, digest, f"failed: {error} (queued for retry)"))
        else:
            if created:
                notification_queue_on_commit(notification)
            runs.append(DigestRun(person, digest, "queued" if created else f"already {notification.status}"))
    return runs
