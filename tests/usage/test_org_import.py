from datetime import date
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Q

from tests.factories import IdentityFactory, usage_for
from usage.models import Identity, Membership, Person, StandingsDirtyDay, StandingsDirtyPerson, Team
from usage.services.org import org_import
from usage.services.standings import standings_refresh

ORG = """email,name,team,manager,openai_user_id,identities
ada@acme.example,Ada Lovelace,Engineering/Platform/Infra,yes,user-ada,anthropic:api_key:apikey_ada;cursor:email:ADA@acme.example
bob@acme.example,Bob Byte,Engineering/Product,no,,
"""


def team_on(person, day):
    membership = person.memberships.filter(Q(end__isnull=True) | Q(end__gte=day), start__lte=day).get()
    return membership.team


def write(tmp_path: Path, text: str, name: str = "org.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.django_db
def test_org_import_builds_the_team_tree_people_managers_and_identities():
    result = org_import(text=ORG, file_name="org.csv", today=date(2026, 9, 1))
    assert (result.people_created, result.teams_created) == (2, 4)
    infra = Team.objects.get(name="Infra")
    assert infra.parent.name == "Platform" and infra.parent.parent.name == "Engineering"
    ada = Person.objects.get(email="ada@acme.example")
    assert list(infra.managers.all()) == [ada]
    assert team_on(ada, date(2026, 9, 1)) == infra
    assert set(Identity.objects.filter(person=ada).values_list("provider", "kind", "value")) == {
        ("openai", "user_id", "user-ada"),
        ("anthropic", "api_key", "apikey_ada"),
        ("cursor", "email", "ADA@acme.example"),
    }


@pytest.mark.django_db
def test_rerunning_the_org_import_updates_and_never_duplicates():
    org_import(text=ORG, file_name="org.csv", today=date(2026, 9, 1))
    result = org_import(text=ORG.replace("Bob Byte", "Bob B."), file_name="org.csv", today=date(2026, 9, 2))
    assert (result.people_created, result.people_updated, result.teams_created) == (0, 1, 0)
    assert Person.objects.count() == 2 and Team.objects.count() == 4 and Membership.objects.count() == 2
    assert Person.objects.get(email="bob@acme.example").display_name == "Bob B."


@pytest.mark.django_db
def test_a_team_move_closes_the_old_membership_and_keeps_history():
    org_import(text=ORG, file_name="org.csv", today=date(2026, 9, 1))
    moved = "email,name,team,effective\nbob@acme.example,Bob Byte,Engineering/Platform,2026-09-15\n"
    assert org_import(text=moved, file_name="org.csv").team_moves == 1
    bob = Person.objects.get(email="bob@acme.example")
    assert team_on(bob, date(2026, 9, 14)).name == "Product"
    assert team_on(bob, date(2026, 9, 15)).name == "Platform"
    assert list(bob.memberships.values_list("end", flat=True)) == [date(2026, 9, 14), None]


@pytest.mark.django_db
def test_existing_identities_with_a_matching_email_are_linked_to_new_people():
    identity = IdentityFactory(provider="cursor", kind="email", value="Bob@Acme.example")
    directory_identity = IdentityFactory(
        provider="openai", kind="user_id", value="user-b", owner_email="bob@acme.example"
    )
    org_import(text=ORG, file_name="org.csv", today=date(2026, 9, 1))
    identity.refresh_from_db()
    directory_identity.refresh_from_db()
    assert identity.person.email == "bob@acme.example"
    assert directory_identity.person.email == "bob@acme.example"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("email,name\na@acme.example,A\n", "org.csv: line 1: missing required column(s): team"),
        (
            "email,name,team\na@acme.example,A,X\nA@acme.example,B,Y\n",
            "org.csv: line 3: duplicate email a@acme.example (first on line 2)",
        ),
        ("email,name,team\nnot-an-email,A,X\n", "org.csv: line 2: invalid email 'not-an-email'"),
        ("email,name,team,manager\na@acme.example,A,X,maybe\n", "org.csv: line 2: manager must be yes or no"),
        (
            "email,name,team,identities\na@acme.example,A,X,openai:user_id\n",
            "org.csv: line 2: bad identity 'openai:user_id'",
        ),
    ],
)
@pytest.mark.django_db
def test_a_bad_org_file_is_rejected_whole_with_its_line(tmp_path, text, message):
    org_import(text=ORG, file_name="org.csv", today=date(2026, 9, 1))
    before = (Person.objects.count(), Team.objects.count(), Membership.objects.count(), Identity.objects.count())
    with pytest.raises(CommandError) as raised:
        call_command(
            "import_org", str(write(tmp_path, text + "z@acme.example,Z,New/Team\n" if "missing" in message else text))
        )
    assert str(raised.value).startswith(message)
    assert (
        Person.objects.count(),
        Team.objects.count(),
        Membership.objects.count(),
        Identity.objects.count(),
    ) == before


@pytest.mark.django_db
def test_import_org_command_prints_what_changed(tmp_path, capsys):
    call_command("import_org", str(write(tmp_path, ORG)))
    assert "org.csv: 2 people created, 0 updated, 4 teams created" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_org_import_marks_only_the_people_it_changes_for_a_refresh():
    org_import(text=ORG, file_name="org.csv", today=date(2026, 9, 1))
    ada, bob = Person.objects.get(email="ada@acme.example"), Person.objects.get(email="bob@acme.example")
    for person, day in ((ada, date(2026, 8, 3)), (bob, date(2026, 8, 4))):
        usage_for(person, day=day, tokens=100)
    standings_refresh(today=date(2026, 9, 2))
    assert not StandingsDirtyDay.objects.exists() and not StandingsDirtyPerson.objects.exists()

    # The same directory again: nobody's name, team or identities change, so nothing is marked.
    org_import(text=ORG, file_name="org.csv", today=date(2026, 9, 2))
    assert not StandingsDirtyDay.objects.exists() and not StandingsDirtyPerson.objects.exists()

    # Bob renamed: his days and his place on the boards, not Ada's.
    org_import(text=ORG.replace("Bob Byte", "Bob B."), file_name="org.csv", today=date(2026, 9, 2))
    assert set(StandingsDirtyDay.objects.values_list("day", flat=True)) == {date(2026, 8, 4)}
    assert set(StandingsDirtyPerson.objects.values_list("person_id", flat=True)) == {bob.pk}
