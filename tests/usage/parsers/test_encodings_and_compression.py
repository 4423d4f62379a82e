"""Exports arrive compressed and in spreadsheet encodings: every parser reads them through the payload opener."""

import gzip
import io
import zipfile

import pytest

from usage.parsers.base import ParseError
from usage.parsers.payload import open_text

from .helpers import FIXTURES, LIMIT, context, detect, parse, per_identity

EA = FIXTURES / "azure_ea.csv"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "cp1252", "latin-1", "utf-8-sig"])
def test_spreadsheet_encodings_decode_names_without_mojibake(encoding, tmp_path):
    path = tmp_path / "azure.csv"
    path.write_bytes(EA.read_text(encoding="utf-8").encode(encoding))
    assert detect(path) == "azure_cost"
    totals = per_identity(parse(path, "azure_cost"))
    # "Zoë" read back exactly — not "ZoÃ«" (UTF-8 read as Latin-1) nor "Zo\ufffd".
    assert "Zoë" in totals
    assert totals == per_identity(parse(EA, "azure_cost"))


def test_a_utf16_cursor_export_reads_like_the_original(tmp_path):
    original = FIXTURES / "cursor_team_usage.csv"
    path = tmp_path / "cursor.csv"
    path.write_bytes(original.read_text(encoding="utf-8-sig").encode("utf-16"))
    assert per_identity(parse(path, "cursor_csv")) == per_identity(parse(original, "cursor_csv"))


@pytest.mark.parametrize(
    "name", ["gcp_billing_vertex.csv", "claude_code_analytics.json", "copilot_premium_requests.csv"]
)
def test_gzip_and_zip_exports_read_like_the_originals(name, tmp_path):
    original = FIXTURES / name
    gz = tmp_path / f"{name}.gz"
    gz.write_bytes(gzip.compress(original.read_bytes()))
    zipped = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(original, arcname=name)
    fmt = detect(original)
    ctx = context(attribute_to_email="me@acme.example")
    expected = per_identity(parse(original, fmt, ctx))
    assert expected
    for packed in (gz, zipped):
        assert detect(packed) == fmt
        assert per_identity(parse(packed, fmt, ctx)) == expected


@pytest.mark.parametrize("spool_in_memory", [16 * 1024 * 1024, 1])
def test_a_zipped_parquet_file_is_read(tmp_path, monkeypatch, spool_in_memory):
    """Small zipped Parquet files are copied to memory, larger ones to a temporary file (bounded memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "BilledCost": [0.5],
            "BillingCurrency": ["USD"],
            "ChargeCategory": ["Usage"],
            "ChargePeriodStart": ["2026-09-01T00:00:00Z"],
            "ChargePeriodEnd": ["2026-09-02T00:00:00Z"],
            "ConsumedQuantity": [2.0],
            "ConsumedUnit": ["1K Tokens"],
            "ServiceCategory": ["AI and Machine Learning"],
            "ServiceName": ["Amazon Bedrock"],
            "SkuMeter": ["Output Tokens"],
            "ProviderName": ["AWS"],
            "ResourceId": [None],
            "SubAccountId": ["1111"],
            "Tags": ['{"owner": "Zoë"}'],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    zipped = tmp_path / "focus.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("focus.parquet", buffer.getvalue())
    assert detect(zipped) == "focus"
    monkeypatch.setattr("usage.parsers.payload.PARQUET_SPOOL_IN_MEMORY_BYTES", spool_in_memory)
    totals = per_identity(parse(zipped, "focus"))
    # 2 × 1K tokens of output, tagged owner=Zoë (non-ASCII survives the Parquet → CSV text path).
    assert totals["Zoë"]["output"] == 2000


def test_a_damaged_parquet_file_is_a_clear_parse_error(tmp_path):
    junk = tmp_path / "cur.parquet"
    junk.write_bytes(b"PAR1" + b"\x00garbage" * 20)
    with pytest.raises(ParseError, match="unreadable Parquet file"):
        with open_text(str(junk), max_decompressed=LIMIT):
            pass


def test_a_gzip_bomb_stops_at_the_limit(tmp_path):
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"start_time,end_time,start_time_iso,end_time_iso\n" + b"1,2,3,4\n" * 200_000))
    with pytest.raises(ParseError, match="exceeds the limit"):
        with open_text(str(bomb), max_decompressed=100_000) as (stream, _):
            stream.read()
