from decimal import Decimal

from .helpers import FIXTURES, context, errors, parse, per_identity, skipped, tokens, usage

FILE = FIXTURES / "gcp_billing_vertex.csv"


def test_labels_attribute_vertex_usage_and_cost_is_net_of_credits():
    items = parse(FILE, "gcp_billing")
    assert errors(items) == []
    totals = per_identity(items)
    # alice (label user=alice, and owner=alice on the caching row):
    #   input 550000, thinking output 50000, cached input 100000; cost 0.6875 + 0.5 + 0.0125 = 1.2
    assert tokens(totals["alice"]) == (550000, 0, 100000, 50000)
    assert totals["alice"]["cost"] == Decimal("1.2")
    # No labels: the project is the identity. 0.15 - 0.05 free-tier credit + 0.03 = 0.13
    assert tokens(totals["carol-gemini-sandbox"]) == (100000, 0, 0, 60000)
    assert totals["carol-gemini-sandbox"]["cost"] == Decimal("0.13")


def test_output_is_classified_before_input_in_sku_names():
    rows = {r.line: r for r in usage(parse(FILE, "gcp_billing"))}
    # "Generate content output token count gemini 2.5 flash short input text" says "input" too.
    assert (rows[5].output_tokens, rows[5].input_tokens) == (60000, 0)
    assert rows[5].model == "gemini-2.5-flash" and rows[2].model == "gemini-2.5-pro"


def test_identity_kinds_are_tag_for_labels_and_project_otherwise():
    rows = usage(parse(FILE, "gcp_billing"))
    assert {(r.identity_value, r.identity_kind) for r in rows} == {
        ("alice", "tag"),
        ("carol-gemini-sandbox", "project"),
    }


def test_non_token_and_tax_rows_are_skipped_and_counted():
    assert [s.line for s in skipped(parse(FILE, "gcp_billing"))] == [7, 8]


def test_attribution_keys_follow_the_setting_order():
    # With only "team" as an attribution key, the caching row (team=ml, owner=alice) goes to "ml" and rows
    # labelled only user=alice fall back to their project.
    rows = usage(parse(FILE, "gcp_billing", context(attribution_tag_keys=["team"])))
    assert {r.identity_value for r in rows} == {"ml", "acme-ml-prod", "carol-gemini-sandbox"}


def test_other_billing_currencies_use_the_admin_rate(tmp_path):
    eur = tmp_path / "billing.csv"
    eur.write_text(FILE.read_text().replace(",0.03,USD,", ",0.03,EUR,"))
    (error,) = errors(parse(eur, "gcp_billing"))
    assert error.line == 6 and "no EUR→USD rate" in error.reason
    totals = per_identity(parse(eur, "gcp_billing", context(usd_rates={"EUR": Decimal("1.2")})))
    # 0.10 (USD) + 0.03 EUR × 1.2 = 0.136
    assert totals["carol-gemini-sandbox"]["cost"] == Decimal("0.136")


def test_underscore_column_names_from_a_bigquery_query_read_the_same(tmp_path):
    text = FILE.read_text()
    header, rest = text.split("\n", 1)
    renamed = tmp_path / "billing.csv"
    renamed.write_text(header.replace(".", "_") + "\n" + rest)
    assert per_identity(parse(renamed, "gcp_billing")) == per_identity(parse(FILE, "gcp_billing"))
