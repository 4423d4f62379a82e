"""A kept board with some people placed again (standings._BoardMerge) is the board sorted again from scratch."""

import logging
from array import array

from hypothesis import given
from hypothesis import strategies as st

from usage.services.standings import _BoardMerge

PEOPLE = 40


def board_of(totals: dict[int, int], names: dict[int, int]) -> tuple[array, array]:
    """People with some of the metric, by total, then name, then id: as _orders_write sorts them."""
    ranked = sorted((person for person, total in totals.items() if total > 0), key=lambda p: (-totals[p], names[p], p))
    return array("q", ranked), array("q", [totals[person] for person in ranked])


totals_strategy = st.dictionaries(st.integers(1, PEOPLE), st.integers(0, 6), min_size=1, max_size=PEOPLE)


@given(
    before=totals_strategy,
    now=totals_strategy,
    names=st.permutations(range(1, PEOPLE + 1)),
    misplaced=st.booleans(),
)
def test_people_placed_again_by_their_totals_before_give_the_board_sorted_again(before, now, names, misplaced):
    """Small totals make many ties. `misplaced`: one person's total before is wrong (boards out of step with their
    rows), which reading the board whole still gets right."""
    name_order = {person: position for position, person in enumerate(names)}
    people, totals = board_of(before, name_order)
    after = {**before, **now}
    totals_before = {person: before.get(person, 0) for person in now}
    if misplaced and people:
        totals_before[people[0]] = totals[0] + 1

    merge = _BoardMerge(people, totals, {person: after[person] for person in totals_before}, totals_before)

    assert merge.merged(name_order) == board_of(after, name_order)


def test_a_person_not_where_their_total_puts_them_is_found_by_reading_the_board_and_logged(caplog):
    people, totals = array("q", [7, 3, 5]), array("q", [9, 4, 2])
    with caplog.at_level(logging.WARNING, logger="usage.services.standings"):
        merge = _BoardMerge(people, totals, {3: 10}, {3: 2})  # person 3 is at 4, not 2
    assert merge.merged({}) == (array("q", [3, 7, 5]), array("q", [10, 9, 2]))
    assert "person 3 is not at total 2" in caplog.text
