"""The archive pipeline: finalize, sign, compress, encrypt, store, verify, release; every step
safe to interrupt and repeat."""

import pytest

from audit.event_types import EventType
from recordings import archive, encryption
from recordings import format as fmt
from recordings.models import Recording, RecordingState
from tests.personas import events
from tests.recordings import archived_recording, write_recording
from tests.sessions import schedule

pytestmark = pytest.mark.usefixtures("office_open")


@pytest.fixture
def session(alice):
    return schedule(alice)


def stored_files(settings):
    root = settings.STORAGES["recordings"]["OPTIONS"]["location"]
    from pathlib import Path

    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def test_a_closed_recording_is_archived_encrypted_and_verified(session, settings):
    recording = archived_recording(session)
    assert recording.state == RecordingState.ARCHIVED
    assert recording.manifest["ended"] and not recording.truncated
    assert recording.duration_us == 31_000_000
    assert not recording.working_path.exists()  # the unencrypted copy is gone
    files = stored_files(settings)
    names = {p.name for p in files}
    assert {"manifest.json", "manifest.sig.json", "key.json"} <= names
    segment_blob = next(p for p in files if p.name.endswith(".zst.aes")).read_bytes()
    assert segment_blob.startswith(encryption.BLOB_MAGIC)
    assert b"FWREC" not in segment_blob and b"JFIF" not in segment_blob  # nothing in clear
    assert archive.verify_stored(recording).intact
    [archived] = events(EventType.RECORDING_ARCHIVED)
    assert archived.details["manifest_sha256"] == recording.manifest_sha256
    kinds = [entry["kind"] for entry in recording.timeline]
    assert "chat" in kinds and kinds[-1] == "end"


def test_a_flipped_byte_in_a_stored_segment_is_found(session, settings):
    recording = archived_recording(session)
    blob = next(p for p in stored_files(settings) if p.name.endswith(".zst.aes"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    result = archive.verify_stored(recording)
    assert not result.intact
    assert "does not decrypt" in result.summary()


def test_a_rerun_after_each_step_finishes_without_loss_or_duplicates(session, settings):
    recording = write_recording(session)
    from recordings import actions

    actions.close_recording(recording_id=recording.pk, reason="ended")
    recording = archive.claim(recording.pk)
    archive.finalize(recording)
    first_hash = Recording.objects.get(pk=recording.pk).manifest_sha256
    Recording.objects.filter(pk=recording.pk).update(lease_until=None, manifest_sha256="")
    assert archive.run(recording.pk) == "archived"
    recording.refresh_from_db()
    assert recording.manifest_sha256 == first_hash
    assert len(events(EventType.RECORDING_ARCHIVED)) == 1
    assert archive.verify_stored(recording).intact
    reader = fmt.RecordingReader(archive.ArchiveSource(recording), manifest=recording.manifest)
    assert sum(1 for _ in reader.records()) > 30


def closed(session, **options):
    from recordings import actions

    recording = write_recording(session, **options)
    actions.close_recording(recording_id=recording.pk, reason="ended")
    return Recording.objects.get(pk=recording.pk)


class FailingStorage:
    """The archive storage failing on the Nth write: a full disk or a storage outage."""

    def __init__(self, real, fail_at: int):
        self.real, self.fail_at, self.writes = real, fail_at, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def save(self, name, content):
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError(28, "No space left on device")
        return self.real.save(name, content)


@pytest.mark.parametrize("fail_at", [1, 2, 4])
def test_a_store_interrupted_at_any_object_is_finished_by_the_next_run(
    session, settings, monkeypatch, fail_at
):
    recording = closed(session)
    real = archive.storage()
    failing = FailingStorage(real, fail_at)
    monkeypatch.setattr(archive, "storage", lambda: failing)
    with pytest.raises(OSError):
        archive.run(recording.pk)
    recording.refresh_from_db()
    assert recording.state == RecordingState.FINALIZING
    assert "No space left" in recording.last_error
    assert recording.working_path.exists()  # nothing is lost
    [failed] = events(EventType.RECORDING_ARCHIVE_FAILED)
    assert failed.details["recording"] == recording.pk
    assert archive.run(recording.pk) == "not claimed"  # backing off
    monkeypatch.setattr(archive, "storage", lambda: real)
    Recording.objects.filter(pk=recording.pk).update(lease_until=None)
    assert archive.run(recording.pk) == "archived"
    recording.refresh_from_db()
    assert archive.verify_stored(recording).intact
    assert not any(p.name.endswith(("_1", ".tmp")) for p in stored_files(settings))
    assert len(events(EventType.RECORDING_ARCHIVED)) == 1


def test_a_run_that_died_after_storing_verifies_and_archives_on_the_next_run(session):
    recording = closed(session)
    claimed = archive.claim(recording.pk)
    archive.finalize(claimed)
    claimed.refresh_from_db()
    archive.store(claimed)
    # The process died here: the claim is still held until it lapses.
    assert archive.run(recording.pk) == "not claimed"
    Recording.objects.filter(pk=recording.pk).update(lease_until=None)
    assert archive.run(recording.pk) == "archived"
    recording.refresh_from_db()
    assert recording.attempts == 2 and recording.state == RecordingState.ARCHIVED


def test_the_working_copy_stays_when_the_read_back_differs(session, settings, monkeypatch):
    recording = closed(session)
    real_put = archive.put

    def corrupting_put(rec, name, data):
        if name.endswith(".zst.aes"):
            data = data[:-1] + bytes([data[-1] ^ 1])  # what a faulty disk might do
        return real_put(rec, name, data)

    monkeypatch.setattr(archive, "put", corrupting_put)
    with pytest.raises(archive.ArchiveError):
        archive.run(recording.pk)
    recording.refresh_from_db()
    assert recording.state == RecordingState.FINALIZING
    assert recording.working_path.exists()
    assert "does not decrypt" in recording.last_error
    monkeypatch.setattr(archive, "put", real_put)
    Recording.objects.filter(pk=recording.pk).update(lease_until=None, stored_at=None)
    assert archive.run(recording.pk) == "archived"


def test_a_recording_cut_by_a_crash_is_archived_with_its_truncation(session):
    recording = write_recording(session, end=False)
    last = sorted(recording.working_path.glob("*.frec"))[-1]
    data = last.read_bytes()
    last.write_bytes(data[:-7])  # the relay died in the middle of a record
    from recordings import actions

    actions.close_recording(recording_id=recording.pk, reason="abandoned")
    assert archive.run(recording.pk) == "archived"
    recording.refresh_from_db()
    assert recording.truncated and not recording.ended_cleanly
    assert archive.verify_stored(recording).intact


def test_a_changed_manifest_or_signature_is_found(session):
    recording = archived_recording(session)
    Recording.objects.filter(pk=recording.pk).update(
        manifest={**recording.manifest, "duration_us": 1}
    )
    recording.refresh_from_db()
    result = archive.verify_stored(recording)
    assert not result.intact
    assert any("differs from its hash" in p for p in result.problems)
    assert any("stored manifest differs" in p for p in result.problems)


def test_another_recordings_blob_in_place_of_a_segment_is_found(session, settings):
    first, second = archived_recording(session), archived_recording(session)
    root = settings.STORAGES["recordings"]["OPTIONS"]["location"]
    from pathlib import Path

    name = "segment-000000.frec.zst.aes"
    source = Path(root) / second.storage_prefix / name
    (Path(root) / first.storage_prefix / name).write_bytes(source.read_bytes())
    assert not archive.verify_stored(first).intact
