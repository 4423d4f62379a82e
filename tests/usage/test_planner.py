import pytest
from django.db import connection, transaction

from usage.services.planner import planner_settings, sorted_grouping


def shown(*names: str) -> tuple[str, ...]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(['current_setting(%s)'] * len(names))}", names)
        return cursor.fetchone()


@pytest.mark.needs_services
@pytest.mark.django_db
def test_planner_settings_hold_inside_the_block_and_come_back_after_it_even_when_it_fails():
    with transaction.atomic():
        before = shown("enable_hashjoin", "enable_mergejoin")
        assert before == ("on", "on")
        with pytest.raises(RuntimeError), planner_settings(enable_hashjoin="off", enable_mergejoin="off"):
            assert shown("enable_hashjoin", "enable_mergejoin") == ("off", "off")
            raise RuntimeError("the block's statement failed")
        assert shown("enable_hashjoin", "enable_mergejoin") == before
        with sorted_grouping():
            assert shown("enable_hashagg") == ("off",)
        assert shown("enable_hashagg") == ("on",)
