import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db.models import Sum
from django.test import RequestFactory

from usage.models import Allowance, ImportBatch, Person, Team, TeamBudget, UsageRecord


@pytest.mark.django_db
def test_seed_demo_builds_the_org_through_the_real_pipeline_and_is_safe_to_rerun():
    call_command("seed_demo")
    assert Person.objects.count() == 60
    assert (
        Team.objects.filter(parent__isnull=True).count() == 3 and Team.objects.filter(parent__isnull=False).count() == 8
    )
    formats = set(ImportBatch.objects.values_list("detected_format", flat=True))
    assert len(formats) >= 5, formats
    assert set(ImportBatch.objects.values_list("status", flat=True)) == {"succeeded"}
    assert set(UsageRecord.objects.values_list("provider", flat=True)) >= {"openai", "anthropic", "cursor"}
    for username in ("admin", "manager", "engineer"):
        login = RequestFactory().post("/accounts/login/")  # the login throttle (django-axes) needs the request
        assert authenticate(login, username=username, password="tokenboard") is not None
    totals = UsageRecord.objects.aggregate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"))
    records = UsageRecord.objects.count()
    # Issue 13: team defaults, three personal allowances, and a budget on the demo manager's team.
    assert set(Allowance.objects.filter(team__isnull=False).values_list("team__name", flat=True)) == {
        "Engineering",
        "Research",
    }
    assert Allowance.objects.filter(person__isnull=False).count() == 3
    budget = TeamBudget.objects.get()
    assert budget.tokens > 0 and budget.team.managers.filter(user__username="manager").exists()
    allowances = Allowance.objects.count()

    call_command("seed_demo")
    assert Person.objects.count() == 60 and UsageRecord.objects.count() == records
    assert Allowance.objects.count() == allowances and TeamBudget.objects.count() == 1
    assert UsageRecord.objects.aggregate(tokens=Sum("total_tokens"), cost=Sum("cost_usd")) == totals


@pytest.mark.django_db
def test_seed_demo_if_empty_leaves_existing_data_alone(capsys):
    Person.objects.create(email="someone@acme.example", display_name="Someone")
    call_command("seed_demo", "--if-empty")
    assert "already present" in capsys.readouterr().out
    assert not ImportBatch.objects.exists()
