"""A live session's recording goes to a real Celery worker when the session ends; the worker
archives it, and ``manage.py verify_recording`` proves it intact, until one stored byte changes."""

import subprocess
import sys
from pathlib import Path

import pytest

from audit.event_types import EventType
from recordings.models import Recording, RecordingState
from tests.personas import events
from tests.processes import ROOT, celery_worker, child_env, stop, wait_until
from tests.test_live import (  # noqa: F401 - the terms fixture
    both,
    closed_with,
    next_of,
    sync,
    terms,
    tile,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("office_open", "thread_connections_closed", "terms"),
]


def archive_env(settings) -> dict:
    return child_env(PORTAL_RECORDINGS_DIR=str(settings.RECORDINGS_DIR),
                     PORTAL_ARCHIVE_DIR=settings.STORAGES["recordings"]["OPTIONS"]["location"])


def verify(recording_id: int, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "verify_recording", str(recording_id)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


async def test_an_ended_session_is_archived_by_a_worker_and_verifies_until_a_byte_changes(
    alice, settings, tmp_path
):
    log = tmp_path / "worker.log"
    env = archive_env(settings)
    worker = celery_worker(f"rec-{tmp_path.name}", env, log)
    try:
        session, cust, viewer = await both(alice)
        await cust.send_to(bytes_data=tile(1, keyframe=True))
        assert await viewer.receive_from(timeout=5)
        await cust.send_json_to({"type": "chat", "text": "Ich sehe die Überweisung."})
        await next_of(viewer, "chat")
        await cust.send_json_to({"type": "end"})
        await next_of(viewer, "ended")
        await closed_with(cust)
        await closed_with(viewer)

        def archived():
            return Recording.objects.filter(session=session,
                                            state=RecordingState.ARCHIVED).first()

        recording = await sync(lambda: wait_until(archived, timeout=90,
                                                  what="the worker's archive", log=log))
    finally:
        stop(worker)
    assert recording.ended_cleanly and recording.counts["keyframe"] == 1
    assert recording.counts["chat"] == 1
    assert not recording.working_path.exists()
    assert [e.details["recording"] for e in await sync(
        lambda: events(EventType.RECORDING_ARCHIVED))] == [recording.pk]

    intact = verify(recording.pk, env)
    assert intact.returncode == 0, intact.stderr
    assert "intact" in intact.stdout and recording.manifest_sha256 in intact.stdout

    root = Path(settings.STORAGES["recordings"]["OPTIONS"]["location"])
    blob = root / recording.storage_prefix / "segment-000000.frec.zst.aes"
    data = bytearray(blob.read_bytes())
    data[-20] ^= 0x01
    blob.write_bytes(bytes(data))
    broken = verify(recording.pk, env)
    assert broken.returncode == 1
    assert "MISMATCH" in broken.stderr and "does not decrypt" in broken.stderr


async def test_verify_recording_refuses_what_is_not_archived(alice, settings):
    from tests.recordings import write_recording
    from tests.sessions import schedule

    recording = await sync(lambda: write_recording(schedule(alice)))
    result = await sync(lambda: verify(recording.pk, archive_env(settings)))
    assert result.returncode == 2 and "not archived" in result.stderr
    missing = await sync(lambda: verify(999999, archive_env(settings)))
    assert missing.returncode == 2 and "no such recording" in missing.stderr
