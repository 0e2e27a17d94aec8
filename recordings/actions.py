"""Every change to recordings: atomic, audited in the same transaction; tasks queued after commit.

The relay, the admin and the Celery tasks call these. The archive's steps themselves are in
``recordings/archive.py``.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.event_types import EventType
from audit.events import Actor, record
from recordings import archive
from recordings.models import ExportState, Recording, RecordingExport, RecordingState
from recordings.retention import retention_until
from sessions_app.models import SupportSession

REASON_MIN_CHARS = 10  # an export's reason must say something an auditor can follow up


class RecordingRuleError(Exception):
    """A request the recording rules refuse; the message is for the person who asked."""


@transaction.atomic
def start_recording(*, session: SupportSession, directory: str) -> Recording:
    """The relay opened a recording for a customer connection (``directory`` relative to
    RECORDINGS_DIR)."""
    started = timezone.now()
    recording_class = settings.RECORDING_DEFAULT_CLASS
    recording = Recording.objects.create(
        session=session, directory=directory, started_at=started,
        recording_class=recording_class,
        retention_until=retention_until(started, recording_class, session),
    )
    session.audit(EventType.RECORDING_STARTED, by=Actor.system("recording"),
                  directory=directory, recording=recording.pk, recording_class=recording_class,
                  retention_until=recording.retention_until)
    return recording


def close_recording(*, recording_id: int, reason: str, by: Actor | None = None) -> bool:
    """The relay finished writing (or the recording was found left behind): archive it.

    False if it was closed already, so the relay and the recovery task may both call it.
    """
    from recordings import tasks

    with transaction.atomic():
        recording = Recording.objects.select_related("session").get(pk=recording_id)
        if not recording.move_to(RecordingState.FINALIZING, close_reason=reason[:40]):
            return False
        recording.session.audit(EventType.RECORDING_CLOSED, by=by or Actor.system("recording"),
                                recording=recording_id, reason=reason)
        transaction.on_commit(lambda: tasks.archive_recording.delay(recording_id))
    return True


@transaction.atomic
def set_legal_hold(*, recording: Recording, hold: bool, reason: str,
                   by_user: AbstractBaseUser, ip: str | None = None) -> bool:
    """Place or lift a legal hold; a held recording is never purged. False if unchanged."""
    reason = reason.strip()
    if not reason:
        raise RecordingRuleError(_("State the reason for the legal hold."))
    changed = Recording.objects.filter(pk=recording.pk, legal_hold=not hold).exclude(
        state=RecordingState.PURGED
    ).update(legal_hold=hold)
    if changed != 1:
        return False
    recording.legal_hold = hold
    record(event_type=(EventType.RECORDING_LEGAL_HOLD_SET if hold
                       else EventType.RECORDING_LEGAL_HOLD_LIFTED),
           actor=Actor.staff(by_user), ip=ip, session_ref=recording.session.reference,
           details={"recording": recording.pk, "reason": reason[:1000]})
    return True


def purge(recording_id: int, *, now: datetime) -> bool:
    """Delete an archived recording past its retention, unless on legal hold; audited with its
    manifest hash. False if it is not (or no longer) due."""
    with transaction.atomic():
        # Locked, so that a legal hold placed meanwhile waits and then wins or loses cleanly.
        recording = (Recording.objects.select_for_update().select_related("session")
                     .filter(pk=recording_id, state=RecordingState.ARCHIVED, legal_hold=False,
                             retention_until__lte=now).first())
        if recording is None:
            return False
        archive.delete_archive(recording)  # idempotent: a re-run after a crash finds nothing
        recording.move_to(RecordingState.PURGED, at=now)  # the row is locked: it moves
        record(event_type=EventType.RECORDING_PURGED, actor=Actor.system("retention"),
               session_ref=recording.session.reference,
               details={"recording": recording.pk, "manifest_sha256": recording.manifest_sha256,
                        "retention_until": recording.retention_until,
                        "recording_class": recording.recording_class,
                        "stored_bytes": recording.stored_bytes})
    return True


def record_verification(result: archive.Verification, *, by: Actor) -> None:
    """Append a verification's outcome to the audit chain."""
    recording = Recording.objects.select_related("session").get(pk=result.recording_id)
    record(event_type=(EventType.RECORDING_VERIFIED if result.intact
                       else EventType.RECORDING_VERIFICATION_FAILED),
           actor=by, session_ref=recording.session.reference,
           details={"recording": recording.pk, "manifest_sha256": recording.manifest_sha256,
                    "segments": result.segments, "records": result.records,
                    "problems": result.problems[:20]})


# --- Watching and exporting (Compliance officers, from the admin) ------------------------------


def check_playable(recording: Recording) -> None:
    if recording.state != RecordingState.ARCHIVED:
        raise RecordingRuleError(
            _("This recording is “%(state)s”; only archived recordings can be played.")
            % {"state": RecordingState(recording.state).label}
        )


@transaction.atomic
def request_export(*, recording: Recording, by_user: AbstractBaseUser, reason: str,
                   ip: str | None = None) -> RecordingExport:
    """Queue an MP4 export; the stated reason and the requester are audited."""
    from recordings import tasks

    check_playable(recording)
    reason = reason.strip()
    if len(reason) < REASON_MIN_CHARS:
        raise RecordingRuleError(
            _("State the reason for the export (at least %(n)d characters).")
            % {"n": REASON_MIN_CHARS}
        )
    export = RecordingExport.objects.create(recording=recording, requested_by=by_user,
                                            reason=reason[:2000])
    record(event_type=EventType.RECORDING_EXPORT_REQUESTED, actor=Actor.staff(by_user), ip=ip,
           session_ref=recording.session.reference,
           details={"recording": recording.pk, "export": export.pk, "reason": export.reason})
    transaction.on_commit(lambda: tasks.export_recording.delay(export.pk))
    return export


def claim_export(export_id: int) -> RecordingExport | None:
    """Take a queued export for one run (a second run of the same task finds it taken)."""
    export = RecordingExport.objects.select_related("recording__session", "requested_by").filter(
        pk=export_id
    ).first()
    if export is None or not export.move_to(ExportState.RUNNING):
        return None
    return export


@transaction.atomic
def finish_export(*, export: RecordingExport, storage_name: str, sha256: str, size: int,
                  width: int, height: int) -> bool:
    """Mark a running export done, audited; False (nothing written) if it is not running."""
    if not export.move_to(ExportState.DONE, progress=100, storage_name=storage_name,
                          sha256=sha256, size_bytes=size, width=width, height=height):
        return False
    record(event_type=EventType.RECORDING_EXPORTED, actor=Actor.staff(export.requested_by),
           session_ref=export.recording.session.reference,
           details={"recording": export.recording_id, "export": export.pk,
                    "reason": export.reason, "sha256": sha256, "bytes": size,
                    "manifest_sha256": export.recording.manifest_sha256})
    return True


@transaction.atomic
def fail_export(*, export: RecordingExport, error: str) -> bool:
    """Mark a queued or running export failed, audited; False if it had finished already."""
    if not export.move_to(ExportState.FAILED, error=error[:2000]):
        return False
    record(event_type=EventType.RECORDING_EXPORT_FAILED, actor=Actor.system("recording export"),
           session_ref=export.recording.session.reference,
           details={"recording": export.recording_id, "export": export.pk,
                    "error": error[:500]})
    return True
