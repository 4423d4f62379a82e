from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import ImportBatchFactory
from usage.models import ImportBatch

IMPORTS = "/api/v1/imports/"
EXPORT = Path(__file__).parents[2] / "usage" / "fixtures" / "openai_usage_two_users.json"


def upload(name: str = "usage.json", content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, EXPORT.read_bytes() if content is None else content, "application/json")


def test_an_upload_is_stored_before_the_202_and_queued_once_committed(
    org, clients, django_capture_on_commit_callbacks, sent_tasks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = clients["admin"].post(IMPORTS, {"file": upload(), "format": "openai_usage"}, format="multipart")
    assert response.status_code == 202
    body = response.json()
    batch = ImportBatch.objects.get(pk=body["id"])
    assert batch.raw_file.read() == EXPORT.read_bytes()
    assert batch.status == body["status"] == "queued"
    assert batch.requested_format == "openai_usage" and batch.started_by == org["admin"]
    assert len(callbacks) == 1
    sent_tasks.process_import.assert_called_once_with(batch.pk)
    assert body["status_url"] == f"http://testserver/api/v1/imports/{batch.pk}/"
    assert response["Location"] == body["status_url"]
    status = clients["admin"].get(body["status_url"])
    assert status.status_code == 200 and status.json()["id"] == batch.pk


def test_the_queued_upload_is_processed_by_the_task(org, clients, django_capture_on_commit_callbacks, sent_tasks):
    with django_capture_on_commit_callbacks(execute=True):
        body = clients["admin"].post(IMPORTS, {"file": upload(), "import_good_rows": "true"}).json()
    from usage.tasks import process_import

    process_import.apply(args=sent_tasks.process_import.call_args.args)
    detail = clients["admin"].get(f"{IMPORTS}{body['id']}/").json()
    assert detail["status"] == "succeeded" and detail["import_good_rows"] is True
    assert detail["detected_format"] == "openai_usage"
    assert detail["period_start"] == detail["period_end"] == "2026-09-01"
    assert detail["rows_read"] == 3 and detail["records_written"] == 2 and detail["errors"] == []
    assert "succeeded" in detail["summary"]


def test_an_upload_over_the_size_limit_is_413_and_stores_nothing(clients, settings, sent_tasks):
    settings.TOKENBOARD_UPLOAD_MAX_BYTES = 100
    response = clients["admin"].post(IMPORTS, {"file": upload()})
    assert response.status_code == 413
    assert "larger than the upload limit of 100 bytes" in response.json()["detail"]
    assert not ImportBatch.objects.exists()
    sent_tasks.process_import.assert_not_called()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"format": "openai_usage"}, "file", "No file was submitted"),
        ({"file": "empty"}, "file", "empty"),
        ({"file": "ok", "format": "clay_tablets"}, "format", "known formats: "),
        ({"file": "ok", "attribute_to": "999999"}, "attribute_to", "Invalid pk"),
    ],
)
def test_a_bad_upload_is_a_400_naming_the_field(clients, data, field, message):
    files = {"empty": upload(content=b""), "ok": upload()}
    if "file" in data:
        data = {**data, "file": files[data["file"]]}
    response = clients["admin"].post(IMPORTS, data)
    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert not ImportBatch.objects.exists()


def test_import_list_and_detail_show_status_counts_period_and_errors_with_line_numbers(clients, org):
    failed = ImportBatchFactory(
        status="failed",
        original_name="bad.csv",
        rows_read=10,
        rows_rejected=2,
        errors=[{"line": 4, "reason": "output_tokens is negative"}, {"line": 9, "reason": "no day"}],
        error_summary="2 rows rejected",
    )
    ImportBatchFactory(status="succeeded", period_start="2026-09-01", period_end="2026-09-30")
    listing = clients["admin"].get(IMPORTS).json()
    assert listing["count"] == 2
    detail = clients["admin"].get(f"{IMPORTS}{failed.pk}/").json()
    assert detail["status"] == "failed" and detail["rows_rejected"] == 2 and detail["rows_read"] == 10
    assert detail["errors"] == [{"line": 4, "reason": "output_tokens is negative"}, {"line": 9, "reason": "no day"}]
    assert detail["summary"] == f"import #{failed.pk} failed: 2 rows rejected"
    only_failed = clients["admin"].get(IMPORTS, {"status": "failed"}).json()["results"]
    assert [b["id"] for b in only_failed] == [failed.pk]
    assert clients["admin"].get(IMPORTS, {"status": "exploded"}).status_code == 400


def test_writes_are_throttled(clients, monkeypatch, usage):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"writes": "2/minute"})
    identity = usage["infra"].identity_id
    statuses = [
        clients["admin"].patch(f"/api/v1/identities/{identity}/", {"person": None}, format="json").status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert clients["admin"].get(IMPORTS).status_code == 200  # reads are not throttled


def test_writes_do_not_fail_when_redis_is_down(clients, monkeypatch, usage, sent_tasks):
    """The write throttle counts in the cache; with Redis unreachable it lets writes through instead of a 500."""
    from django.core.cache.backends.redis import RedisCache

    monkeypatch.setattr(ScopedRateThrottle, "cache", RedisCache("redis://127.0.0.1:1/0", {}))
    response = clients["admin"].post(IMPORTS, {"file": upload(), "format": "openai_usage"}, format="multipart")
    assert response.status_code == 202
    assert ImportBatch.objects.filter(pk=response.json()["id"], status="queued").exists()
    identity = usage["infra"].identity_id
    patched = clients["admin"].patch(f"/api/v1/identities/{identity}/", {"person": None}, format="json")
    assert patched.status_code == 200


def test_a_254_character_file_name_is_stored_under_a_shorter_name(clients, settings, sent_tasks):
    name = "u" * 249 + ".json"
    response = clients["admin"].post(IMPORTS, {"file": upload(name=name)}, format="multipart")
    assert response.status_code == 202, response.content[:300]
    batch = ImportBatch.objects.get(pk=response.json()["id"])
    assert batch.original_name == name
    assert batch.raw_file.name.endswith(".json") and len(Path(batch.raw_file.name).name) <= 120
    assert batch.raw_file.read() == EXPORT.read_bytes()


def test_a_format_over_50_characters_is_a_400_and_leaves_no_stored_file(clients, settings, sent_tasks):
    long_format = "generic_csv:" + "m" * 39
    response = clients["admin"].post(IMPORTS, {"file": upload(), "format": long_format}, format="multipart")
    assert response.status_code == 400 and "format" in response.json()
    assert not ImportBatch.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not [path for path in media.rglob("*") if path.is_file()]
