import pytest
from django.db import transaction
from django.test import override_settings

from leaderboard.routers import ReadModelRouter
from usage.models import Person, StandingOrder, StandingWindow, TeamMemberStanding

WITH_REPLICA = {"default": {}, "replica": {}}


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
@pytest.mark.django_db(transaction=True)
def test_ranking_reads_go_to_the_replica_outside_transactions_and_everything_else_to_the_primary():
    router = ReadModelRouter()
    with override_settings(DATABASES=WITH_REPLICA):
        assert router.db_for_read(TeamMemberStanding) == "replica"
        assert router.db_for_read(StandingOrder) == "replica"
        assert router.db_for_read(StandingWindow) == "replica"
        # People, teams and memberships are read where they are written.
        assert router.db_for_read(Person) is None
        with transaction.atomic():
            # The refresh reads the windows it is rewriting: a lagging copy would make it miss its own work.
            assert router.db_for_read(StandingWindow) is None
        assert router.db_for_write(TeamMemberStanding) is None
        assert router.allow_migrate("replica", "usage") is False


def test_without_a_replica_everything_uses_the_one_database():
    assert ReadModelRouter().db_for_read(TeamMemberStanding) is None
