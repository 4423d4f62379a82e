"""The leaderboard pages: rendering, htmx partials, role rules, CSV exports, fallbacks and the profile."""

import csv
import io
import json
import re
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from leaderboard.views import PAGE_SIZE
from tests.factories import IdentityFactory, UsageRecordFactory, person_in_team, usage_for
from usage.csv_export import csv_safe
from usage.models import ApiToken, Person
from usage.services.standings import standings_refresh

SEPT = "period=month&date=2026-09-15"


@pytest.fixture
def as_user():
    def login(person_or_user):
        client = Client()
        user = getattr(person_or_user, "user", None) or person_or_user
        client.force_login(user)
        return client

    return login


@pytest.fixture
def usage(org):
    """September usage: Ivy (Infra) leads, Paul (Product) second, Pat (Platform manager) third."""
    usage_for(org["infra_engineer"], day=date(2026, 9, 2), tokens=3_400_000, cost_usd=Decimal("12.50"))
    usage_for(org["product_engineer"], day=date(2026, 9, 3), tokens=1_200_000, cost_usd=Decimal("1234.56"))
    usage_for(org["platform_manager"], day=date(2026, 9, 4), tokens=500_000, cost_usd=Decimal("2.00"))
    # August: Paul led, so in September Ivy climbed and Paul dropped.
    usage_for(org["product_engineer"], day=date(2026, 8, 3), tokens=900_000)
    usage_for(org["infra_engineer"], day=date(2026, 8, 3), tokens=100_000)
    return org


def ranking_rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<a href="/people/\d+/[^"]*">([^<]+)</a>', body)


def test_people_ranking_lists_people_in_rank_order_with_readable_numbers(usage, as_user):
    response = as_user(usage["infra_engineer"]).get(f"/?{SEPT}")
    html = response.content.decode()
    assert response.status_code == 200
    assert ranking_rows(html) == ["Ivy Infra", "Paul Product", "Pat Manager"]
    # 3,400,000 tokens read as 3.4M, with the exact figure in the tooltip.
    assert '<span title="3,400,000">3.4M</span>' in html
    assert '<th scope="col"' in html and '<th scope="row"' in html


def test_rank_change_arrows_show_climbers_drops_and_newcomers(usage, as_user):
    html = as_user(usage["infra_engineer"]).get(f"/?{SEPT}").content.decode()
    ivy, paul, pat = html.split('<th scope="row"')[1:4]
    previous_cells = html.split('<td class="change">')[1:4]
    assert "▲" in previous_cells[0] and ">1<" in previous_cells[0]  # Ivy: #2 in August → #1
    assert "▼" in previous_cells[1]  # Paul: #1 → #2
    assert "new" in previous_cells[2]  # Pat had no August usage
    assert "Ivy Infra" in ivy and "Paul Product" in paul and "Pat Manager" in pat


def test_names_in_the_ranking_tables_and_the_team_filter_are_escaped(usage, as_user):
    """The tables' rows and the team select are written in Python (leaderboard/templatetags), not by the template
    engine's autoescaping: a name is still text, never markup."""
    Person.objects.filter(pk=usage["infra_engineer"].pk).update(display_name='<b>Ivy</b> & "Co"')
    usage["infra"].name = "R&D <i>Infra</i>"
    usage["infra"].save()
    standings_refresh(all_days=True)
    admin = as_user(usage["admin"])
    people = admin.get(f"/?{SEPT}").content.decode()
    teams = admin.get(f"/teams/?{SEPT}").content.decode()
    assert "&lt;b&gt;Ivy&lt;/b&gt; &amp; &quot;Co&quot;</a>" in people
    assert "R&amp;D &lt;i&gt;Infra&lt;/i&gt;</a>" in people
    assert "R&amp;D &lt;i&gt;Infra&lt;/i&gt;</a>" in teams
    assert "&lt;b&gt;Ivy&lt;/b&gt; &amp; &quot;Co&quot;</a>" in teams  # Infra's top user
    assert re.search(r'<option value="\d+">(\xa0)*R&amp;D &lt;i&gt;Infra&lt;/i&gt;</option>', teams)
    assert "<b>Ivy</b>" not in people + teams and "<i>Infra</i>" not in people + teams


def test_htmx_request_gets_only_the_table_partial_and_varies_on_the_header(usage, as_user):
    client = as_user(usage["infra_engineer"])
    partial = client.get(f"/?{SEPT}&metric=input_tokens", HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert "<html" not in html and 'id="controls"' not in html
    assert "<table" in html and "Input tokens" in html
    assert "HX-Request" in partial["Vary"]
    full = client.get(f"/?{SEPT}").content.decode()
    assert "<html" in full and 'id="controls"' in full and 'hx-push-url="true"' in full


def test_an_engineer_cannot_rank_everyone_by_cost(usage, as_user):
    # Hidden figures would still leak through the order of the ranking.
    html = as_user(usage["infra_engineer"]).get(f"/?{SEPT}&metric=cost_usd").content.decode()
    assert "Ranked by total tokens instead" in html
    assert '<option value="total_tokens" selected' in html
    assert '<option value="cost_usd"' not in html  # not even offered


def test_a_history_restore_request_gets_the_whole_page(usage, as_user):
    # htmx asks for the whole page when the back button lands on an uncached entry.
    response = as_user(usage["infra_engineer"]).get(
        f"/?{SEPT}", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_bad_parameters_fall_back_with_a_message_and_keep_the_rest(usage, as_user):
    response = as_user(usage["infra_engineer"]).get("/?period=fortnight&metric=output_tokens&date=2026-09-15&team=999")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Ignored a bad filter — period: unknown period &#x27;fortnight&#x27;" in html
    assert "Ignored a bad filter — team: no team with id 999" in html
    # The good metric survived the fallback.
    assert '<option value="output_tokens" selected>' in html


def test_a_custom_range_counts_only_when_the_custom_window_is_chosen(usage, as_user):
    client = as_user(usage["infra_engineer"])
    custom = client.get("/?period=custom&start=2026-08-01&end=2026-08-31").content.decode()
    assert ranking_rows(custom) == ["Paul Product", "Ivy Infra"]
    # A plain form always sends the date fields; with another window they are ignored.
    month = client.get(f"/?{SEPT}&start=2026-08-01&end=2026-08-31").content.decode()
    assert ranking_rows(month) == ["Ivy Infra", "Paul Product", "Pat Manager"]


def test_engineer_sees_pseudonyms_and_no_cost_for_others_but_their_own_cost(usage, as_user):
    Person.objects.filter(pk=usage["product_engineer"].pk).update(show_name=False)
    pseudonym = Person.objects.get(pk=usage["product_engineer"].pk).pseudonym
    html = as_user(usage["infra_engineer"]).get(f"/?{SEPT}").content.decode()
    assert "Paul Product" not in html and pseudonym in html
    assert "$12.50" in html  # the engineer's own cost
    assert "$1,234.56" not in html and "$2.00" not in html


def test_manager_sees_names_and_cost_only_for_their_subtree(usage, as_user):
    Person.objects.filter(pk=usage["product_engineer"].pk).update(show_name=False)
    html = as_user(usage["platform_manager"]).get(f"/?{SEPT}").content.decode()
    assert "$12.50" in html  # Ivy is in Infra, under Platform
    assert "$1,234.56" not in html  # Paul is in Product
    assert "Paul Product" not in html
    product_html = as_user(usage["product_manager"]).get(f"/?{SEPT}").content.decode()
    assert "Paul Product" in product_html and "$1,234.56" in product_html


def test_admin_sees_every_cost(usage, as_user):
    html = as_user(usage["admin"]).get(f"/?{SEPT}").content.decode()
    assert all(amount in html for amount in ("$12.50", "$1,234.56", "$2.00"))


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("Ada Lovelace", "Ada Lovelace"),
        ("", ""),
    ],
)
def test_csv_cells_that_a_spreadsheet_would_run_get_a_leading_quote(value, safe):
    assert csv_safe(value) == safe


def test_people_csv_export_escapes_formulas_and_hides_others_cost(usage, as_user):
    Person.objects.filter(pk=usage["product_engineer"].pk).update(display_name='=HYPERLINK("http://x","hi")')
    usage["infra"].name = "@Infra"
    usage["infra"].save()
    for url in (f"/?{SEPT}&format=csv",):
        response = as_user(usage["infra_engineer"]).get(url)
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        by_rank = {row["rank"]: row for row in rows}
        assert by_rank["2"]["name"] == '\'=HYPERLINK("http://x","hi")'
        assert by_rank["1"]["team"] == "'@Infra"
        assert by_rank["1"]["cost_usd"] == "12.500000"  # own cost
        assert by_rank["2"]["cost_usd"] == ""  # someone else's: not for an engineer
        assert by_rank["2"]["email"] == ""


def test_csv_export_has_every_row_not_just_one_page(org, as_user):
    for index in range(PAGE_SIZE + 5):
        person = person_in_team(org["product"], display_name=f"Person {index:03d}")
        usage_for(person, day=date(2026, 9, 2), tokens=1000 + index)
    rows = list(csv.reader(io.StringIO(as_user(org["admin"]).get(f"/?{SEPT}&format=csv").content.decode())))
    assert len(rows) == PAGE_SIZE + 5 + 1


def test_pagination_pins_the_viewers_own_row_when_it_is_off_the_page(org, as_user):
    for index in range(PAGE_SIZE + 5):
        person = person_in_team(org["product"], display_name=f"Person {index:03d}")
        usage_for(person, day=date(2026, 9, 2), tokens=10_000 + index)
    usage_for(org["infra_engineer"], day=date(2026, 9, 2), tokens=5)
    client = as_user(org["infra_engineer"])
    first = client.get(f"/?{SEPT}").content.decode()
    assert len(ranking_rows(first)) == PAGE_SIZE + 1
    assert ranking_rows(first)[-1] == "Ivy Infra"  # pinned after the page
    assert 'class="me"' in first and "Page 1 of 2" in first
    second = client.get(f"/?{SEPT}&page=2").content.decode()
    # On the page that holds it, the row is in its place and not pinned twice.
    assert ranking_rows(second).count("Ivy Infra") == 1
    assert "Your position, outside this page" not in second


def test_name_search_narrows_the_list_but_keeps_real_ranks(usage, as_user):
    html = as_user(usage["admin"]).get(f"/?{SEPT}&q=paul").content.decode()
    assert ranking_rows(html) == ["Paul Product"]
    assert '<td class="num rank">2</td>' in html


def test_person_page_shows_detail_to_the_person_and_a_summary_to_other_engineers(usage, as_user):
    ivy = usage["infra_engineer"]
    IdentityFactory(person=ivy, provider="anthropic", kind="api_key", value="apikey_ivy_secret")
    own = as_user(ivy).get(f"/people/{ivy.pk}/?{SEPT}").content.decode()
    assert "apikey_ivy_secret" in own and "$12.50" in own
    daily = json.loads(re.search(r'<script id="chart-daily" type="application/json">(.*?)</script>', own, re.S)[1])
    assert daily["data"][0]["type"] == "bar" and sum(daily["data"][0]["y"]) == 3_400_000
    assert "vendor/plotly-4.1.1.min.js" in own and "cdn" not in own.lower()
    other = as_user(usage["product_engineer"]).get(f"/people/{ivy.pk}/?{SEPT}").content.decode()
    assert "Ivy Infra" in other and "#1" in other
    assert "apikey_ivy_secret" not in other and "$12.50" not in other and 'id="chart-daily"' not in other


def test_rank_history_chart_has_a_point_per_window(usage, as_user):
    ivy = usage["infra_engineer"]
    html = as_user(ivy).get(f"/people/{ivy.pk}/?{SEPT}").content.decode()
    figure = json.loads(re.search(r'<script id="chart-rank" type="application/json">(.*?)</script>', html, re.S)[1])
    trace = figure["data"][0]
    assert trace["x"][-2:] == ["Aug 2026", "Sep 2026"] and trace["y"][-2:] == [2, 1]


def test_manager_sees_team_detail_for_their_subtree_and_only_a_summary_elsewhere(usage, as_user):
    client = as_user(usage["platform_manager"])
    infra = client.get(f"/teams/{usage['infra'].pk}/?{SEPT}").content.decode()
    assert "Export members CSV" in infra and "Ivy Infra" in infra and "$12.50" in infra
    assert 'id="chart-trend"' in infra and '<svg class="sparkline"' in infra
    product = client.get(f"/teams/{usage['product'].pk}/?{SEPT}")
    html = product.content.decode()
    assert product.status_code == 200
    assert "Export members CSV" not in html and "$1,234.56" not in html
    assert "for this team's managers and admins" in html
    assert client.get(f"/teams/{usage['product'].pk}/members.csv?{SEPT}").status_code == 403


def test_members_csv_lists_the_subtree_with_shares(usage, as_user):
    response = as_user(usage["platform_manager"]).get(f"/teams/{usage['platform'].pk}/members.csv?{SEPT}")
    assert response.status_code == 200
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert set(rows) == {"Ivy Infra", "Pat Manager"}
    assert rows["Ivy Infra"]["total_tokens"] == "3400000" and rows["Ivy Infra"]["cost_usd"] == "12.500000"
    assert rows["Ivy Infra"]["share_of_team_tokens"] == "0.8718"  # 3.4M of 3.9M


def test_engineers_see_no_figures_for_teams_below_the_minimum_size(usage, as_user, settings):
    settings.TOKENBOARD_MIN_TEAM_SIZE = 3
    html = as_user(usage["product_engineer"]).get(f"/teams/?{SEPT}").content.decode()
    assert "too few active members" in html
    # Engineering has three active people, so its figures show.
    assert "5.1M" in html


def test_teams_can_be_ranked_per_active_member(usage, as_user):
    html = as_user(usage["admin"]).get(f"/teams/?{SEPT}&per=member").content.decode()
    assert "per active member" in html
    assert '<option value="member" selected>' in html


def test_movers_lists_climbers_drops_and_newcomers(usage, as_user):
    html = as_user(usage["admin"]).get(f"/movers/?{SEPT}").content.decode()
    climbers, drops, newcomers = html.split("<h2>")[1:4]
    assert "Ivy Infra" in climbers and "Pat Manager" in newcomers and "Paul Product" in drops


def test_titles_reward_efficiency_as_well_as_volume(org, as_user):
    # Ivy burns the most tokens; Paul, with fewer, serves most of his prompts from cache.
    for day in (2, 3, 4):
        usage_for(org["infra_engineer"], day=date(2026, 9, day), tokens=5_000_000)
    identity = IdentityFactory(person=org["product_engineer"])
    UsageRecordFactory(identity=identity, day=date(2026, 9, 2), input_tokens=100_000, cache_read_tokens=900_000)
    usage_for(org["product_engineer"], day=date(2026, 9, 2), tokens=10, model="gpt-4.1")
    html = as_user(org["admin"]).get(f"/?{SEPT}").content.decode()
    titles = html.split('class="titles"', 1)[1].split("</section>", 1)[0]
    cards = dict(re.findall(r'<span class="title-name">([^<]+).*?<a href="[^"]+">([^<]+)</a>', titles, re.S))
    assert cards["Top volume"] == "Ivy Infra"
    assert cards["Cache master "] == "Paul Product"
    assert cards["Widest model mix"] == "Paul Product"
    assert cards["Longest streak"] == "Ivy Infra"
    assert "Highest share of prompt tokens served from cache" in titles  # how it is earned


def test_no_data_yet_sends_admins_to_the_upload_page(org, as_user):
    admin_html = as_user(org["admin"]).get("/").content.decode()
    assert "No usage imported yet" in admin_html and 'href="/imports/upload/"' in admin_html
    engineer_html = as_user(org["infra_engineer"]).get("/").content.decode()
    assert "No usage imported yet" in engineer_html and "/imports/upload/" not in engineer_html


def test_a_window_without_usage_suggests_wider_windows(usage, as_user):
    html = as_user(usage["infra_engineer"]).get("/?period=month&date=2025-01-15").content.decode()
    assert "No usage in this window" in html and "period=90d" in html


def test_unassigned_usage_shows_its_count_and_a_link_to_admins_only(usage, as_user):
    stray = IdentityFactory(value="user-nobody")
    UsageRecordFactory(identity=stray, day=date(2026, 9, 5), input_tokens=7_000)
    admin_html = as_user(usage["admin"]).get(f"/?{SEPT}").content.decode()
    assert "1 identity with" in admin_html and 'href="/identities/"' in admin_html
    engineer_html = as_user(usage["infra_engineer"]).get(f"/?{SEPT}").content.decode()
    assert "not assigned to anyone" not in engineer_html


def test_profile_show_name_toggle_needs_a_csrf_token(org):
    client = Client(enforce_csrf_checks=True)
    client.force_login(org["infra_engineer"].user)
    refused = client.post("/profile/", {"action": "show_name"})
    assert refused.status_code == 403
    page = client.get("/profile/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    response = client.post("/profile/", {"action": "show_name", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    person = Person.objects.get(pk=org["infra_engineer"].pk)
    assert person.show_name is False
    assert person.pseudonym in client.get("/profile/").content.decode()
    client.post("/profile/", {"action": "show_name", "show_name": "on", "csrfmiddlewaretoken": token})
    assert Person.objects.get(pk=person.pk).show_name is True


def test_profile_creates_a_token_shown_once_and_revokes_it(org, as_user):
    client = as_user(org["infra_engineer"])
    created = client.post("/profile/", {"action": "create_token", "name": "laptop"})
    token = re.search(r'<code id="new-token" class="token">([^<]+)</code>', created.content.decode())[1]
    assert token.startswith("tb_") and "no-store" in created["Cache-Control"]
    api = Client().get("/api/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code != 401
    assert token not in client.get("/profile/").content.decode()  # shown once only
    record = ApiToken.objects.get(user=org["infra_engineer"].user)
    other = as_user(org["product_engineer"])
    other.post("/profile/", {"action": "revoke_token", "token": record.pk})
    assert ApiToken.objects.filter(pk=record.pk).exists()  # not theirs to revoke
    client.post("/profile/", {"action": "revoke_token", "token": record.pk})
    record.refresh_from_db()
    assert record.revoked_at is not None  # kept, so the API can say it was revoked
    assert Client().get("/api/v1/leaderboard/people/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_every_page_requires_login(usage):
    client = Client()
    for url in ("/", "/teams/", "/movers/", "/profile/", f"/people/{usage['infra_engineer'].pk}/", "/?format=csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def _queries_for(client, url: str) -> int:
    from django.db import connection

    standings_refresh()  # the worker's work, not the page's
    client.get(url)  # per-process and per-refresh caches (filter options, titles) warm, as for every later reader
    executed = []
    with connection.execute_wrapper(lambda execute, sql, *rest: executed.append(sql) or execute(sql, *rest)):
        assert client.get(url).status_code == 200
    return len(executed)


@pytest.mark.parametrize("url", [f"/?{SEPT}", f"/teams/?{SEPT}", f"/movers/?{SEPT}"])
def test_ranking_pages_make_the_same_number_of_queries_for_few_or_many_people(org, as_user, url):
    # No query per row: the page stays fast as the org grows (the 50 ms budget of docs/PERFORMANCE.md).
    client = as_user(org["platform_manager"])
    usage_for(org["infra_engineer"], day=date(2026, 9, 2), tokens=100)
    few = _queries_for(client, url)
    for index in range(30):
        person = person_in_team(org["product"], display_name=f"Person {index:03d}")
        usage_for(person, day=date(2026, 9, 2 + index % 20), tokens=1000 + index, model=f"model-{index % 4}")
    assert _queries_for(client, url) == few


def test_an_opted_out_title_holder_is_shown_by_pseudonym_to_other_engineers(usage, as_user):
    Person.objects.filter(pk=usage["infra_engineer"].pk).update(show_name=False)
    ivy = Person.objects.get(pk=usage["infra_engineer"].pk)
    for url in (f"/?{SEPT}", f"/?{SEPT}&q=a", f"/people/{ivy.pk}/?{SEPT}"):
        html = as_user(usage["product_engineer"]).get(url).content.decode()
        titles = html.split('class="titles"', 1)[1].split("</section>", 1)[0]
        assert ivy.pseudonym in titles and "Ivy Infra" not in html, url


def test_teams_csv_escapes_names_and_shows_cost_only_for_teams_the_viewer_manages(usage, as_user):
    usage["product"].name = "=cmd()"
    usage["product"].save()
    response = as_user(usage["platform_manager"]).get(f"/teams/?{SEPT}&format=csv")
    rows = {row["team"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert "'=cmd()" in rows
    assert rows["Platform"]["cost_usd"] == "14.500000"  # Ivy 12.50 + Pat 2.00, in the managed subtree
    assert rows["Engineering"]["cost_usd"] == ""  # the parent team is not the manager's


def test_a_bad_filter_message_shows_once_on_person_and_team_pages(usage, as_user):
    client = as_user(usage["admin"])
    for url in (f"/people/{usage['infra_engineer'].pk}/?period=bogus", f"/teams/{usage['infra'].pk}/?period=bogus"):
        assert client.get(url).content.decode().count("Ignored a bad filter") == 1, url
        # htmx swaps in only #page-body (hx-select), so the message must be inside it.
        swapped = client.get(url, HTTP_HX_REQUEST="true").content.decode().split('<div id="page-body">', 1)[1]
        assert swapped.count("Ignored a bad filter") == 1, url


def test_people_with_none_of_the_metric_are_not_ranked_on_it(usage, as_user):
    """Nobody has output tokens in September: nobody is ranked by them, and the page says so."""
    client = as_user(usage["infra_engineer"])
    html = client.get(f"/?{SEPT}&metric=output_tokens").content.decode()
    assert "<table" not in html and "No output tokens in this window" in html
    api = client.get(f"/api/v1/leaderboard/people/?{SEPT}&metric=output_tokens").json()
    assert api["count"] == 0 and api["results"] == []
    UsageRecordFactory(
        identity=IdentityFactory(person=usage["product_engineer"]), day=date(2026, 9, 5), output_tokens=10
    )
    api = client.get(f"/api/v1/leaderboard/people/?{SEPT}&metric=output_tokens").json()
    assert [(row["rank"], row["person"]["display_name"]) for row in api["results"]] == [(1, "Paul Product")]
