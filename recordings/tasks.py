"""Celery tasks of recordings: thin, idempotent; ids in, claims by conditional UPDATE."""

from __future__ import annotations

import random
import time

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from audit.events import Actor
from recordings import actions, archive, disk_space, export
from recordings.models import ExportState, Recording, RecordingExport, RecordingState

BATCH = 200


@shared_task
def archive_recording(recording_id: int) -> str:
    """After a recording closed: finalize, seal, store, verify, release the working copy.

    A failure is audited and keeps the claim for a back-off; recover_recordings retries it.
    """
    try:
        return archive.run(recording_id)
    except (OSError, archive.ArchiveError, archive.fmt.RecordingCorrupt,
            archive.encryption.SealBroken) as exc:
        return f"failed: {exc}"


@shared_task
def recover_recordings() -> dict:
    """Every minute: close recordings a crashed relay left behind, retry archives whose claim
    lapsed, and remove working copies left after an archive verified."""
    now = time.time()
    abandoned = 0
    for recording in Recording.objects.filter(state=RecordingState.RECORDING)[:BATCH]:
        if now - last_write(recording) >= settings.RECORDING_STALE_SECONDS:
            abandoned += actions.close_recording(
                recording_id=recording.pk, reason="abandoned",
                by=Actor.system("recording recovery"),
            )
    lapsed = list(
        Recording.objects.filter(state=RecordingState.FINALIZING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()))
        .values_list("pk", flat=True)[:BATCH]
    )
    for pk in lapsed:
        archive_recording.delay(pk)
    released = sum(
        archive.delete_working_copy(recording)
        for recording in Recording.objects.filter(state=RecordingState.ARCHIVED,
                                                  working_copy_deleted_at__isnull=True)[:BATCH]
    )
    return {"abandoned": abandoned, "retried": len(lapsed), "released": released}


def last_write(recording: Recording) -> float:
    """When the relay last wrote to this recording's working copy (0 if nothing is there)."""
    try:
        return max((path.stat().st_mtime for path in recording.working_path.iterdir()),
                   default=recording.working_path.stat().st_mtime)
    except OSError:
        return 0.0


@shared_task
def purge_expired() -> int:
    """Daily: purge archived recordings past their retention that are not on legal hold."""
    now = timezone.now()
    due = Recording.objects.filter(state=RecordingState.ARCHIVED, legal_hold=False,
                                   retention_until__lte=now).values_list("pk", flat=True)
    return sum(actions.purge(pk, now=now) for pk in list(due[:BATCH]))


@shared_task
def verify_sample() -> dict:
    """Nightly: read a random sample of archived recordings back in full; audit each outcome."""
    ids = list(Recording.objects.filter(state=RecordingState.ARCHIVED)
               .values_list("pk", flat=True))
    sample = random.sample(ids, min(len(ids), settings.RECORDING_VERIFY_SAMPLE))
    intact = 0
    for pk in sample:
        result = archive.verify_stored(Recording.objects.select_related("session").get(pk=pk))
        actions.record_verification(result, by=Actor.system("nightly recording verification"))
        intact += result.intact
    return {"checked": len(sample), "intact": intact}


@shared_task
def export_recording(export_id: int) -> str:
    """Render a requested MP4 export; safe to run twice (the second run finds it taken)."""
    job = actions.claim_export(export_id)
    if job is None:
        state = RecordingExport.objects.filter(pk=export_id).values_list("state", flat=True)
        return f"not claimed ({state.first() or 'missing'})"
    export.run(job)
    return ExportState.DONE


@shared_task
def watch_free_space() -> bool:
    """Every minute: alert when the recordings folder's free space is below the minimum."""
    return not disk_space.watch().low
