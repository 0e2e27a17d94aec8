"""The recordings' periodic tasks: recovery of left-behind recordings, purge after retention
(never under legal hold), the nightly sample verification, and MP4 exports."""

import os
import time
from datetime import timedelta

import av
import pytest
from django.utils import timezone

from audit.event_types import EventType
from recordings import actions, archive, tasks
from recordings.models import ExportState, Recording, RecordingExport, RecordingState
from tests.personas import events
from tests.recordings import archived_recording, write_recording
from tests.sessions import schedule

pytestmark = pytest.mark.usefixtures("office_open")


@pytest.fixture
def session(alice):
    return schedule(alice)


def age(recording, seconds):
    past = time.time() - seconds
    for path in [recording.working_path, *recording.working_path.iterdir()]:
        os.utime(path, (past, past))


def test_a_recording_left_behind_by_a_crashed_relay_is_closed_and_archived(session, settings):
    left, live = write_recording(session, end=False), write_recording(session, end=False)
    age(left, settings.RECORDING_STALE_SECONDS + 5)
    age(live, 2)  # on the test's clock, which stands at the opening hours
    result = tasks.recover_recordings()
    assert result["abandoned"] == 1
    left.refresh_from_db()
    live.refresh_from_db()
    assert (left.state, left.close_reason) == (RecordingState.FINALIZING, "abandoned")
    assert live.state == RecordingState.RECORDING  # still being written
    [closed] = events(EventType.RECORDING_CLOSED)
    assert closed.actor_label == "recording recovery"
    assert archive.run(left.pk) == "archived"
    assert tasks.recover_recordings()["abandoned"] == 0  # safe to run again


def test_an_archive_whose_claim_lapsed_is_tried_again(session):
    recording = write_recording(session)
    actions.close_recording(recording_id=recording.pk, reason="ended")
    Recording.objects.filter(pk=recording.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.recover_recordings()["retried"] == 1
    Recording.objects.filter(pk=recording.pk).update(
        lease_until=timezone.now() + timedelta(minutes=5)
    )
    assert tasks.recover_recordings()["retried"] == 0


def test_a_working_copy_left_after_archiving_is_removed(session):
    recording = archived_recording(session)
    recording.working_path.mkdir(parents=True)
    (recording.working_path / "segment-000000.frec").write_bytes(b"left over")
    Recording.objects.filter(pk=recording.pk).update(working_copy_deleted_at=None)
    assert tasks.recover_recordings()["released"] == 1
    assert not recording.working_path.exists()


def test_recordings_past_retention_are_purged_unless_on_legal_hold(session, bob, settings):
    due, held, young = (archived_recording(session) for _ in range(3))
    past = timezone.now() - timedelta(days=1)
    Recording.objects.filter(pk__in=[due.pk, held.pk]).update(retention_until=past)
    assert actions.set_legal_hold(recording=held, hold=True, reason="Beschwerde 2026-17",
                                  by_user=bob)
    assert tasks.purge_expired() == 1
    for recording in (due, held, young):
        recording.refresh_from_db()
    assert due.state == RecordingState.PURGED and due.purged_at is not None
    assert held.state == young.state == RecordingState.ARCHIVED
    assert archive.verify_stored(held).intact and not archive.verify_stored(due).intact
    root = settings.STORAGES["recordings"]["OPTIONS"]["location"]
    assert not os.path.exists(os.path.join(root, due.storage_prefix, "key.json"))
    [purged] = events(EventType.RECORDING_PURGED)
    assert purged.details["manifest_sha256"] == due.manifest_sha256  # the evidence stays
    [hold] = events(EventType.RECORDING_LEGAL_HOLD_SET)
    assert hold.details["reason"] == "Beschwerde 2026-17" and hold.actor_label == "bob"
    assert tasks.purge_expired() == 0  # safe to run again


def test_a_legal_hold_needs_a_reason_and_is_lifted_audited(session, bob):
    recording = archived_recording(session)
    with pytest.raises(actions.RecordingRuleError):
        actions.set_legal_hold(recording=recording, hold=True, reason="  ", by_user=bob)
    assert actions.set_legal_hold(recording=recording, hold=True, reason="Verfahren",
                                  by_user=bob)
    assert not actions.set_legal_hold(recording=recording, hold=True, reason="again",
                                      by_user=bob)
    assert actions.set_legal_hold(recording=recording, hold=False, reason="Verfahren beendet",
                                  by_user=bob)
    assert len(events(EventType.RECORDING_LEGAL_HOLD_LIFTED)) == 1


def test_the_nightly_check_verifies_a_sample_and_records_each_outcome(session, settings):
    good, bad = archived_recording(session), archived_recording(session)
    root = settings.STORAGES["recordings"]["OPTIONS"]["location"]
    blob = os.path.join(root, bad.storage_prefix, "segment-000000.frec.zst.aes")
    with open(blob, "r+b") as file:
        file.seek(100)
        byte = file.read(1)
        file.seek(100)
        file.write(bytes([byte[0] ^ 0x80]))
    settings.RECORDING_VERIFY_SAMPLE = 5
    assert tasks.verify_sample() == {"checked": 2, "intact": 1}
    [verified] = events(EventType.RECORDING_VERIFIED)
    [failed] = events(EventType.RECORDING_VERIFICATION_FAILED)
    assert verified.details["recording"] == good.pk
    assert failed.details["recording"] == bad.pk and failed.details["problems"]


def test_an_export_renders_an_mp4_stores_it_and_audits_its_hash(session, bob, tmp_path):
    recording = archived_recording(session)
    export = actions.request_export(recording=recording, by_user=bob,
                                    reason="Kundenbeschwerde vom 1.12., Az. 4711")
    assert tasks.export_recording(export.pk) == ExportState.DONE
    assert tasks.export_recording(export.pk).startswith("not claimed")  # idempotent
    export.refresh_from_db()
    assert (export.state, export.progress) == (ExportState.DONE, 100)
    assert (export.width, export.height) == (320, 200)
    data = archive.storage().open(export.storage_name).read()
    import hashlib

    assert hashlib.sha256(data).hexdigest() == export.sha256
    path = tmp_path / "check.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert abs(float(stream.duration * stream.time_base) - 31) < 1.5
    [requested] = events(EventType.RECORDING_EXPORT_REQUESTED)
    [exported] = events(EventType.RECORDING_EXPORTED)
    assert requested.details["reason"] == exported.details["reason"] == export.reason
    assert exported.details["sha256"] == export.sha256 and exported.actor_label == "bob"


def test_an_export_needs_a_reason(session, bob):
    recording = archived_recording(session)
    with pytest.raises(actions.RecordingRuleError):
        actions.request_export(recording=recording, by_user=bob, reason="weil")
    assert not RecordingExport.objects.exists()
    assert not events(EventType.RECORDING_EXPORT_REQUESTED)


def test_an_export_of_a_recording_without_a_picture_fails_cleanly(session, bob):
    recording = archived_recording(session, picture=False)
    export = actions.request_export(recording=recording, by_user=bob,
                                    reason="Prüfung der Aufzeichnung")
    tasks.export_recording(export.pk)
    export.refresh_from_db()
    assert export.state == ExportState.FAILED and "NoPicture" in export.error
    assert not export.storage_name
    [failed] = events(EventType.RECORDING_EXPORT_FAILED)
    assert failed.details["export"] == export.pk


def test_an_export_moves_only_along_its_transition_table(session, bob):
    """finish_export and fail_export check the state: a finished export stays as it finished."""
    recording = archived_recording(session)
    export = actions.request_export(recording=recording, by_user=bob,
                                    reason="Prüfung der Aufzeichnung")
    done = dict(storage_name="exports/x.mp4", sha256="0" * 64, size=1, width=2, height=2)
    assert not actions.finish_export(export=export, **done)  # queued, not running: refused
    assert actions.claim_export(export.pk) is not None
    assert actions.claim_export(export.pk) is None  # claimed once
    assert actions.finish_export(export=export, **done)
    assert not actions.fail_export(export=export, error="late failure")
    assert not actions.finish_export(export=export, **done)
    export.refresh_from_db()
    assert (export.state, export.error) == (ExportState.DONE, "")
    assert len(events(EventType.RECORDING_EXPORTED)) == 1
    assert not events(EventType.RECORDING_EXPORT_FAILED)


def test_a_recording_moves_only_along_its_transition_table(session):
    recording = write_recording(session, end=False)
    assert not recording.move_to(RecordingState.ARCHIVED)  # never past finalizing
    assert not recording.move_to(RecordingState.PURGED)
    assert actions.close_recording(recording_id=recording.pk, reason="ended")
    assert not actions.close_recording(recording_id=recording.pk, reason="ended again")
    recording.refresh_from_db()
    assert recording.state == RecordingState.FINALIZING and recording.closed_at
    assert len(events(EventType.RECORDING_CLOSED)) == 1
