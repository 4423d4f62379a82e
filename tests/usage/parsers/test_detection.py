"""Every fixture is recognised from its content alone (never its file name), as the format it was written in."""

import shutil

import pytest

from .helpers import FIXTURES, detect, focus_sample

EXPECTED = {
    "openai_costs_two_keys.json": "openai_costs",
    "openai_dashboard_usage.csv": "openai_dashboard_csv",
    "openai_dashboard_costs.csv": "openai_dashboard_csv",
    "openai_dashboard_header_only.csv": "openai_dashboard_csv",
    "openai_users.json": "openai_directory",
    "openai_project_api_keys.json": "openai_directory",
    "anthropic_cost_report.json": "anthropic_cost",
    "claude_code_analytics.json": "claude_code",
    "anthropic_keys_then_users.jsonl": "anthropic_directory",
    "cursor_team_usage.csv": "cursor_csv",
    "cursor_inclusive_convention.csv": "cursor_csv",
    "cursor_personal.csv": "cursor_csv",
    "cursor_events.json": "cursor_api",
    "gcp_billing_vertex.csv": "gcp_billing",
    "aws_cur2_bedrock.csv": "aws_cur",
    "aws_legacy_cur.csv": "aws_cur",
    "azure_ea.csv": "azure_cost",
    "azure_mca_eur.csv": "azure_cost",
    "copilot_premium_requests.csv": "copilot_csv",
    "copilot_premium_requests_old.csv": "copilot_csv",
    "focus_ai.csv": "focus",
    "ccusage_daily.json": "ccusage",
    "ccusage_monthly_typed.json": "ccusage",
    "litellm_spend_logs.json": "litellm",
    "litellm_spend_logs.csv": "litellm",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_export_is_detected_from_its_content_not_its_name(name, tmp_path):
    # Renamed to something meaningless, so only the content can tell.
    anonymous = tmp_path / "export.dat"
    shutil.copy(FIXTURES / name, anonymous)
    assert detect(anonymous) == EXPECTED[name]


def test_every_fixture_is_covered_by_the_detection_table():
    # A new fixture must say which format it is; the generic CSV is never detected.
    assert set(EXPECTED) | {"generic_usage.csv"} == {p.name for p in FIXTURES.iterdir()}


def test_the_anthropic_usage_fixture_of_the_pipeline_tests_is_still_read_as_usage_not_cost():
    # Cost rows name token types ("uncached_input_tokens") too; usage pages must not be taken for cost pages.
    assert detect(FIXTURES.parent.parent / "fixtures" / "anthropic_usage_one_day.json") == "anthropic_usage"
    assert detect(FIXTURES.parent.parent / "fixtures" / "openai_usage_two_users.json") == "openai_usage"


def test_the_public_focus_sample_is_detected_as_focus():
    assert detect(focus_sample()) == "focus"
