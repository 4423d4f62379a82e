import pytest
from django.core.exceptions import PermissionDenied

from tests.factories import UserFactory
from usage.access import (
    access_team_detail,
    can_see_person_detail,
    can_see_team_figures,
    person_display_name,
    require_usage_access,
    viewer_for,
)


@pytest.mark.django_db
def test_roles_follow_the_org(org):
    assert viewer_for(org["platform_manager"].user).role == "manager"
    assert viewer_for(org["infra_engineer"].user).role == "engineer"
    assert viewer_for(org["admin"]).role == "admin"
    assert viewer_for(UserFactory(username="nobody")).role == "engineer"


@pytest.mark.django_db
def test_a_manager_sees_detail_for_their_whole_subtree_only(org):
    manager = viewer_for(org["platform_manager"].user)
    assert can_see_person_detail(manager, org["infra_engineer"].pk)  # Infra is under Platform
    assert not can_see_person_detail(manager, org["product_engineer"].pk)
    assert access_team_detail(manager, org["infra"].pk) == org["infra"]
    with pytest.raises(PermissionDenied):
        access_team_detail(manager, org["product"].pk)


@pytest.mark.django_db
def test_an_engineer_sees_only_their_own_detail(org):
    engineer = viewer_for(org["infra_engineer"].user)
    assert can_see_person_detail(engineer, org["infra_engineer"].pk)
    assert not can_see_person_detail(engineer, org["product_engineer"].pk)
    with pytest.raises(PermissionDenied):
        require_usage_access(engineer)


@pytest.mark.django_db
def test_opted_out_people_show_their_pseudonym_to_those_without_detail(org):
    person = org["product_engineer"]
    person.show_name = False
    person.save()
    args = (person.pk, person.display_name, person.pseudonym, person.show_name)
    assert person_display_name(viewer_for(org["infra_engineer"].user), *args) == person.pseudonym
    assert person_display_name(viewer_for(org["product_manager"].user), *args) == person.display_name
    assert person.pseudonym and person.pseudonym != person.display_name


@pytest.mark.django_db
def test_small_teams_hide_figures_from_engineers_but_not_from_their_managers(org, settings):
    settings.TOKENBOARD_MIN_TEAM_SIZE = 3
    assert not can_see_team_figures(viewer_for(org["infra_engineer"].user), org["product"].pk, active_members=2)
    assert can_see_team_figures(viewer_for(org["infra_engineer"].user), org["product"].pk, active_members=3)
    assert can_see_team_figures(viewer_for(org["product_manager"].user), org["product"].pk, active_members=1)


@pytest.mark.django_db
def test_only_admins_and_managers_within_their_subtree_rank_by_cost(org):
    from usage.access import can_rank_by_cost

    assert can_rank_by_cost(viewer_for(org["admin"]), None)
    manager = viewer_for(org["platform_manager"].user)
    assert can_rank_by_cost(manager, org["infra"].pk)
    assert not can_rank_by_cost(manager, org["product"].pk)
    assert not can_rank_by_cost(manager, None)  # everyone's cost order would leak
    assert not can_rank_by_cost(viewer_for(org["infra_engineer"].user), org["infra"].pk)


@pytest.mark.django_db
def test_the_raw_usage_scope_is_everyone_for_admins_and_the_managed_subtree_for_managers(org):
    from usage.access import usage_scope

    assert usage_scope(viewer_for(org["admin"])) is None
    manager = viewer_for(org["platform_manager"].user)
    assert usage_scope(manager) == {org["platform_manager"].pk, org["infra_engineer"].pk}
    assert usage_scope(manager, person_id=org["infra_engineer"].pk, team_id=org["infra"].pk)
    for outside in ({"person_id": org["product_engineer"].pk}, {"team_id": org["product"].pk}):
        with pytest.raises(PermissionDenied):
            usage_scope(manager, **outside)
    with pytest.raises(PermissionDenied):
        usage_scope(viewer_for(org["infra_engineer"].user))


@pytest.mark.django_db
def test_a_cost_ranking_is_checked_against_the_team_filter_it_is_computed_with(org):
    from usage.access import require_cost_ranking

    manager = viewer_for(org["product_manager"].user)
    require_cost_ranking(manager, "cost_usd", org["product"].pk)
    require_cost_ranking(manager, "total_tokens", None)
    with pytest.raises(PermissionDenied, match="metric=cost_usd"):
        require_cost_ranking(manager, "cost_usd", None)


@pytest.mark.django_db
def test_the_admin_gate_of_pages_refuses_before_the_view_runs(org, rf):
    from usage.access import admin_required

    ran = []
    page = admin_required(lambda request: ran.append(request) or "page")
    request = rf.get("/imports/")
    request.user = org["platform_manager"].user
    with pytest.raises(PermissionDenied):
        page(request)
    assert ran == []
    request.user = org["admin"]
    assert page(request) == "page"
