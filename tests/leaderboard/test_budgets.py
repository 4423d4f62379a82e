"""Allowances and budgets: bad input, effective dating, burn and forecast, visibility, the allowance-used ranking
(page, CSV and API agree), and the budget pages (issue 13)."""

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from leaderboard.budgets import person_burn
from tests.factories import PersonFactory, person_in_team, usage_for
from usage.models import Allowance, Notification, TeamBudget
from usage.services.budgets import (
    AllowanceImportError,
    BudgetError,
    allowance_save,
    allowances_csv_import,
    budget_save,
)
from usage.services.standings import standings_refresh

TODAY = date(2026, 9, 10)


@pytest.fixture
def clock():
    """The org's today is 10 Sep 2026 (noon UTC) for pages, API and services."""
    with time_machine.travel(datetime(2026, 9, 10, 12, 0, tzinfo=ZoneInfo("UTC")), tick=False):
        yield TODAY


def _daily(person, first: date, last: date, tokens: int, cost: str = "0"):
    day = first
    while day <= last:
        usage_for(person, day=day, tokens=tokens, cost_usd=Decimal(cost))
        day += timedelta(days=1)


# --- Bad input ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_csv_with_bad_rows_names_each_row_and_field_and_saves_nothing(org):
    ivy = org["infra_engineer"]
    text = (
        "email,period,tokens,usd,effective\n"
        f"{ivy.email},month,1000,,2026-09-01\n"
        f"{org['product_engineer'].email},month,-5,,2026-09-01\n"
        "nobody@acme.example,month,10,,2026-09-01\n"
        f"{org['platform_manager'].email},month,lots,,2026-09-01\n"
        f"{org['product_manager'].email},week,10,,2026-09-01\n"
        f"{ivy.email},month,2000,,2026-09-01\n"
    )
    with pytest.raises(AllowanceImportError) as raised:
        allowances_csv_import(text, "allowances.csv", TODAY)
    assert [str(e) for e in raised.value.errors] == [
        "line 3, tokens: -5 is negative; an allowance is 0 or more",
        "line 4, email: no person with email 'nobody@acme.example'",
        "line 5, tokens: 'lots' is not a whole number of tokens",
        "line 6, period: 'week' is not a period; use month or quarter",
        "line 7, effective: overlaps line 2 (same person and date)",
    ]
    assert not Allowance.objects.exists()


@pytest.mark.django_db
def test_an_allowance_set_before_a_later_one_runs_until_it_and_explicit_overlaps_are_refused(org):
    ivy = org["infra_engineer"]
    allowance_save(person=ivy, tokens=10, start=date(2026, 10, 1))
    allowances_csv_import(f"email,period,tokens,usd,effective\n{ivy.email},,,2.50,2026-09-01\n", "a.csv", TODAY)
    assert list(Allowance.objects.order_by("start").values_list("start", "end")) == [
        (date(2026, 9, 1), date(2026, 9, 30)),
        (date(2026, 10, 1), None),
    ]
    with pytest.raises(BudgetError, match="end: overlaps the allowance effective from 2026-09-01 to 2026-09-30"):
        allowance_save(person=ivy, tokens=1, start=date(2026, 8, 1), end=date(2026, 10, 5))
    with pytest.raises(BudgetError, match="effective: overlaps the allowance effective from 2026-09-01 to 2026-09-30"):
        allowance_save(person=ivy, tokens=1, start=date(2026, 9, 10), end=date(2026, 9, 12))
    assert Allowance.objects.count() == 2


@pytest.mark.django_db
def test_a_new_allowance_ends_the_open_one_and_a_reimport_changes_nothing(org):
    ivy = org["infra_engineer"]
    text = (
        f"email,period,tokens,usd,effective\n{ivy.email},month,1000,,2026-08-01\n{ivy.email},quarter,,30,2026-09-15\n"
    )
    assert allowances_csv_import(text, "a.csv", TODAY) == 2
    assert allowances_csv_import(text, "a.csv", TODAY) == 2
    rows = list(Allowance.objects.order_by("start").values_list("period", "tokens", "usd", "start", "end"))
    assert rows == [
        ("month", 1000, None, date(2026, 8, 1), date(2026, 9, 14)),
        ("quarter", None, Decimal("30.00"), date(2026, 9, 15), None),
    ]


@pytest.mark.django_db
def test_budget_input_is_checked_field_by_field(org):
    platform = org["platform"]
    with pytest.raises(BudgetError, match="slack_webhook_url: must be an https:// URL"):
        budget_save(team=platform, tokens=10, slack_webhook_url="http://hooks.slack.com/x", start=TODAY)
    with pytest.raises(BudgetError, match="usd: 'ten' is not an amount in USD"):
        budget_save(team=platform, usd="ten", start=TODAY)
    with pytest.raises(BudgetError, match="thresholds: '0' is not a percentage"):
        budget_save(team=platform, tokens=10, thresholds="0, 80", start=TODAY)
    with pytest.raises(BudgetError, match="tokens: give tokens, usd or both"):
        budget_save(team=platform, start=TODAY)
    assert not TeamBudget.objects.exists()


@pytest.mark.django_db
def test_the_api_rejects_bad_allowances_with_the_field_and_engineers_cannot_write(client, org):
    client.force_login(org["admin"])
    url = reverse("api-v1:allowance-list")
    ivy = org["infra_engineer"]
    response = client.post(
        url, {"person": ivy.pk, "tokens": -1, "start": "2026-09-01"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"tokens": ["-1 is negative; an allowance is 0 or more"]}
    response = client.post(
        url, {"person": ivy.pk, "tokens": 100, "start": "2026-09-01"}, content_type="application/json"
    )
    assert response.status_code == 201
    response = client.post(
        url,
        {"person": ivy.pk, "tokens": 5, "start": "2026-08-01", "end": "2026-09-05"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {"end": ["overlaps the allowance effective from 2026-09-01 with no end"]}
    response = client.post(
        reverse("api-v1:budget-list"),
        {"team": org["platform"].pk, "tokens": 10, "start": "2026-09-01", "slack_webhook_url": "ftp://x"},
        content_type="application/json",
    )
    assert response.json() == {"slack_webhook_url": ["must be an https:// URL (a Slack incoming webhook)"]}
    client.force_login(ivy.user)
    response = client.post(
        url, {"person": ivy.pk, "tokens": 10**6, "start": "2026-10-01"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert Allowance.objects.count() == 1


@pytest.mark.django_db
def test_the_csv_upload_page_reports_bad_rows_and_saves_good_files(client, org):
    client.force_login(org["admin"])
    bad = SimpleUploadedFile("a.csv", b"email,period,tokens,usd,effective\nx@y.example,month,1,,\n")
    response = client.post(reverse("budgets"), {"action": "csv", "file": bad}, follow=True)
    assert (
        "a.csv: line 2, email: no person with email &#x27;x@y.example&#x27; — nothing was saved."
        in response.content.decode()
    )
    good = SimpleUploadedFile(
        "b.csv", f"email,period,tokens,usd,effective\n{org['infra_engineer'].email},month,7,,\n".encode()
    )
    response = client.post(reverse("budgets"), {"action": "csv", "file": good}, follow=True)
    assert "b.csv: 1 allowance(s) saved." in response.content.decode()
    assert Allowance.objects.get().tokens == 7
    response = client.post(reverse("budgets"), {"action": "delete_allowance", "allowance": Allowance.objects.get().pk})
    assert response.status_code == 302 and not Allowance.objects.exists()


# --- Burn, forecast and visibility ---------------------------------------------------------------------------


@pytest.fixture
def burning(org, clock):
    """Ivy: 1,000,000 tokens a month, 50,000 a day from the 1st to the 10th (and $1 a day)."""
    ivy = org["infra_engineer"]
    allowance_save(person=ivy, tokens=1_000_000, usd="100", start=date(2026, 1, 1))
    _daily(ivy, date(2026, 9, 1), TODAY, 50_000, "1")
    standings_refresh(today=TODAY)
    return ivy


@pytest.mark.django_db
def test_burn_and_forecast_figures(burning):
    _allowance, burn = person_burn(burning.pk, TODAY)
    assert (burn.used_tokens, burn.remaining_tokens, burn.used_usd) == (500_000, 500_000, Decimal("10.00"))
    assert burn.used_percent == 50.0  # tokens 50 %, USD 10 %: the higher decides
    assert burn.rate_tokens == 50_000
    assert burn.projected_tokens == 500_000 + 50_000 * 20
    assert burn.run_out_date == date(2026, 9, 20)


@pytest.mark.django_db
def test_person_page_and_api_show_the_same_burn_to_the_person_and_their_manager_only(client, org, burning):
    for user in (burning.user, org["platform_manager"].user, org["admin"]):
        client.force_login(user)
        page = client.get(reverse("person", args=[burning.pk])).content.decode()
        assert "Allowance used" in page and '<span title="500,000">500K</span> remaining' in page
        assert '<span class="stat-label">Runs out</span><span class="stat-value">20 Sep 2026</span>' in page
        assert 'data-chart="chart-burn"' in page
        api = client.get(reverse("api-v1:person-allowance", args=[burning.pk])).json()
        assert api["burn"]["used_tokens"] == 500_000
        assert api["burn"]["remaining_tokens"] == 500_000
        assert api["burn"]["projected_tokens"] == 1_500_000
        assert api["burn"]["run_out_date"] == "2026-09-20"
    for user in (org["product_engineer"].user, org["product_manager"].user):
        client.force_login(user)
        page = client.get(reverse("person", args=[burning.pk])).content.decode()
        assert "Allowance used</span>" not in page and "chart-burn" not in page and "No allowance is set" not in page
        assert client.get(reverse("api-v1:person-allowance", args=[burning.pk])).status_code == 403
        assert client.get(reverse("api-v1:allowance-list")).json()["results"] == []


@pytest.mark.django_db
def test_allowance_lists_follow_the_viewer(client, org, clock):
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    mine = allowance_save(person=ivy, tokens=5, start=TODAY)
    allowance_save(person=paul, tokens=6, start=TODAY)
    platform_default = allowance_save(team=org["platform"], tokens=7, start=TODAY)
    budget_save(team=org["product"], tokens=8, start=TODAY)
    client.force_login(ivy.user)
    assert [a["id"] for a in client.get(reverse("api-v1:allowance-list")).json()["results"]] == [mine.pk]
    assert client.get(reverse("api-v1:budget-list")).json()["results"] == []
    client.force_login(org["platform_manager"].user)
    ids = {a["id"] for a in client.get(reverse("api-v1:allowance-list")).json()["results"]}
    assert ids == {mine.pk, platform_default.pk}
    client.force_login(org["product_manager"].user)
    budgets = client.get(reverse("api-v1:budget-list")).json()["results"]
    assert [(b["tokens"], b["burn"]["used_tokens"], b["slack_configured"]) for b in budgets] == [(8, 0, False)]


# --- The allowance-used ranking ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_allowance_used_ranking_agrees_on_page_csv_and_api_and_lists_people_without_one_apart(client, org, clock):
    ivy, paul, pat = org["infra_engineer"], org["product_engineer"], org["platform_manager"]
    allowance_save(person=ivy, tokens=1000, start=date(2026, 1, 1))  # 600 used: 60 %
    allowance_save(person=paul, usd="10", start=date(2026, 1, 1))  # $9 used: 90 %
    allowance_save(person=pat, tokens=10_000, start=date(2026, 1, 1))  # 600 used: 6 %, more tokens than Paul
    usage_for(ivy, day=TODAY, tokens=600)
    usage_for(paul, day=TODAY, tokens=100, cost_usd=Decimal("9"))
    usage_for(pat, day=TODAY, tokens=600)
    no_allowance = person_in_team(org["product"], display_name="Nia Noallowance")
    usage_for(no_allowance, day=TODAY, tokens=50_000)
    client.force_login(org["admin"])
    params = {"metric": "allowance_used", "period": "month"}

    page = client.get(reverse("people-ranking"), params).content.decode()
    rows = page.split("No allowance")[0]
    assert rows.index("Paul Product") < rows.index("Ivy Infra") < rows.index("Pat Manager")
    assert "90.0%" in rows and "60.0%" in rows and "6.0%" in rows
    assert "Nia Noallowance" in page.split("No allowance")[1]

    exported = list(
        csv.DictReader(io.StringIO(client.get(reverse("people-ranking"), {**params, "format": "csv"}).content.decode()))
    )
    assert [(r["rank"], r["name"], r["allowance_used_pct"]) for r in exported] == [
        ("1", "Paul Product", "90.0"),
        ("2", "Ivy Infra", "60.0"),
        ("3", "Pat Manager", "6.0"),
        ("", "Nia Noallowance", ""),
    ]

    api = client.get(reverse("api-v1:leaderboard-people"), params).json()["results"]
    assert [(r["rank"], r["person"]["display_name"], r["allowance_used"]) for r in api] == [
        (
            int(r["rank"]) if r["rank"] else None,
            r["name"],
            float(r["allowance_used_pct"]) if r["allowance_used_pct"] else None,
        )
        for r in exported
    ]
    searched = client.get(reverse("api-v1:leaderboard-people"), {**params, "q": "ivy"}).json()["results"]
    assert [(r["rank"], r["allowance_used"]) for r in searched] == [(2, 60.0)]  # the real rank is kept


@pytest.mark.django_db
def test_engineers_cannot_rank_by_allowance_and_managers_only_within_their_team(client, org, clock):
    client.force_login(org["infra_engineer"].user)
    response = client.get(reverse("api-v1:leaderboard-people"), {"metric": "allowance_used"})
    assert response.status_code == 403
    page = client.get(reverse("people-ranking"), {"metric": "allowance_used"}).content.decode()
    assert "Ranked by total tokens instead" in page and "Allowance used (%)" not in page
    client.force_login(org["platform_manager"].user)
    assert client.get(reverse("api-v1:leaderboard-people"), {"metric": "allowance_used"}).status_code == 403
    response = client.get(
        reverse("api-v1:leaderboard-people"), {"metric": "allowance_used", "team": org["platform"].pk}
    )
    assert response.status_code == 200
    response = client.get(reverse("api-v1:leaderboard-teams"), {"metric": "allowance_used"})
    assert response.status_code == 400 and "ranks people only" in response.json()["metric"][0]


# --- Budget pages --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_team_budget_page_for_its_managers_and_admins_with_the_burn_down(client, org, burning):
    budget_save(team=org["platform"], tokens=2_000_000, start=date(2026, 9, 1))
    client.force_login(org["platform_manager"].user)
    page = client.get(reverse("team-budget", args=[org["platform"].pk])).content.decode()
    assert "Platform: budget" in page and 'data-chart="chart-burn"' in page and "Burn-down, September 2026" in page
    assert "Budget used" in page and "25%" in page  # 500,000 of 2,000,000
    assert "Set the team budget" not in page  # admins only
    client.force_login(org["product_manager"].user)
    assert client.get(reverse("team-budget", args=[org["platform"].pk])).status_code == 403
    client.force_login(org["admin"])
    response = client.post(
        reverse("team-budget", args=[org["platform"].pk]),
        {"action": "budget", "period": "month", "tokens": "-1", "start": "2026-09-01"},
        follow=True,
    )
    assert "Not saved — tokens: -1 is negative" in response.content.decode()
    assert TeamBudget.objects.get().tokens == 2_000_000


@pytest.mark.django_db
def test_the_notification_log_is_for_admins_who_can_retry_a_failed_send(
    client, org, sent_tasks, django_capture_on_commit_callbacks
):
    Notification.objects.create(
        channel="email",
        recipient="ivy@acme.example",
        subject_kind="person",
        subject_id=1,
        trigger="80",
        period_start=date(2026, 9, 1),
        title="Tokenboard: Ivy has used 80%",
        reason="crossed 80% (used 82%)",
        body_text="x",
        status="failed",
        last_error="ConnectionRefusedError: mail server down",
    )
    client.force_login(org["infra_engineer"].user)
    assert client.get(reverse("notifications")).status_code == 403
    assert client.get(reverse("budgets")).status_code == 403
    client.force_login(org["platform_manager"].user)
    assert client.get(reverse("budgets")).status_code == 403
    assert client.post(reverse("team-budget", args=[org["platform"].pk]), {"action": "budget"}).status_code == 403
    client.force_login(org["admin"])
    page = client.get(reverse("notifications")).content.decode()
    assert "ivy@acme.example" in page and "crossed 80% (used 82%)" in page and "mail server down" in page
    failed = Notification.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("notifications"), {"notification": failed.pk})
    sent_tasks.deliver_notification.assert_called_once_with(failed.pk)


@pytest.mark.django_db
def test_people_without_a_team_default_still_appear_apart(org, clock):
    from leaderboard.budgets import allowance_ranking
    from usage.access import viewer_for

    lone = PersonFactory(display_name="Lone Wolf")
    usage_for(lone, day=TODAY, tokens=5)
    standings_refresh(today=TODAY)
    ranked, apart = allowance_ranking(TODAY, viewer_for(org["admin"]))
    assert ranked == [] and [s.display_name for s in apart] == ["Lone Wolf"]


@pytest.mark.django_db
def test_a_reached_limit_reports_the_day_it_was_reached(org, clock):
    ivy = org["infra_engineer"]
    allowance_save(person=ivy, tokens=1000, start=date(2026, 9, 1))
    _daily(ivy, date(2026, 9, 1), TODAY, 300)  # 1,200 by the 4th
    standings_refresh(today=TODAY)
    _allowance, burn = person_burn(ivy.pk, TODAY, with_daily=True)
    assert burn.reached and burn.run_out_date == date(2026, 9, 4)
    assert person_burn(ivy.pk, TODAY)[1].run_out_date is None  # without the daily figures it is not known


@pytest.mark.django_db
def test_the_team_page_shows_its_budget_line_to_its_managers(client, org, burning):
    budget_save(team=org["platform"], tokens=2_000_000, start=date(2026, 9, 1))
    client.force_login(org["platform_manager"].user)
    page = client.get(reverse("team", args=[org["platform"].pk])).content.decode()
    assert "Budget, September 2026: <strong>25% used</strong>, projected 75%." in page
    client.force_login(org["infra_engineer"].user)
    page = client.get(reverse("team", args=[org["platform"].pk])).content.decode()
    assert "Budget, September" not in page
