import io
from datetime import date

import factory
from django.contrib.auth import get_user_model

from usage.models import Identity, ImportBatch, Membership, Person, Team, UsageRecord
from usage.services.imports import import_batch_create, import_batch_process
from usage.services.standings import standings_mark_days


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    email = factory.Sequence(lambda n: f"person{n}@acme.example")
    display_name = factory.Faker("name")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    person = factory.SubFactory(PersonFactory)
    team = factory.SubFactory(TeamFactory)
    start = date(2020, 1, 1)


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    provider = "openai"
    kind = "user_id"
    value = factory.Sequence(lambda n: f"user-{n}")


class ImportBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportBatch

    source = "command"
    original_name = "test.json"
    sha256 = factory.Sequence(lambda n: f"{n:064d}")
    status = "succeeded"


class UsageRecordFactory(factory.django.DjangoModelFactory):
    """Pass input/cache/output tokens; total_tokens is derived like the pipeline does."""

    class Meta:
        model = UsageRecord

    day = date(2026, 9, 1)
    provider = "openai"
    identity = factory.SubFactory(IdentityFactory)
    model = "gpt-5"
    import_batch = factory.SubFactory(ImportBatchFactory)
    input_tokens = 0
    cache_write_tokens = 0
    cache_read_tokens = 0
    output_tokens = 0
    total_tokens = factory.LazyAttribute(
        lambda r: r.input_tokens + r.cache_write_tokens + r.cache_read_tokens + r.output_tokens
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # As the import pipeline does: a change to usage marks its day for the standings refresh.
        record = super()._create(model_class, *args, **kwargs)
        standings_mark_days([record.day])
        return record


def person_in_team(team: Team, *, start: date = date(2020, 1, 1), user=None, **kwargs) -> Person:
    person = PersonFactory(user=user, **kwargs)
    MembershipFactory(person=person, team=team, start=start)
    return person


def usage_for(
    person: Person, *, day: date, tokens: int, provider: str = "openai", model: str = "gpt-5", **kwargs
) -> UsageRecord:
    """A record of `tokens` input tokens on `day`, attributed to `person` through a fresh identity."""
    identity = IdentityFactory(provider=provider, person=person)
    return UsageRecordFactory(identity=identity, day=day, input_tokens=tokens, provider=provider, model=model, **kwargs)


CURSOR_HEADER = (
    '"Date","User","Cloud Agent ID","Automation ID","Kind","Model","Max Mode","Input (w/ Cache Write)",'
    '"Input (w/o Cache Write)","Cache Read","Output Tokens","Total Tokens","Cost"\n'
)


def cursor_csv(*rows: tuple[object, str, str, int]) -> bytes:
    """(day, user, model, output tokens) → a Cursor team usage CSV."""
    lines = [
        f'"{day}T10:00:00.000Z","{user}","","","Included","{model}","No","0","0","0","{out}","{out}","Included"\n'
        for day, user, model, out in rows
    ]
    return (CURSOR_HEADER + "".join(lines)).encode()


def imported(content: bytes, name: str = "cursor.csv") -> ImportBatch:
    """The file imported through the pipeline; it must succeed."""
    batch = import_batch_create(file=io.BytesIO(content), name=name, queue=False)
    processed = import_batch_process(batch.pk)
    assert processed.status == "succeeded", processed.error_summary
    return processed
