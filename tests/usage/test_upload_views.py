"""The upload door: admins upload several exports at once, see the upload and processing progress."""

import gzip
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.factories import ImportBatchFactory, PersonFactory
from usage.models import ColumnMapping, ImportBatch
from usage.parsers.base import Format, Sample, Skipped
from usage.services.imports import import_rows_estimate

FIXTURES = Path(__file__).parent / "fixtures"
# The browser tests drive Playwright's sync API, which keeps an event loop running in the test thread for the
# whole session (pytest-playwright's `playwright` fixture); the ORM calls around it are still synchronous and
# never concurrent with it. tests/e2e/conftest.py sets the same.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
OPENAI = FIXTURES / "openai_usage_two_users.json"
ANTHROPIC = FIXTURES / "anthropic_usage_one_day.json"


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="application/json")


@pytest.fixture
def admin_client(client, org):
    client.force_login(org["admin"])
    return client


@pytest.fixture
def delay(sent_tasks):
    return sent_tasks.process_import


@pytest.mark.parametrize("persona", ["infra_engineer", "platform_manager"])
def test_engineers_and_managers_may_not_open_or_post_the_upload_page(client, org, persona, delay):
    client.force_login(org[persona].user)
    assert client.get(reverse("imports-upload")).status_code == 403
    response = client.post(reverse("imports-upload"), {"files": [upload(OPENAI)]})
    assert response.status_code == 403
    assert ImportBatch.objects.count() == 0


def test_an_anonymous_visitor_is_sent_to_log_in(client, db):
    response = client.get(reverse("imports-upload"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_upload_page_offers_multiple_files_the_formats_and_the_progress_script(admin_client):
    page = admin_client.get(reverse("imports-upload")).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file"' in page and "multiple" in page
    # The format override lists the registered formats, with automatic detection as the default.
    assert '<option value="" selected>Detect automatically</option>' in page
    assert 'value="openai_usage"' in page and 'value="anthropic_usage"' in page
    assert "js/upload.js" in page and "csrfmiddlewaretoken" in page


def test_uploading_two_files_stores_both_and_queues_each_after_commit(
    admin_client, org, delay, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(reverse("imports-upload"), {"files": [upload(OPENAI), upload(ANTHROPIC)]})
    batches = list(ImportBatch.objects.order_by("pk"))
    assert [b.original_name for b in batches] == [OPENAI.name, ANTHROPIC.name]
    assert all(b.source == "upload" and b.status == "queued" and b.started_by == org["admin"] for b in batches)
    # The raw bytes are stored before any parsing, so a failed import can be retried from them.
    assert batches[0].raw_file.read() == OPENAI.read_bytes()
    assert len(callbacks) == 2
    assert [c.args for c in delay.call_args_list] == [(batches[0].pk,), (batches[1].pk,)]
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('imports-progress')}?ids={batches[0].pk}&ids={batches[1].pk}"


def test_the_options_are_stored_on_each_import(admin_client, org, delay, django_capture_on_commit_callbacks):
    alice = PersonFactory(email="alice@acme.example", display_name="Alice Liddell")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("imports-upload"),
            {
                "files": [upload(ANTHROPIC)],
                "format": "anthropic_usage",
                "import_good_rows": "on",
                "attribute_to": "ALICE@acme.example",
            },
        )
    batch = ImportBatch.objects.get()
    assert (batch.requested_format, batch.import_good_rows, batch.attribute_to) == ("anthropic_usage", True, alice)


def test_an_unknown_person_to_attribute_to_is_a_form_error_and_nothing_is_stored(admin_client, delay):
    response = admin_client.post(
        reverse("imports-upload"), {"files": [upload(ANTHROPIC)], "attribute_to": "nobody@acme.example"}
    )
    assert response.status_code == 400
    assert "No person matches &#x27;nobody@acme.example&#x27;" in response.content.decode()
    assert ImportBatch.objects.count() == 0


def test_a_file_over_the_upload_limit_is_refused_by_name_and_nothing_is_stored(admin_client, settings, delay):
    settings.TOKENBOARD_UPLOAD_MAX_BYTES = 1000
    small = SimpleUploadedFile("small.json", b'{"data": []}')
    response = admin_client.post(reverse("imports-upload"), {"files": [small, upload(OPENAI)]})
    assert response.status_code == 400
    page = response.content.decode()
    assert f"{OPENAI.name}: the file is larger than the upload limit of 1,000 bytes" in page
    assert "small.json" not in page.split("errorlist", 1)[1].split("</ul>", 1)[0]
    # All or nothing: the small file is not stored either, so a re-upload of both makes no duplicate.
    assert ImportBatch.objects.count() == 0
    delay.assert_not_called()


def test_an_empty_file_is_refused_by_name(admin_client, delay):
    response = admin_client.post(reverse("imports-upload"), {"files": [SimpleUploadedFile("empty.csv", b"")]})
    assert response.status_code == 400
    assert "empty.csv: the file is empty" in response.content.decode()


def test_the_progress_script_gets_json_back(admin_client, settings, delay, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ok = admin_client.post(
            reverse("imports-upload"), {"files": [upload(ANTHROPIC)]}, headers={"accept": "application/json"}
        )
    batch = ImportBatch.objects.get()
    assert ok.status_code == 200
    assert ok.json() == {"redirect": f"{reverse('imports-progress')}?ids={batch.pk}", "imports": [batch.pk]}
    settings.TOKENBOARD_UPLOAD_MAX_BYTES = 10
    refused = admin_client.post(
        reverse("imports-upload"), {"files": [upload(ANTHROPIC)]}, headers={"accept": "application/json"}
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0].startswith(f"{ANTHROPIC.name}: the file is larger than the upload limit")


def test_an_upload_without_a_csrf_token_is_refused(org, delay):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(org["admin"])
    response = browser.post(reverse("imports-upload"), {"files": [upload(ANTHROPIC)]})
    assert response.status_code == 403
    assert ImportBatch.objects.count() == 0


def progress(client, *batches, **params):
    query = "&".join(f"ids={b.pk}" for b in batches)
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return client.get(f"{reverse('imports-progress')}?{query}{extra}", headers={"hx-request": "true"})


def test_the_progress_partial_polls_every_second_and_shows_rows_done_of_total(admin_client):
    running = ImportBatchFactory(status="running", rows_read=50_000, rows_total=200_000, original_name="big.csv")
    response = progress(admin_client, running)
    page = response.content.decode()
    assert 'hx-trigger="every 1s"' in page
    assert "50,000 of about 200,000 rows" in page
    assert '<progress max="200000" value="50000"' in page
    assert "<html" not in page  # only the partial is swapped in


def test_without_a_row_count_the_progress_partial_shows_the_file_size(admin_client):
    running = ImportBatchFactory(status="running", rows_read=0, rows_total=None, size_bytes=3 * 1024 * 1024)
    page = progress(admin_client, running).content.decode()
    assert "0 rows read of a 3.0\xa0MB file" in page


def test_the_progress_partial_stops_polling_once_every_import_is_finished(admin_client):
    done = ImportBatchFactory(status="succeeded", rows_imported=3)
    running = ImportBatchFactory(status="running")
    assert 'hx-trigger="every 1s"' in progress(admin_client, done, running).content.decode()
    running.status = "failed"
    running.error_summary = "x.json: line 2: broken"
    running.save()
    response = progress(admin_client, done, running, reload=1)
    assert 'hx-trigger="every 1s"' not in response.content.decode()
    assert "x.json: line 2: broken" in response.content.decode()
    # The result page asks for reload=1, so it refreshes itself to show the final counts.
    assert response["HX-Refresh"] == "true"


def test_the_progress_page_without_htmx_is_a_whole_page_and_404s_for_unknown_ids(admin_client):
    from django.utils import timezone

    batch = ImportBatchFactory(status="queued", dispatched_at=timezone.now())
    page = admin_client.get(f"{reverse('imports-progress')}?ids={batch.pk}").content.decode()
    assert "<html" in page and "waiting for a worker" in page
    assert admin_client.get(f"{reverse('imports-progress')}?ids=999999").status_code == 404


def test_a_plain_csv_is_pre_counted_so_the_progress_bar_has_an_end(tmp_path):
    export = tmp_path / "usage.csv"
    export.write_text("date,user,tokens\n2026-09-01,a,1\n2026-09-01,b,2\n2026-09-02,a,3")  # no final newline
    assert import_rows_estimate(str(export), Sample("usage.csv", export.read_text())) == 3
    export.write_text("date,user,tokens\r\n2026-09-01,a,1\r\n")
    assert import_rows_estimate(str(export), Sample("usage.csv", export.read_text())) == 1


def test_json_and_compressed_exports_are_not_pre_counted(tmp_path):
    # One JSON line can hold a whole page of buckets, and counting a gzip would mean decompressing it.
    assert import_rows_estimate(str(OPENAI), Sample(OPENAI.name, OPENAI.read_text())) is None
    packed = tmp_path / "usage.csv.gz"
    packed.write_bytes(gzip.compress(b"date,user,tokens\n2026-09-01,a,1\n"))
    assert import_rows_estimate(str(packed), Sample("usage.csv.gz", "date,user,tokens\n")) is None


def test_the_generic_csv_is_offered_once_per_saved_column_mapping(admin_client):
    ColumnMapping.objects.create(name="finance-sheet", columns={"day": "Date"})
    page = admin_client.get(reverse("imports-upload")).content.decode()
    assert 'value="generic_csv:finance-sheet"' in page
    # Without a mapping the generic CSV cannot be read, so it is not offered bare.
    assert 'value="generic_csv"' not in page


def test_a_mapping_name_too_long_to_record_is_refused_rather_than_cut(admin_client, delay):
    long_name = "m" * 45  # "generic_csv:" + 45 characters does not fit ImportBatch.requested_format
    ColumnMapping.objects.create(name=long_name, columns={"day": "Date"})
    response = admin_client.post(
        reverse("imports-upload"), {"files": [upload(ANTHROPIC)], "format": f"generic_csv:{long_name}"}
    )
    assert response.status_code == 400
    assert "rename it to at most 38 characters" in response.content.decode()
    assert ImportBatch.objects.count() == 0


def test_a_parquet_export_is_pre_counted_from_its_footer(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    export = tmp_path / "cur.parquet"
    pq.write_table(pa.table({"line_item_usage_amount": list(range(1234))}), export)
    assert import_rows_estimate(str(export), Sample("cur.parquet", "")) == 1234


class RowTotalSpy(Format):
    """A CSV format that records what the progress bar could read when parsing began."""

    name = "spy_csv"
    label = "Spy CSV"
    provider = "other"

    def __init__(self):
        self.rows_total_when_parsing_began = []

    def detect(self, sample):
        return False

    def parse(self, stream, ctx):
        self.rows_total_when_parsing_began.append(ImportBatch.objects.values_list("rows_total", flat=True).get())
        for number, _line in enumerate(stream, start=1):
            if number > 1:
                yield Skipped(number, "not AI usage")


@pytest.mark.django_db
def test_the_row_count_is_stored_before_parsing_starts(tmp_path, monkeypatch):
    from usage.services import imports

    spy = RowTotalSpy()
    monkeypatch.setattr(imports, "format_get", lambda name: spy)
    export = tmp_path / "usage.csv"
    export.write_text("date,user,tokens\n2026-09-01,a,1\n2026-09-01,b,2\n2026-09-02,a,3\n")
    with export.open("rb") as handle:
        batch = imports.import_batch_create(file=handle, name="usage.csv", queue=False, requested_format="spy_csv")
    batch = imports.import_batch_process(batch.pk)
    # The bar had its end (3 rows) while the parser was still reading, not only once the import finished.
    assert spy.rows_total_when_parsing_began == [3]
    assert (batch.status, batch.rows_total, batch.rows_skipped) == ("succeeded", 3, 3)


@pytest.fixture
def browser_page(live_server, org, playwright):
    """A logged-in admin in headless Chromium against the live test server."""
    from tests.conftest import CHROMIUM

    # pytest-playwright's session-wide `playwright`: only one sync Playwright may run per process.
    browser = playwright.chromium.launch(executable_path=CHROMIUM)
    page = browser.new_page()
    page.goto(f"{live_server.url}{reverse('login')}")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/overview/")
    yield page
    browser.close()


@pytest.mark.browser
def test_in_a_browser_the_script_uploads_with_progress_and_opens_the_progress_page(browser_page, live_server, delay):
    page = browser_page
    page.goto(f"{live_server.url}{reverse('imports-upload')}")
    page.set_input_files("input[type=file]", [str(OPENAI), str(ANTHROPIC)])
    assert OPENAI.name in page.inner_text("#chosen-files")
    with page.expect_response(lambda response: response.url.endswith(reverse("imports-upload"))) as answer:
        page.click("#upload-submit")
    # The script posted it (XMLHttpRequest with upload progress), not the plain form: JSON came back.
    assert answer.value.headers["content-type"] == "application/json"
    page.wait_for_url("**/imports/progress/?ids=*")
    assert sorted(ImportBatch.objects.values_list("original_name", flat=True)) == sorted([OPENAI.name, ANTHROPIC.name])
    assert delay.call_count == 2
    assert "waiting for a worker" in page.inner_text("#import-progress")


@pytest.mark.browser
def test_in_a_browser_a_file_over_the_limit_is_named_before_any_upload(browser_page, live_server, settings, delay):
    settings.TOKENBOARD_UPLOAD_MAX_BYTES = 1000
    page = browser_page
    page.goto(f"{live_server.url}{reverse('imports-upload')}")
    page.set_input_files("input[type=file]", [str(OPENAI)])
    assert f"{OPENAI.name}: the file is larger than the upload limit" in page.inner_text("#upload-errors")
    page.click("#upload-submit")
    assert page.url.endswith(reverse("imports-upload"))
    assert ImportBatch.objects.count() == 0
