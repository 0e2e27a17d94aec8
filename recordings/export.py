"""MP4 exports of archived recordings: render from the decrypted archive, store, audit."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

from django.core.files import File

from recordings import actions, archive, video
from recordings import format as fmt
from recordings.models import RecordingExport

PROGRESS_EVERY_SECONDS = 1.0


def storage_name(job: RecordingExport) -> str:
    recording = job.recording
    return f"exports/{recording.session.reference}/{recording.uid}/export-{job.pk}.mp4"


def run(job: RecordingExport) -> None:
    """Render the claimed export; a failure is stored and audited, never half a file."""
    recording = job.recording
    last_saved = 0.0

    def progress(fraction: float) -> None:
        nonlocal last_saved
        now = time.monotonic()
        if now - last_saved >= PROGRESS_EVERY_SECONDS or fraction >= 1:
            last_saved = now
            RecordingExport.objects.filter(pk=job.pk).update(
                progress=min(99, int(fraction * 100))  # 100 only once it is stored
            )

    with tempfile.TemporaryDirectory(prefix="fw-export-") as folder:
        output = Path(folder) / "export.mp4"
        try:
            reader = fmt.RecordingReader(archive.ArchiveSource(recording),
                                         manifest=recording.manifest)
            info = video.render_mp4(reader.records(), output, duration_us=recording.duration_us,
                                    progress=progress)
            digest = hashlib.sha256()
            with output.open("rb") as file:
                for chunk in iter(lambda: file.read(1024 * 1024), b""):
                    digest.update(chunk)
            name = storage_name(job)
            backend = archive.storage()
            if backend.exists(name):
                backend.delete(name)
            with output.open("rb") as file:
                saved = backend.save(name, File(file, name=output.name))
        except (video.NoPicture, fmt.RecordingCorrupt, archive.encryption.SealBroken,
                OSError, ValueError) as exc:
            actions.fail_export(export=job, error=f"{type(exc).__name__}: {exc}")
            return
        actions.finish_export(export=job, storage_name=saved, sha256=digest.hexdigest(),
                              size=output.stat().st_size, width=info.width, height=info.height)
