"""The head log goes to a write-once store every few minutes: S3 with Object Lock (moto here)."""

import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer

from audit import heads, tasks
from audit.events import Actor, record
from portal.celery import app as celery_app

BUCKET = "portal-audit-heads"
REGION = "eu-central-1"


def append(n: int) -> None:
    for i in range(n):
        record(event_type="test.event", actor=Actor.system(), details={"n": i})


@pytest.fixture
def s3(monkeypatch, settings):
    """A local S3 server with an Object Lock bucket, configured as the store "audit_heads"."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # The server keeps its state per Python process: start from an empty one.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset",
                                                      method="POST"), timeout=10).close()
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True,
                             CreateBucketConfiguration={"LocationConstraint": REGION})
        settings.STORAGES = {**settings.STORAGES, "audit_heads": {
            "BACKEND": "audit.shipping.WriteOnceS3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": endpoint, "region_name": REGION,
                        "location": "portal-test", "retention_days": 30},
        }}
        yield client
    finally:
        server.stop()


def objects(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.mark.django_db(transaction=True)  # heads are written after commit
def test_new_head_lines_are_shipped_as_new_objects_locked_in_compliance_mode(s3, settings):
    append(3)
    first = tasks.ship_head_log()
    assert first.endswith("000000000001-000000000003.log")
    key = f"portal-test/{first}"
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == Path(settings.AUDIT_HEAD_LOG).read_bytes()
    assert stored["ObjectLockMode"] == "COMPLIANCE"
    retained = stored["ObjectLockRetainUntilDate"] - datetime.now(UTC)
    assert timedelta(days=29) < retained <= timedelta(days=30)

    assert tasks.ship_head_log() is None  # nothing new: nothing shipped
    append(2)
    second = tasks.ship_head_log()
    assert second.endswith("000000000004-000000000005.log")
    assert objects(s3) == [key, f"portal-test/{second}"]

    # The shipped objects, put together, are the head log: an auditor verifies that copy.
    copy = settings.AUDIT_HEAD_LOG + ".from-s3"
    Path(copy).write_bytes(b"".join(
        s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in objects(s3)))
    assert [h.seq for h in heads.read(Path(copy))] == [1, 2, 3, 4, 5]


@pytest.mark.django_db(transaction=True)
def test_a_shipped_head_log_can_be_neither_deleted_nor_overwritten(s3):
    append(2)
    name = tasks.ship_head_log()
    key = f"portal-test/{name}"
    (version,) = s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])
    # The portal's own storage never writes to an existing name.
    again = storages["audit_heads"].save(name, ContentFile(b"forged"))
    assert again != name
    # Whoever writes the same key directly adds a version; the locked one stays as it was.
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"forged")
    kept = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])
    assert kept["Body"].read() == original and kept["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])


@pytest.mark.django_db(transaction=True)
def test_the_embedded_default_ships_into_a_read_only_file(settings):
    append(1)
    name = tasks.ship_head_log()
    shipped = Path(settings.STORAGES["audit_heads"]["OPTIONS"]["location"]) / name
    assert shipped.read_bytes() == Path(settings.AUDIT_HEAD_LOG).read_bytes()
    assert shipped.stat().st_mode & 0o777 == 0o400


def test_beat_ships_every_few_minutes():
    (entry,) = [e for e in django_settings.CELERY_BEAT_SCHEDULE.values()
                if e["task"] == "audit.tasks.ship_head_log"]
    assert entry["schedule"] == django_settings.AUDIT_SHIP_MINUTES * 60 <= 5 * 60
    assert "audit.tasks.ship_head_log" in celery_app.tasks
