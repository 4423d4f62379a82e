"""The weekly digest, line by line, with a fake clock and locmem email (issue 13)."""

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from leaderboard.digest import digest_for, digests_send
from tests.factories import IdentityFactory, UsageRecordFactory, person_in_team, usage_for
from usage.models import ImportBatch, Notification, NotificationPreference
from usage.services.budgets import allowance_save
from usage.services.standings import standings_refresh

MONDAY = date(2026, 9, 21)  # the digest covers 14–20 Sep


@pytest.fixture
def week(org):
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    ian = person_in_team(org["infra"], display_name="Ian Two")
    for offset in range(7):
        usage_for(ivy, day=date(2026, 9, 14) + timedelta(days=offset), tokens=1000)
    usage_for(ivy, day=date(2026, 9, 7), tokens=8000)
    usage_for(paul, day=date(2026, 9, 15), tokens=2000)
    usage_for(paul, day=date(2026, 9, 8), tokens=10_000)
    usage_for(ian, day=date(2026, 9, 14), tokens=700)
    usage_for(ian, day=date(2026, 9, 8), tokens=20_000)
    UsageRecordFactory(identity=IdentityFactory(person=None), day=date(2026, 9, 16), input_tokens=300)
    allowance_save(person=ivy, tokens=50_000, start=date(2026, 1, 1))
    allowance_save(person=ian, tokens=10_000, start=date(2026, 1, 1))
    standings_refresh(today=MONDAY)
    return {"ivy": ivy, "paul": paul, "ian": ian}


@pytest.mark.django_db
def test_an_engineers_digest_line_by_line(week):
    ivy = week["ivy"]
    assert digest_for(ivy, MONDAY).text().splitlines() == [
        "Hello Ivy Infra,",
        "",
        "Your week",
        "- Rank: #1 of 3 by total tokens (up 2 places).",
        "- Your week: 7,000 tokens; your weekly average before: 1,000 (+600%).",
        "- Allowance used: 15,000 of 50,000 tokens (30%) in September 2026.",
        "- Daily burn: 1,000 tokens a day (last 7 days).",
        "- Projected by 30 Sep 2026: 25,000 tokens (50%).",
        "- Runs out: not this period at the current rate.",
        f"  http://127.0.0.1:8000/people/{ivy.pk}/?period=week&date=2026-09-14",
        "",
        "Turn the weekly digest off on your profile: http://127.0.0.1:8000/profile/",
    ]


@pytest.mark.django_db
def test_a_managers_digest_line_by_line(org, week):
    pat = org["platform_manager"]
    platform = org["platform"]
    assert digest_for(pat, MONDAY).text().splitlines() == [
        "Hello Pat Manager,",
        "",
        "Your week",
        "- Rank: not ranked (no usage this week).",
        "- Your week: 0 tokens; your weekly average before: 0.",
        "- Allowance: none set.",
        f"  http://127.0.0.1:8000/people/{pat.pk}/?period=week&date=2026-09-14",
        "",
        "Team Platform",
        "- Team totals: 7,700 tokens, $0.00, 2 active members.",
        "- Top movers: Ivy Infra (+1), Ian Two (-1).",
        "- Forecast over allowance: Ian Two (217%).",
        "- New unassigned usage: 1 identity, 300 tokens.",
        f"  http://127.0.0.1:8000/teams/{platform.pk}/?period=week&date=2026-09-14",
        "",
        "Turn the weekly digest off on your profile: http://127.0.0.1:8000/profile/",
    ]


@pytest.mark.django_db
def test_an_admins_digest_lists_failed_imports(org, week):
    from tests.factories import PersonFactory

    admin_person = PersonFactory(user=org["admin"], display_name="Ada Admin")
    failed = ImportBatch.objects.create(
        source="upload", original_name="bad.csv", sha256="f" * 64, status="failed", error_summary="line 3: no date"
    )
    ImportBatch.objects.filter(pk=failed.pk).update(created_at="2026-09-16T10:00:00Z")
    lines = digest_for(admin_person, MONDAY).text().splitlines()
    start = lines.index("Imports and pulls")
    assert lines[start : start + 5] == [
        "Imports and pulls",
        "- Failed imports: 1.",
        f"- #{failed.pk} bad.csv: line 3: no date",
        "- Failing connections: 0.",
        "  http://127.0.0.1:8000/imports/",
    ]


@pytest.mark.django_db
def test_digests_go_once_per_week_html_and_text_and_opt_out_is_honoured(org, week):
    NotificationPreference.objects.create(person=week["paul"], weekly_digest=False)
    runs = digests_send(MONDAY, now=True)
    sent_to = sorted(m.to[0] for m in mail.outbox)
    assert week["paul"].email not in sent_to
    assert sent_to == sorted(
        p.email for p in (week["ivy"], week["ian"], org["platform_manager"], org["product_manager"])
    )
    assert {r.outcome for r in runs} == {"sent"}
    message = next(m for m in mail.outbox if m.to == [week["ivy"].email])
    assert message.subject == "Tokenboard weekly digest: 14 Sep – 20 Sep 2026"
    html, mime = message.alternatives[0]
    assert mime == "text/html" and "Rank: #1 of 3 by total tokens (up 2 places)." in html
    assert digests_send(MONDAY, now=True) and len(mail.outbox) == 4  # a re-run sends nothing new
    assert Notification.objects.filter(subject_kind="digest").count() == 4


@pytest.mark.django_db
def test_send_digest_command_dry_run_sends_and_records_nothing(org, week):
    out = StringIO()
    call_command("send_digest", "--dry-run", "--date", "2026-09-21", "--to", week["ivy"].email, stdout=out)
    text = out.getvalue()
    assert f"To: {week['ivy'].email}" in text
    assert "- Rank: #1 of 3 by total tokens (up 2 places)." in text
    assert "1 digest(s) rendered (dry run)." in text
    assert mail.outbox == [] and not Notification.objects.exists()
    call_command("send_digest", "--date", "2026-09-21", "--to", week["ivy"].email, stdout=StringIO())
    assert [m.to for m in mail.outbox] == [[week["ivy"].email]]
    with pytest.raises(CommandError, match="--to: no active person with email 'nobody@x.example'"):
        call_command("send_digest", "--to", "nobody@x.example")


@pytest.mark.django_db
def test_the_profile_turns_the_digest_off_and_on(client, org):
    ivy = org["infra_engineer"]
    client.force_login(ivy.user)
    client.post("/profile/", {"action": "digest"})
    assert NotificationPreference.objects.get(person=ivy).weekly_digest is False
    client.post("/profile/", {"action": "digest", "weekly_digest": "on"})
    assert NotificationPreference.objects.get(person=ivy).weekly_digest is True


@pytest.mark.django_db
def test_the_monday_task_records_each_digest_once_and_queues_its_delivery(
    org, week, sent_tasks, django_capture_on_commit_callbacks
):
    from datetime import UTC, datetime

    import time_machine

    from leaderboard.tasks import send_weekly_digest

    with time_machine.travel(datetime(2026, 9, 21, 9, 0, tzinfo=UTC), tick=False):
        for _run in range(2):  # beat firing twice (or a redelivered task) queues nothing new
            with django_capture_on_commit_callbacks(execute=True):
                send_weekly_digest.apply()
    queued = sorted(call.args[0] for call in sent_tasks.deliver_notification.call_args_list)
    assert queued == sorted(Notification.objects.values_list("pk", flat=True))
    assert len(queued) == 5 and mail.outbox == []
    assert set(Notification.objects.values_list("period_start", flat=True)) == {date(2026, 9, 14)}
