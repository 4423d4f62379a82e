"""Share-safe mode: watermarked exports, cost-ranked orders for admins only, pseudonyms honoured in exports."""

import csv
import io
from datetime import date

import pytest

from tests.factories import usage_for

WINDOW = {"period": "month", "date": "2026-09-15"}


@pytest.fixture
def share_safe(settings, org):
    settings.TOKENBOARD_SHARE_SAFE = True
    usage_for(org["infra_engineer"], day=date(2026, 9, 3), tokens=5_000)
    usage_for(org["product_engineer"], day=date(2026, 9, 3), tokens=3_000)
    org["admin"].email = "root@acme.example"
    org["admin"].save()
    return org


def test_a_watermarked_export_names_its_viewer_the_time_and_the_filters(share_safe, client):
    client.force_login(share_safe["admin"])
    body = client.get("/", {**WINDOW, "metric": "output_share", "format": "csv"}).content.decode()
    first, *rest = body.splitlines()
    assert first.startswith("Exported by root@acme.example at 20")
    assert "period=month" in first and "metric=output_share" in first and "do not share" in first
    rows = list(csv.DictReader(io.StringIO("\n".join(rest))))
    assert rows and all(row["watermark"].startswith("root@acme.example 20") for row in rows)


@pytest.mark.parametrize("url", ["/teams/", "/teams/{infra}/members.csv", "/imports/{batch}/errors.csv"])
def test_every_export_is_watermarked(share_safe, client, url):
    from usage.models import ImportBatch

    batch = ImportBatch.objects.first()
    client.force_login(share_safe["admin"])
    url = url.format(infra=share_safe["infra"].pk, batch=batch.pk)
    response = client.get(url, {**WINDOW, "format": "csv"})
    assert response.status_code == 200
    assert response.content.decode().startswith("Exported by root@acme.example")


def test_exports_are_plain_without_share_safe_mode(org, client):
    usage_for(org["infra_engineer"], day=date(2026, 9, 3), tokens=5_000)
    client.force_login(org["admin"])
    body = client.get("/", {**WINDOW, "format": "csv"}).content.decode()
    assert body.startswith("rank,") and "watermark" not in body


def test_share_safe_mode_keeps_cost_ranked_orders_for_admins(share_safe, client):
    manager = share_safe["platform_manager"].user
    client.force_login(manager)
    team = share_safe["platform"].pk
    assert client.get("/api/v1/leaderboard/people/", {"metric": "cost_usd", "team": team}).status_code == 403
    page = client.get("/", {"metric": "cost_usd", "team": team}).content.decode()
    assert "admins only in share-safe mode" in page
    assert 'value="cost_usd"' not in page  # not offered
    client.force_login(share_safe["admin"])
    assert client.get("/api/v1/leaderboard/people/", {"metric": "cost_per_mtok"}).status_code == 200


def test_a_pseudonymous_person_stays_so_in_an_engineers_export(share_safe, client):
    ivy = share_safe["infra_engineer"]
    ivy.show_name = False
    ivy.save()
    client.force_login(share_safe["product_engineer"].user)
    body = client.get("/", {**WINDOW, "format": "csv"}).content.decode()
    assert ivy.pseudonym in body and ivy.display_name not in body


def test_production_settings_turn_share_safe_mode_on():
    source = open("leaderboard/settings_production.py").read()
    assert 'TOKENBOARD_SHARE_SAFE = env.bool("TOKENBOARD_SHARE_SAFE", default=True)' in source
