"""Cut-off and malformed files are refused with the file, line and reason, and nothing of them is stored; a
truncated re-upload never lowers correct totals. Pathological files (a gigantic line, runs of blank lines, other
archive types) are refused quickly with a message."""

import bz2
import gzip
import io
import lzma
import tarfile
import tracemalloc
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from usage.models import Identity, ImportBatch, UsageRecord
from usage.parsers.base import parse_day
from usage.services.imports import import_batch_create, import_batch_process

pytestmark = pytest.mark.django_db

HEADER = (
    '"Date","User","Cloud Agent ID","Automation ID","Kind","Model","Max Mode","Input (w/ Cache Write)",'
    '"Input (w/o Cache Write)","Cache Read","Output Tokens","Total Tokens","Cost"\n'
)


def row(user: str, output: str, day: str = "2026-09-01") -> str:
    return (
        f'"{day}T10:00:00.000Z","{user}","","","Included","gpt-5","No","0","0","0","{output}","{output}","Included"\n'
    )


GOOD = HEADER + row("alice@acme.example", "1000") + row("bob@acme.example", "123456")


def run(content: bytes | str, name: str = "cursor.csv", **kwargs) -> ImportBatch:
    data = content.encode() if isinstance(content, str) else content
    batch = import_batch_create(file=io.BytesIO(data), name=name, queue=False, **kwargs)
    return import_batch_process(batch.pk)


def output_total() -> int:
    return UsageRecord.objects.aggregate(total=Sum("output_tokens"))["total"] or 0


def assert_refused(batch: ImportBatch, *fragments: str) -> None:
    assert batch.status == "failed"
    for fragment in fragments:
        assert fragment in batch.error_summary, batch.error_summary
    assert batch.error_summary.startswith(batch.original_name)
    assert not UsageRecord.objects.filter(import_batch=batch).exists()


@pytest.mark.parametrize("good_rows", [False, True])
def test_a_csv_cut_inside_the_last_rows_number_is_refused_whole(good_rows):
    cut = GOOD[: GOOD.rindex('"123456"') + 3]  # ends in "12
    batch = run(cut, import_good_rows=good_rows)
    assert_refused(batch, "line 3", "cut off")
    assert not UsageRecord.objects.exists()


def test_a_truncated_re_upload_does_not_lower_correct_totals():
    assert run(GOOD).status == "succeeded"
    assert output_total() == 124456
    assert_refused(run(GOOD[: GOOD.rindex('"123456"') + 3], name="again.csv"), "cut off")
    assert output_total() == 124456


def test_a_row_with_fewer_columns_than_the_header_is_a_row_error_not_zero_tokens():
    short = HEADER + row("alice@acme.example", "1000") + '"2026-09-01T10:00:00.000Z","bob@acme.example","","",""\n'
    assert_refused(run(short), "line 3", "5 of the header's 13 columns")
    good_rows = run(short, name="good-rows.csv", import_good_rows=True)
    assert good_rows.status == "succeeded" and good_rows.rows_rejected == 1
    assert output_total() == 1000


def test_an_unclosed_quote_creates_no_identity():
    unclosed = row("alice@acme.example", "1000").replace('acme.example"', "acme.example", 1)  # its closing quote lost
    broken = HEADER + unclosed + row("bob@acme.example", "5") + row("carol@acme.example", "7")
    assert_refused(run(broken), "line 2", "a closing quote is missing")
    assert not Identity.objects.exists()


@pytest.mark.parametrize("token", ["NaN", "nan", "inf", "-Infinity"])
def test_nan_and_infinite_token_counts_are_refused_not_zero(token):
    batch = run(HEADER + row("alice@acme.example", "1000") + row("bob@acme.example", token))
    assert_refused(batch, "line 3", "is not a number", repr(token))


def test_duplicate_headers_are_refused():
    duplicated = HEADER.rstrip("\n") + ',"User"\n'
    content = duplicated + row("alice@acme.example", "1").rstrip("\n") + ',"mallory@acme.example"\n'
    assert_refused(run(content), "line 1", "duplicate column 'User' (columns 2 and 14)")


def test_a_shift_jis_export_stores_its_names_unchanged():
    text = HEADER + row("山田太郎@acme.example", "10") + row("佐藤花子@acme.example", "20")
    batch = run(text.encode("cp932"), name="sjis.csv")
    assert batch.status == "succeeded", batch.error_summary
    assert set(Identity.objects.values_list("value", flat=True)) == {"山田太郎@acme.example", "佐藤花子@acme.example"}


def test_a_year_9999_epoch_timestamp_is_reported_as_9999_not_1978():
    with pytest.raises(ValueError, match="9999-12-31 is out of range"):
        parse_day(253402300799)


def test_file_level_errors_do_not_say_line_none(tmp_path, capsys):
    export = tmp_path / "empty.json"
    export.write_text("   \n")
    with pytest.raises(CommandError):
        call_command("import_usage", str(export), "--wait")
    err = capsys.readouterr().err
    assert "the file is empty" in err and "line None" not in err


# --- pathological files ---------------------------------------------------------------------------------------


def test_a_gzip_holding_one_gigantic_line_is_refused_in_bounded_memory(settings):
    settings.TOKENBOARD_MAX_LINE_BYTES = 1024 * 1024
    # 64 MiB of one line from concatenated gzip members (cheap to build, 64 KiB compressed).
    member = gzip.compress(b"a" * (1024 * 1024), compresslevel=1)
    bomb = gzip.compress(HEADER.encode()) + member * 64
    tracemalloc.start()
    try:
        batch = run(bomb, name="bomb.csv.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_refused(batch, "a line is longer than 1,048,576 bytes")
    assert peak < 32 * 1024 * 1024


def test_a_zip_of_blank_lines_is_refused_with_a_message(settings):
    settings.TOKENBOARD_MAX_BLANK_LINES = 1000
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("usage.csv", HEADER + "\n" * 2_000_000 + row("alice@acme.example", "1"))
    batch = run(archive.getvalue(), name="blank.zip")
    assert_refused(batch, "more than 1,000 blank lines in a row")


def test_default_limits_let_a_normal_file_through():
    assert run(GOOD).status == "succeeded"


@pytest.mark.parametrize(
    ("compress", "name", "kind"),
    [
        (bz2.compress, "usage.csv.bz2", "bz2-compressed files are not supported"),
        (lzma.compress, "usage.csv.xz", "xz-compressed files are not supported"),
        ("tar", "usage.tar", "tar files are not supported"),
        ("tgz", "usage.tgz", "tar files are not supported"),
    ],
)
def test_other_archive_types_are_named(compress, name, kind):
    if compress in ("tar", "tgz"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz" if compress == "tgz" else "w") as tar:
            info = tarfile.TarInfo("usage.csv")
            info.size = len(GOOD)
            tar.addfile(info, io.BytesIO(GOOD.encode()))
        data = buffer.getvalue()
    else:
        data = compress(GOOD.encode())
    assert_refused(run(data, name=name), kind)
