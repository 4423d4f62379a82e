"""A model name is data, not markup: Plotly reads a subset of HTML in legends, labels and hover boxes, so chart
labels are escaped and an `<a href>` in a model name shows as text instead of a clickable link."""

import json
import re
from datetime import date

import pytest

from tests.factories import usage_for

pytestmark = pytest.mark.django_db

EVIL = '<a href="https://evil.example/">click</a>'


def chart_figures(page: str) -> list[dict]:
    scripts = re.findall(r'<script id="[^"]+" type="application/json">(.*?)</script>', page, re.S)
    return [json.loads(script) for script in scripts]


def test_html_in_a_model_name_is_escaped_in_the_chart_labels(client, org):
    person = org["infra_engineer"]
    usage_for(person, day=date(2026, 9, 1), tokens=1000, model=EVIL)
    usage_for(person, day=date(2026, 9, 2), tokens=500, model="gpt-5")
    client.force_login(org["admin"])
    page = client.get(f"/people/{person.pk}/", {"start": "2026-09-01", "end": "2026-09-30"}).content.decode()
    figures = chart_figures(page)
    texts = [
        text
        for figure in figures
        for trace in figure["data"]
        for text in [trace.get("name") or "", *(trace.get("labels") or []), trace.get("hovertemplate") or ""]
    ]
    assert any("&lt;a href" in text for text in texts), texts
    assert not any("<a href" in text for text in texts)
