"""Identity mapping: unassigned identities first by size, assign with a search box, bulk-assign from a CSV.
Assigning re-attributes all past usage, so rankings change at once."""

import os
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.urls import reverse

from leaderboard.selectors import people_ranking
from leaderboard.windows import ranking_query_from
from tests.factories import IdentityFactory, UsageRecordFactory, usage_for
from usage.access import viewer_for
from usage.models import Identity
from usage.services.standings import standings_refresh

pytestmark = pytest.mark.django_db
# The browser tests drive Playwright's sync API, which keeps an event loop running in the test thread for the
# whole session (pytest-playwright's `playwright` fixture); the ORM calls around it are still synchronous and
# never concurrent with it. tests/e2e/conftest.py sets the same.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
DAY = date(2026, 9, 1)


@pytest.fixture
def admin_client(client, org):
    client.force_login(org["admin"])
    return client


def unassigned_usage(value: str, tokens: int, provider: str = "openai") -> Identity:
    identity = IdentityFactory(provider=provider, value=value)
    UsageRecordFactory(identity=identity, provider=provider, input_tokens=tokens)
    return identity


def ranking_names(org) -> list[str]:
    standings_refresh()  # what the refresh worker does after each commit
    standings = people_ranking(ranking_query_from(QueryDict("period=all")), viewer_for(org["admin"]))
    return [s.display_name for s in standings]


def assign(client, identity: Identity, **data):
    return client.post(reverse("identity-assign", args=[identity.pk]), data)


@pytest.mark.parametrize("persona", ["infra_engineer", "platform_manager"])
def test_engineers_and_managers_get_403_on_identity_pages(client, org, persona):
    identity = unassigned_usage("user-x", 10)
    client.force_login(org[persona].user)
    assert client.get(reverse("identities-list")).status_code == 403
    assert client.get(reverse("identities-people-search"), {"person": "Ivy"}).status_code == 403
    assert assign(client, identity, person_id=org[persona].pk).status_code == 403
    csv_file = SimpleUploadedFile(
        "map.csv", f"provider,kind,value,email\nopenai,user_id,user-x,{org[persona].email}\n".encode()
    )
    assert client.post(reverse("identities-bulk"), {"file": csv_file}).status_code == 403
    identity.refresh_from_db()
    assert identity.person is None


def test_unassigned_identities_come_first_biggest_gap_first_with_their_totals(admin_client, org):
    assigned = IdentityFactory(value="user-assigned", person=org["infra_engineer"])
    UsageRecordFactory(identity=assigned, input_tokens=9_000_000)
    unassigned_usage("user-small-gap", 1_000)
    unassigned_usage("user-big-gap", 250_000)
    page = admin_client.get(reverse("identities-list")).content.decode()
    order = [page.index(v) for v in ("user-big-gap", "user-small-gap", "user-assigned")]
    assert order == sorted(order)
    assert "250,000" in page and "9,000,000" in page
    assert "<strong>2</strong> unassigned identities hold\n" in page and "<strong>251,000</strong> tokens" in page


def test_the_list_filters_by_assignment_and_provider(admin_client, org):
    IdentityFactory(value="user-assigned", person=org["infra_engineer"])
    unassigned_usage("user-openai-gap", 5)
    unassigned_usage("apikey-anthropic-gap", 5, provider="anthropic")
    assigned_only = admin_client.get(reverse("identities-list"), {"state": "assigned"}).content.decode()
    assert "user-assigned" in assigned_only and "-gap" not in assigned_only
    anthropic_gaps = admin_client.get(
        reverse("identities-list"), {"state": "unassigned", "provider": "anthropic"}
    ).content.decode()
    assert "apikey-anthropic-gap" in anthropic_gaps and "user-openai-gap" not in anthropic_gaps


def test_the_people_search_offers_matching_people_as_assign_buttons(admin_client, org):
    response = admin_client.get(reverse("identities-people-search"), {"person": "ivy"}, headers={"hx-request": "true"})
    page = response.content.decode()
    assert f'name="person_id" value="{org["infra_engineer"].pk}"' in page and "Ivy Infra" in page
    assert "Paul Product" not in page
    assert (
        "No person matches" in admin_client.get(reverse("identities-people-search"), {"person": "zz"}).content.decode()
    )


def test_assigning_an_identity_moves_its_past_usage_and_changes_the_ranking(admin_client, org):
    ivy, paul = org["infra_engineer"], org["product_engineer"]
    usage_for(ivy, day=DAY, tokens=100_000)
    usage_for(paul, day=DAY, tokens=50_000)
    gap = unassigned_usage("user-Qm3PaulLaptop", 200_000)
    assert ranking_names(org) == ["Ivy Infra", "Paul Product"]
    response = assign(admin_client, gap, person_id=paul.pk)
    assert response.status_code == 302
    gap.refresh_from_db()
    assert gap.person == paul
    # Past usage follows the identity: Paul's 50,000 + 200,000 now outranks Ivy's 100,000.
    assert ranking_names(org) == ["Paul Product", "Ivy Infra"]
    page = admin_client.get(response["Location"]).content.decode()
    assert "200,000 tokens in 1 daily records count for them" in page


def test_without_js_the_typed_email_or_a_unique_name_is_enough(admin_client, org):
    gap = unassigned_usage("user-1", 10)
    assign(admin_client, gap, person=org["infra_engineer"].email.upper())
    gap.refresh_from_db()
    assert gap.person == org["infra_engineer"]
    assign(admin_client, gap, person="Paul Prod")
    gap.refresh_from_db()
    assert gap.person == org["product_engineer"]


def test_an_ambiguous_or_unknown_person_changes_nothing_and_says_why(admin_client, org):
    gap = unassigned_usage("user-1", 10)
    # "Manager" matches both managers: the admin is asked to type the email.
    page = admin_client.post(
        reverse("identity-assign", args=[gap.pk]), {"person": "Manager"}, follow=True
    ).content.decode()
    assert "matches several people" in page and "type the email" in page
    page = admin_client.post(
        reverse("identity-assign", args=[gap.pk]), {"person": "nobody@acme.example"}, follow=True
    ).content.decode()
    assert "No person matches" in page
    gap.refresh_from_db()
    assert gap.person is None


def test_unassigning_returns_usage_to_the_unassigned_pile(admin_client, org):
    identity = IdentityFactory(person=org["infra_engineer"])
    UsageRecordFactory(identity=identity, input_tokens=10)
    assign(admin_client, identity, unassign="1")
    identity.refresh_from_db()
    assert identity.person is None
    assert ranking_names(org) == []


def test_after_assigning_the_admin_returns_to_the_same_filtered_page_but_never_off_site(admin_client, org):
    gap = unassigned_usage("user-1", 10)
    back = reverse("identities-list") + "?state=unassigned&page=2"
    assert assign(admin_client, gap, person_id=org["infra_engineer"].pk, next=back)["Location"] == back
    evil = assign(admin_client, gap, person_id=org["infra_engineer"].pk, next="https://evil.example/")
    assert evil["Location"] == reverse("identities-list")


def bulk(client, text: str, name: str = "map.csv"):
    return client.post(reverse("identities-bulk"), {"file": SimpleUploadedFile(name, text.encode())})


def test_bulk_csv_assigns_every_line_and_creates_identities_not_seen_yet(admin_client, org):
    gap = unassigned_usage("user-1", 10)
    text = (
        "provider,kind,value,email\n"
        f"openai,user_id,user-1,{org['infra_engineer'].email.upper()}\n"
        f"anthropic,api_key,apikey_01Future,{org['product_engineer'].email}\n"
    )
    response = bulk(admin_client, text)
    assert response.status_code == 302
    gap.refresh_from_db()
    assert gap.person == org["infra_engineer"]
    future = Identity.objects.get(provider="anthropic", kind="api_key", value="apikey_01Future")
    assert future.person == org["product_engineer"]
    assert "2 line(s); 2 identities assigned (1 new" in admin_client.get(response["Location"]).content.decode()


def test_a_bad_line_in_the_bulk_csv_changes_nothing_and_names_the_line(admin_client, org):
    gap = unassigned_usage("user-1", 10)
    text = (
        "provider,kind,value,email\n"
        f"openai,user_id,user-1,{org['infra_engineer'].email}\n"
        "openai,user_id,user-2,ghost@acme.example\n"
        "opneai,user_id,user-3,ghost@acme.example\n"
    )
    response = bulk(admin_client, text)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was changed. 2 bad line(s)" in page
    assert "map.csv: line 3: no person with email ghost@acme.example" in page
    assert "map.csv: line 4: unknown provider &#x27;opneai&#x27;" in page
    gap.refresh_from_db()
    # All or nothing: line 2 was fine, but it is not applied either.
    assert gap.person is None
    assert not Identity.objects.filter(value="user-2").exists()


def test_a_bulk_csv_missing_a_column_is_rejected_naming_it(admin_client):
    page = bulk(admin_client, "provider,kind,value\nopenai,user_id,u\n").content.decode()
    assert "map.csv: line 1: missing column(s) email" in page


@pytest.mark.browser
def test_in_a_browser_the_search_box_offers_people_and_a_click_assigns(live_server, org, playwright):
    from tests.conftest import CHROMIUM

    gap = unassigned_usage("user-Qm3IvyDesktop", 1_000)
    # pytest-playwright's session-wide `playwright`: only one sync Playwright may run per process.
    browser = playwright.chromium.launch(executable_path=CHROMIUM)
    try:
        page = browser.new_page()
        page.goto(f"{live_server.url}{reverse('login')}")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "pw")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/overview/")
        page.goto(f"{live_server.url}{reverse('identities-list')}")
        page.fill(f"#people-{gap.pk} >> xpath=.. >> input[name=person]", "ivy")
        page.click(f"#people-{gap.pk} button:has-text('Ivy Infra')")
        page.wait_for_selector("text=count for them")
    finally:
        browser.close()
    gap.refresh_from_db()
    assert gap.person == org["infra_engineer"]


def test_the_identities_pager_says_previous_and_next_not_newer_and_older(admin_client, monkeypatch):
    monkeypatch.setattr("usage.views.PAGE_SIZE", 2)
    for index in range(5):
        unassigned_usage(f"key-{index}", tokens=1000 * (index + 1))
    html = admin_client.get(reverse("identities-list"), {"page": 2}).content.decode()
    assert "← Previous" in html and "Next →" in html
    assert "Newer" not in html and "Older" not in html
