"""The columnar readers (Format.summed) of Cursor team CSVs (usage.parsers.cursor_summed) and OpenAI usage pages
(usage.parsers.openai_summed): a file is stored exactly as the row parser stores it, whatever its columns,
conventions, time zone and chunk boundaries; a file they cannot read exactly is read row by row, which names the
file, line and reason of anything bad, and nothing of the attempt is kept (on PostgreSQL its merged hours are
rolled back)."""

import csv
import io
import json
import random
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from tests.factories import PersonFactory
from tests.usage.imported import stored
from usage.models import Identity, ImportBatch, UsageHour, UsageRecord
from usage.parsers import cursor_summed, openai_summed
from usage.parsers.base import NotColumnar, ParseContext
from usage.parsers.columnar import read_ahead
from usage.parsers.cursor_csv import FORMAT as CURSOR
from usage.parsers.openai_usage import FORMAT as OPENAI
from usage.parsers.payload import open_guarded
from usage.services.imports import import_batch_create, import_batch_process
from usage.services.outcomes import HoursMerge, hour_identities_lock

pytestmark = pytest.mark.django_db

COLUMNS = [
    "Date", "User", "Cloud Agent ID", "Automation ID", "Kind", "Model", "Max Mode", "Input (w/ Cache Write)",
    "Input (w/o Cache Write)", "Cache Read", "Output Tokens", "Total Tokens", "Cost",
]  # fmt: skip
COSTS = ["$0.42", "$1,204.10", "0.12", "Included", "Free", "-", "", "$0.000001", "$-0.50"]
MODELS = ["claude-4.5-sonnet", "gpt-5", " gpt-5 ", "o3", "claude-4.5-opus-high-thinking"]
KINDS = ["Included", "Usage-based", 'Errored, "no charge"', "multi\nline"]


def cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def cursor_export(
    seed: int, *, rows: int = 400, user: bool = True, cost: bool = True, requests: bool = False, breaks: bool = True
):
    """A random Cursor team export: both token conventions, blank totals and cache reads, cost labels, quoted
    commas (and line breaks, unless `breaks` is false) in a column the import does not read, events out of time
    order around two DST changes (so one hour's events land in different blocks)."""
    rng = random.Random(seed)
    columns = [name for name in COLUMNS if (user or name != "User") and (cost or name != "Cost")]
    if requests:
        columns.append("Requests")
    lines = [",".join(cell(name) for name in columns)]
    starts = [datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]
    for _ in range(rows):
        moment = rng.choice(starts) + timedelta(seconds=rng.randrange(0, 4 * 3600))
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(["Z", f".{rng.randrange(1000):03d}Z"])
        with_write, without_write = rng.randrange(0, 5000), rng.randrange(0, 5000)
        cache_read, output = rng.choice([0, rng.randrange(0, 90000)]), rng.randrange(0, 9000)
        inclusive = rng.random() < 0.3
        if inclusive:
            with_write += without_write
            total = str(with_write + cache_read + output)
        else:
            total = str(with_write + without_write + cache_read + output)
        values = {
            "Date": stamp,
            "User": rng.choice(["Ada@Acme.example", "ada@acme.example", "bo@acme.example", "cy@acme.example"]),
            "Cloud Agent ID": "",
            "Automation ID": "",
            "Kind": rng.choice(KINDS if breaks else KINDS[:-1]),
            "Model": rng.choice(MODELS),
            "Max Mode": "No",
            "Input (w/ Cache Write)": str(with_write),
            "Input (w/o Cache Write)": str(without_write),
            "Cache Read": str(cache_read) if cache_read or rng.random() < 0.5 else "",
            "Output Tokens": str(output),
            "Total Tokens": "" if rng.random() < 0.1 else total,
            "Cost": rng.choice(COSTS),
            "Requests": rng.choice(["", "1", "3"]),
        }
        lines.append(",".join(cell(values[name]) for name in columns))
    return ("\n".join(lines) + "\n").encode()


def run(content: bytes, name: str = "cursor.csv", **kwargs) -> ImportBatch:
    batch = import_batch_create(file=io.BytesIO(content), name=name, queue=False, **kwargs)
    return import_batch_process(batch.pk)


def forget_usage():
    UsageHour.objects.all().delete()
    UsageRecord.objects.all().delete()
    Identity.objects.all().delete()


BATCH_FIGURES = ("status", "error_summary", "rows_read", "rows_imported", "rows_rejected", "records_written")


def both_ways(settings, content: bytes, **kwargs):
    """(batch, stored) read row by row, then (batch, stored) read with the columnar reader, from the same start."""
    settings.TOKENBOARD_IMPORT_COLUMNAR = False
    rows = run(content, **kwargs)
    by_rows = [getattr(rows, name) for name in BATCH_FIGURES], stored()
    forget_usage()
    settings.TOKENBOARD_IMPORT_COLUMNAR = True
    summed = run(content, **kwargs)
    return by_rows, ([getattr(summed, name) for name in BATCH_FIGURES], stored())


def summed_reads(content: bytes, tmp_path, fmt=CURSOR) -> list:
    """The blocks `fmt`'s columnar reader makes of `content`."""
    path = tmp_path / "summed"
    path.write_bytes(content)
    with open_guarded(str(path), max_decompressed=10**9) as (binary, _encoding):
        return list(fmt.summed(binary, ParseContext()))


@pytest.fixture
def small_blocks(monkeypatch):
    # A block of about 20 events: keys and hours come back in later blocks, and must add up.
    monkeypatch.setattr(cursor_summed, "CHUNK_BYTES", 4096)


@pytest.mark.parametrize(
    ("seed", "zone", "shape"),
    [
        (1, "Europe/Berlin", {}),
        (2, "America/Los_Angeles", {"requests": True}),
        (3, "Asia/Kolkata", {"cost": False}),
        (4, "Australia/Lord_Howe", {"requests": True, "cost": False}),
        (5, "UTC", {}),
    ],
)
def test_the_columnar_reader_stores_exactly_what_the_row_parser_stores(
    settings, small_blocks, tmp_path, seed, zone, shape
):
    settings.TIME_ZONE = zone
    content = cursor_export(seed, **shape)
    assert len(summed_reads(content, tmp_path)) > 5  # read in several blocks
    by_rows, summed = both_ways(settings, content)
    assert by_rows[0][0] == "succeeded", by_rows[0]
    assert summed == by_rows
    assert len(summed[1][0]) > 20 and len(summed[1][1]) > 50  # records, hours


def test_a_personal_export_is_stored_as_its_person_s_by_either_reader(settings, small_blocks):
    person = PersonFactory(email="dee@acme.example")
    by_rows, summed = both_ways(settings, cursor_export(6, user=False), attribute_to=person)
    assert by_rows[0][0] == "succeeded", by_rows[0]
    assert summed == by_rows
    assert {value for value, *_ in summed[1][0]} == {"dee@acme.example"}


def test_a_big_export_is_read_in_blocks_that_add_up_to_the_file(small_blocks, tmp_path):
    content = cursor_export(7, rows=300)
    blocks = summed_reads(content, tmp_path)
    assert len(blocks) > 5 and sum(block.rows for block in blocks) == 300
    outputs = sum(figures[3] for block in blocks for _key, figures in block.records)
    hours = sum(sum(block.hours["output_tokens"].to_pylist()) for block in blocks)
    events = list(csv.DictReader(io.StringIO(content.decode())))
    assert outputs == hours == sum(int(event["Output Tokens"]) for event in events)


BAD_CELLS = [
    # (column, value, what the row parser refuses it with; "" where it reads the row)
    ("Input (w/o Cache Write)", "1,234", ""),  # a count with a thousands separator: 1234
    ("Cache Read", "NULL", ""),  # a NULL word: 0
    ("Date", "2026-10-25T01:30:00+00:00", ""),  # an offset instead of Z
    ("Cost", "$0.0000001", ""),  # finer than a usage record keeps
    ("Requests", "2.5", ""),  # rounded half-up
    ("Input (w/ Cache Write)", "12a", "is not a number"),
    ("Output Tokens", "-5", "is negative"),
    ("Date", "yesterday", "is not a date/time"),
    ("Date", "2026-13-01T10:00:00Z", "is not a date/time"),  # the right form, but no such month
    ("Date", "1999-01-01T00:00:00Z", "out of range"),
    ("User", "not-an-email", "User is not an email"),
    ("Total Tokens", "7", "matches neither reading"),
    ("Cost", "NaN", "Cost is not a number"),
]


@pytest.mark.parametrize(("column", "value", "refused"), BAD_CELLS)
def test_a_cell_the_columnar_reader_cannot_take_exactly_sends_the_file_to_the_row_parser(
    settings, small_blocks, tmp_path, column, value, refused
):
    lines = cursor_export(8, requests=True, breaks=False).decode().split("\n")
    header = next(csv.reader([lines[0]]))
    cells = next(csv.reader([lines[-3]]))  # in the last block
    cells[header.index(column)] = value
    if not refused:
        cells[header.index("Total Tokens")] = ""  # the row's other cells stay consistent with the value
    lines[-3] = ",".join(cell(text) for text in cells)
    damaged = "\n".join(lines).encode()
    with pytest.raises(NotColumnar):
        summed_reads(damaged, tmp_path)
    by_rows, summed = both_ways(settings, damaged)
    assert summed == by_rows
    if refused:
        assert by_rows[0][0] == "failed" and f"line {len(lines) - 2}: " in by_rows[0][1], by_rows[0]
        assert refused in by_rows[0][1]
    else:
        assert by_rows[0][0] == "succeeded", by_rows[0]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'\n"Date","Model","Input (w/o Cache Write)"\n', id="blank-first-line"),
        pytest.param(b'"Date","Model"\n"2026-09-01T10:00:00Z","x"\n', id="missing-column"),
        pytest.param('"Date","User","Model","Cache Read"\n"2026-09-01T10:00:00Z","a@b.example","é"\n'.encode("cp1252"), id="cp1252"),
    ],
)  # fmt: skip
def test_a_file_refused_by_the_row_parser_is_refused_with_the_same_error(settings, content):
    by_rows, summed = both_ways(settings, content)
    assert by_rows[0][0] == "failed"
    assert summed == by_rows


def test_a_short_row_and_an_unclosed_quote_are_left_to_the_row_parser(settings, tmp_path):
    good = cursor_export(9, rows=20, breaks=False).decode().split("\n")
    short = [*good[:5], '"2026-03-29T01:00:00Z","ada@acme.example","",""', *good[5:]]
    unclosed = [*good[:5], good[5].replace('acme.example"', "acme.example", 1), *good[6:]]
    for lines, reason in ((short, "line 6: "), (unclosed, "a closing quote is missing")):
        content = "\n".join(lines).encode()
        with pytest.raises(NotColumnar):
            summed_reads(content, tmp_path)
        by_rows, summed = both_ways(settings, content)
        assert summed == by_rows and by_rows[0][0] == "failed" and reason in by_rows[0][1], by_rows[0]


@pytest.mark.needs_services
def test_a_late_block_the_columnar_reader_cannot_take_sends_the_file_to_the_row_parser_after_hours_were_merged(
    settings, small_blocks, monkeypatch, caplog
):
    """PostgreSQL: the columnar reader's hours are merged while it reads. A cell it cannot take in a late block
    sends the file to the row parser; what the attempt merged is rolled back, and the import stores what the row
    parser alone stores."""
    lines = cursor_export(10, rows=600, breaks=False).decode().split("\n")
    lines[-3] = lines[-3].replace('Z"', '+00:00"', 1)  # its Date with an offset: the row parser reads it
    damaged = "\n".join(lines).encode()
    merges = []
    merge = HoursMerge.__call__
    monkeypatch.setattr(HoursMerge, "__call__", lambda self, written: merges.append(written) or merge(self, written))
    settings.TOKENBOARD_IMPORT_COLUMNAR = False
    assert run(damaged).status == "succeeded"
    expected, merged_by_rows = stored(), len(merges)
    forget_usage()

    settings.TOKENBOARD_IMPORT_COLUMNAR = True
    batch = run(damaged)
    assert batch.status == "succeeded", batch.error_summary
    assert stored() == expected
    assert len(merges) - 2 * merged_by_rows > 5  # the columnar attempt had merged hours before it gave up
    assert "read row by row (a Date not written as" in caplog.text


@pytest.mark.needs_services
def test_hours_added_across_blocks_are_summed_once(settings, small_blocks, monkeypatch):
    """The same hour in two blocks: the first merge of the import replaces the stored hour, the next adds to it."""
    content = cursor_export(11, rows=600)
    merges = []
    merge = HoursMerge.__call__
    monkeypatch.setattr(HoursMerge, "__call__", lambda self, written: merges.append(written) or merge(self, written))
    settings.TOKENBOARD_IMPORT_COLUMNAR = True
    first = run(content)
    assert first.status == "succeeded", first.error_summary
    assert any(adding for _first, adding in merges)
    once = stored()
    again = run(content, name="again.csv")  # a re-import restates every hour: nothing doubles
    assert again.status == "succeeded" and stored() == once


def test_hours_naming_an_identity_that_does_not_exist_are_refused():
    identity = Identity.objects.create(provider="cursor", kind="email", value="ada@acme.example")
    with pytest.raises(IntegrityError, match=f"identities that do not exist: \\[{identity.pk + 1000}\\]"):
        hour_identities_lock([identity.pk, identity.pk + 1000])


@pytest.mark.needs_services
def test_an_identity_an_import_writes_hours_of_cannot_be_deleted_until_it_commits(transactional_db):
    """What the foreign key's check did for each hour, once per identity: it locks the row against deletion."""
    identity = Identity.objects.create(provider="cursor", kind="email", value="ada@acme.example")
    db = connection.settings_dict
    other = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres", dbname=db["NAME"]
    )
    try:
        with transaction.atomic():
            hour_identities_lock([identity.pk])
            other.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM usage_identity WHERE id = %s", [identity.pk])
            other.rollback()
        other.execute("DELETE FROM usage_identity WHERE id = %s", [identity.pk])  # the import committed
        other.commit()
    finally:
        other.close()


# --- OpenAI usage pages (usage.parsers.openai_summed) ---------------------------------------------------------------


def openai_pages(seed: int, *, pages: int = 12, buckets: int = 6, results: int = 8) -> list[dict]:
    """Random OpenAI usage pages: hourly and daily buckets around a DST change, results by user, key, project or no
    one (empty strings and nulls among the ids), unknown and missing object names, null cached counts and models."""
    rng = random.Random(seed)
    start = int(datetime(2026, 10, 24, 20, tzinfo=UTC).timestamp())
    objects = [
        "organization.usage.completions.result",
        "organization.usage.embeddings.result",
        "organization.usage.something_new.result",
        None,
    ]
    out = []
    for _ in range(pages):
        data = []
        for _ in range(buckets):
            first = start + 3600 * rng.randrange(0, 30)
            daily = rng.random() < 0.2
            bucket = {"object": "bucket", "start_time": first, "end_time": first + (86400 if daily else 3600)}
            bucket["results"] = []
            for _ in range(results):
                all_input = rng.randrange(0, 100_000)
                cached = rng.choice([None, rng.randrange(0, all_input + 1)])
                cache_write = rng.randrange(0, all_input - (cached or 0) + 1)
                result = {
                    "object": rng.choice(objects),
                    "input_tokens": all_input,
                    "output_tokens": rng.randrange(0, 9000),
                    "input_cached_tokens": cached,
                    "input_cache_write_tokens": cache_write,
                    "num_model_requests": rng.randrange(0, 40),
                    "project_id": rng.choice([None, "", "proj_a", "proj_b"]),
                    "user_id": rng.choice([None, "", "user-ada", "user-bo", "user-cy"]),
                    "api_key_id": rng.choice([None, "", "key_1"]),
                    "model": rng.choice(["gpt-5", "gpt-4.1-mini", None]),
                    "batch": None,
                }
                bucket["results"].append(result)
            data.append(bucket)
        out.append({"object": "page", "data": data, "has_more": False, "next_page": None})
    return out


def json_lines(pages: list) -> bytes:
    return ("\n".join(json.dumps(page) for page in pages) + "\n").encode()


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(openai_summed, "CHUNK_BYTES", 6000)  # a page or two a chunk


@pytest.mark.parametrize(("seed", "zone"), [(21, "Europe/Berlin"), (22, "America/Los_Angeles"), (23, "Asia/Kolkata")])
def test_openai_pages_are_stored_by_the_columnar_reader_exactly_as_by_the_row_parser(
    settings, small_chunks, tmp_path, seed, zone
):
    settings.TIME_ZONE = zone
    content = json_lines(openai_pages(seed))
    assert len(summed_reads(content, tmp_path, OPENAI)) > 5  # read in several chunks
    by_rows, summed = both_ways(settings, content, name="usage.jsonl")
    assert by_rows[0][0] == "succeeded", by_rows[0]
    assert summed == by_rows
    records, hours, identities = summed[1]
    assert len(records) > 50 and len(hours) > 50
    assert {kind for _provider, kind, *_ in identities} == {"user_id", "api_key", "project"}


def _result(pages: list) -> dict:
    return pages[-1]["data"][-1]["results"][-1]


OPENAI_CHANGES = [
    # (what is changed in the last result or bucket, what the row parser refuses it with; "" where it reads it)
    (lambda pages: _result(pages).update(input_tokens=str(_result(pages)["input_tokens"])), ""),  # a count as text
    (lambda pages: _result(pages).update(output_tokens=12.0), ""),  # a whole float
    (lambda pages: _result(pages).update(num_model_requests=None), ""),  # null: 0
    (lambda pages: _result(pages).pop("num_model_requests") and _result(pages).update(num_requests=3), ""),
    (lambda pages: pages[-1]["data"][-1].update(start_time=pages[-1]["data"][-1]["start_time"] * 1000), ""),  # ms
    (lambda pages: pages[-1]["data"][-1].pop("end_time"), ""),  # an hour from its start alone
    (lambda pages: _result(pages).update(user_id=42), ""),  # an id as a number
    (lambda pages: _result(pages).update(output_tokens=-1), "is negative"),
    (lambda pages: _result(pages).update(input_tokens=0, input_cached_tokens=5), "exceed input_tokens"),
    (lambda pages: pages[-1]["data"][-1].update(start_time="yesterday"), "is not a date/time"),
    (lambda pages: pages[-1]["data"][-1].update(results=None), "bucket without a 'results' list"),
]


@pytest.mark.parametrize(("change", "refused"), OPENAI_CHANGES)
def test_a_value_the_columnar_reader_cannot_take_exactly_sends_openai_pages_to_the_row_parser(
    settings, small_chunks, tmp_path, change, refused
):
    pages = openai_pages(24)
    change(pages)
    content = json_lines(pages)
    with pytest.raises(NotColumnar):
        summed_reads(content, tmp_path, OPENAI)
    by_rows, summed = both_ways(settings, content, name="usage.jsonl")
    assert summed == by_rows
    if refused:
        assert by_rows[0][0] == "failed" and f"line {len(pages)}: " in by_rows[0][1] and refused in by_rows[0][1]
    else:
        assert by_rows[0][0] == "succeeded", by_rows[0]


@pytest.mark.parametrize(
    ("layout", "columnar"),
    [
        pytest.param(lambda pages: json.dumps(pages[0], indent=2), True, id="a-page-over-several-lines"),
        pytest.param(lambda pages: json.dumps(pages), False, id="an-array-of-pages"),
    ],
)
def test_other_layouts_of_openai_pages_are_stored_alike(settings, tmp_path, layout, columnar):
    content = layout(openai_pages(25, pages=3)).encode()
    if columnar:
        assert summed_reads(content, tmp_path, OPENAI)  # pyarrow reads a whole object over several lines too
    else:
        with pytest.raises(NotColumnar):
            summed_reads(content, tmp_path, OPENAI)
    by_rows, summed = both_ways(settings, content, name="usage.json")
    assert by_rows[0][0] == "succeeded", by_rows[0]
    assert summed == by_rows


@pytest.mark.needs_services
def test_a_value_too_long_for_its_column_in_a_late_block_fails_the_import_naming_its_line(small_blocks, caplog):
    """The import, not the reader, finds the model too long: it stops reading ahead before the file closes, the
    row parser names the line, and nothing merged before is kept."""
    lines = cursor_export(11, rows=600, breaks=False).decode().split("\n")
    cells = lines[-3].split('","')
    cells[COLUMNS.index("Model")] = "m" * 300
    lines[-3] = '","'.join(cells)
    batch = run("\n".join(lines).encode(), "long-model.csv")
    assert batch.status == "failed"
    assert batch.error_summary.startswith("long-model.csv: 1 bad row(s), file rejected whole")
    assert f"line {len(lines) - 2}: model is longer than 200 characters" in batch.error_summary
    assert "read row by row (model is longer than 200 characters" in caplog.text
    assert not UsageHour.objects.exists() and not UsageRecord.objects.exists()


def test_blocks_read_ahead_come_in_order_with_the_readers_error_after_the_blocks_before_it():
    def blocks():
        yield from ("first", "second")
        raise NotColumnar("a bad third block")

    read = read_ahead(blocks())
    assert [next(read), next(read)] == ["first", "second"]
    with pytest.raises(NotColumnar, match="a bad third block"):
        next(read)


def test_blocks_read_ahead_stop_with_the_block_being_read_finished_when_the_caller_stops():
    reading = threading.Event()
    read_on = threading.Event()
    finished = []

    def blocks():
        for number in range(5):
            if number == 1:
                reading.set()
                read_on.wait(5)
            finished.append(number)
            yield number

    read = read_ahead(blocks())
    assert next(read) == 0
    assert reading.wait(5)  # the second block is being read while the caller works on the first
    threading.Timer(0.05, read_on.set).start()
    read.close()  # returns once the second block is read, and reads no further
    assert finished == [0, 1]
