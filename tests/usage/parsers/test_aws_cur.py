from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .helpers import FIXTURES, context, errors, parse, per_identity, skipped, tokens, usage

CUR2 = FIXTURES / "aws_cur2_bedrock.csv"
LEGACY = FIXTURES / "aws_legacy_cur.csv"


def test_cur2_bedrock_rows_scale_1k_token_units_and_use_the_iam_principal():
    items = parse(CUR2, "aws_cur")
    assert errors(items) == []
    totals = per_identity(items)
    # alice (assumed-role session alice@acme.example): input 250.5 × 1000 = 250500, output 10 × 1000 = 10000,
    # cache read 1000 × 1000 = 1,000,000; cost 0.7515 + 0.15 + 0.3 = 1.2015 (each row: usage × rate = cost).
    assert tokens(totals["alice@acme.example"]) == (250500, 0, 1000000, 10000)
    assert totals["alice@acme.example"]["cost"] == Decimal("1.2015")
    # bob (IAM user): cache write 20 × 1000 = 20000, $0.075
    assert tokens(totals["bob"]) == (0, 20000, 0, 0) and totals["bob"]["cost"] == Decimal("0.075")
    # carol: Marketplace InputTokenCount in plain Units = 500000 tokens, $0.50
    assert tokens(totals["carol@acme.example"]) == (500000, 0, 0, 0)


def test_principal_names_are_user_ids_and_email_looking_ones_fill_the_email():
    rows = {r.identity_value: r for r in usage(parse(CUR2, "aws_cur"))}
    assert (rows["alice@acme.example"].identity_kind, rows["alice@acme.example"].identity_email) == (
        "user_id",
        "alice@acme.example",
    )
    assert (rows["bob"].identity_kind, rows["bob"].identity_email) == ("user_id", "")


def test_without_a_principal_tags_then_the_resource_identify_the_usage():
    rows = {r.identity_value: r for r in usage(parse(CUR2, "aws_cur"))}
    # resource_tags {"user_owner": "Dave@Acme.example"}: the "owner" attribution key, value as found.
    dave = rows["Dave@Acme.example"]
    assert (dave.identity_kind, dave.identity_email, dave.output_tokens) == ("tag", "dave@acme.example", 2000)
    profile = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/shared01"
    assert (rows[profile].identity_kind, rows[profile].input_tokens) == ("project", 1000)


def test_credits_and_other_services_are_skipped_and_models_come_from_product_or_usage_type():
    items = parse(CUR2, "aws_cur")
    assert [s.line for s in skipped(items)] == [7, 9]  # the Credit row and the EC2 row
    models = {r.identity_value: r.model for r in usage(items)}
    assert models["alice@acme.example"] == "Claude4.6Sonnet"
    assert models["carol@acme.example"] == "Claude Haiku 4.5"
    assert models["Dave@Acme.example"] == "Nova2.0Lite"


def test_hourly_rows_go_to_the_org_local_day():
    rows = usage(parse(CUR2, "aws_cur", context(tz="Pacific/Kiritimati")))
    assert {r.day for r in rows} == {date(2026, 9, 2)}  # 10:00–15:00Z is the next day at UTC+14


def test_a_usage_amount_that_does_not_match_its_rate_and_cost_is_rejected(tmp_path):
    # Someone already multiplied by 1000: 250500 "1K tokens" at 0.003 would cost 751.5, not 0.7515.
    bad = tmp_path / "cur.csv"
    bad.write_text(CUR2.read_text().replace(",250.5,1K tokens,", ",250500,1K tokens,"))
    (error,) = errors(parse(bad, "aws_cur"))
    assert error.line == 2 and "pricing unit '1K tokens' is unclear" in error.reason


def test_legacy_cur_headers_and_resource_tag_columns_are_read():
    items = parse(LEGACY, "aws_cur")
    erin = per_identity(items)["erin@acme.example"]
    # input 100 × 1000, output 5 × 1000; 0.1 + 0.025; the Tax row is skipped.
    assert tokens(erin) == (100000, 0, 0, 5000) and erin["cost"] == Decimal("0.125")
    assert len(skipped(items)) == 1
    # A daily row keeps its UTC date.
    assert {r.day for r in usage(parse(LEGACY, "aws_cur", context(tz="America/Los_Angeles")))} == {date(2026, 9, 1)}


def _as_parquet(tmp_path):
    """The CUR 2.0 fixture as Parquet, with `product` and `resource_tags` as real map columns."""
    table = pacsv.read_csv(CUR2, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    import json

    def to_map(column):
        values = [json.loads(v) if v else {} for v in table.column(column).to_pylist()]
        return pa.array([list(v.items()) for v in values], type=pa.map_(pa.string(), pa.string()))

    table = table.set_column(table.schema.get_field_index("product"), "product", to_map("product"))
    table = table.set_column(table.schema.get_field_index("resource_tags"), "resource_tags", to_map("resource_tags"))
    path = tmp_path / "cur.parquet"
    pq.write_table(table, path)
    return path


def test_parquet_cur_gives_the_same_totals_as_csv(tmp_path):
    from .helpers import detect

    path = _as_parquet(tmp_path)
    assert detect(path) == "aws_cur"
    assert per_identity(parse(path, "aws_cur")) == per_identity(parse(CUR2, "aws_cur"))


def test_athena_style_column_names_read_like_cur2(tmp_path):
    # Athena / legacy-CUR-in-Athena names: product_product_name and resource_tags_user_owner columns.
    athena = tmp_path / "athena.csv"
    athena.write_text(
        "line_item_line_item_type,line_item_product_code,line_item_usage_type,line_item_usage_amount,pricing_unit,"
        "line_item_unblended_rate,line_item_unblended_cost,line_item_usage_start_date,product_product_name,"
        "resource_tags_user_owner\n"
        "Usage,AmazonBedrock,USE1-Claude4.5Haiku-output-tokens,3,1K tokens,0.005,0.015,2026-09-01 00:00:00,"
        "Amazon Bedrock,frank@acme.example\n"
    )
    (row,) = usage(parse(athena, "aws_cur"))
    # 3 × 1000 output tokens, attributed by the owner tag (prefix "user_" as Athena writes it).
    assert (row.identity_kind, row.identity_value, row.output_tokens, row.cost_usd) == (
        "tag",
        "frank@acme.example",
        3000,
        Decimal("0.015"),
    )
