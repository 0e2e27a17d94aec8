"""The archive pipeline: finalize, seal, store, verify, then release the working copy.

Each step is idempotent and records its result before the next starts, so a crash anywhere and
a re-run finish the job without loss or duplicates. See docs/recording-archive.md.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.event_types import EventType
from audit.events import Actor, record
from recordings import encryption, signing
from recordings import format as fmt
from recordings.models import Recording, RecordingState

LEASE = timedelta(minutes=15)  # longer than any one run; a crashed run's claim lapses
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)
SEGMENT_SUFFIX = ".zst.aes"
MANIFEST_OBJECT = "manifest.json"
SIGNATURE_OBJECT = "manifest.sig.json"
KEY_OBJECT = "key.json"
TIMELINE_RECORDS = {fmt.RECORD_CHAT, fmt.RECORD_EVENT, fmt.RECORD_END}
SYSTEM = Actor.system("recording archive")


class ArchiveError(Exception):
    """The archive is not (yet) what the manifest says: missing, changed or unreadable."""


def storage():
    return storages["recordings"]


def object_name(recording: Recording, name: str) -> str:
    return f"{recording.storage_prefix}/{name}"


def segment_object(name: str) -> str:
    return name + SEGMENT_SUFFIX


class ArchiveSource(fmt.SegmentSource):
    """The segments of an archived recording, read from storage and decrypted one at a time."""

    def __init__(self, recording: Recording, *, manifest: dict | None = None):
        self.recording = recording
        manifest = manifest or recording.manifest
        self.names = [segment["name"] for segment in manifest["segments"]]
        self.data_key = encryption.unwrap(recording.wrapped_key)

    def read(self, name: str) -> bytes:
        stored = object_name(self.recording, segment_object(name))
        try:
            with storage().open(stored, "rb") as file:
                blob = file.read()
        except (OSError, ValueError) as exc:  # S3 backends raise other errors too
            raise fmt.RecordingCorrupt(f"{name}: cannot be read from the archive: {exc}") from exc
        aad = encryption.associated_data(str(self.recording.uid), segment_object(name))
        try:
            return encryption.unseal(blob, self.data_key, aad)
        except encryption.SealBroken as exc:
            raise fmt.RecordingCorrupt(f"{name}: {exc}") from exc

    def __str__(self) -> str:
        return f"archive {self.recording.storage_prefix}"


# --- The pipeline -----------------------------------------------------------------------------


def claim(recording_id: int) -> Recording | None:
    """Take the recording for one pipeline run, or None if another run holds it or it is done."""
    now = timezone.now()
    claimed = (
        Recording.objects.filter(pk=recording_id, state=RecordingState.FINALIZING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE, attempts=F("attempts") + 1)
    )
    if claimed != 1:
        return None
    return Recording.objects.select_related("session").get(pk=recording_id)


def run(recording_id: int) -> str:
    """One pipeline run for a closed recording: every step not yet done. Returns what it did."""
    recording = claim(recording_id)
    if recording is None:
        return "not claimed"
    try:
        if not recording.manifest_sha256:
            finalize(recording)
        if recording.stored_at is None:
            store(recording)
        verify_and_archive(recording)
    except (OSError, fmt.RecordingCorrupt, ArchiveError, encryption.SealBroken) as exc:
        fail(recording, exc)
        raise
    # Any other error leaves the claim to lapse after LEASE; the recovery task tries again.
    Recording.objects.filter(pk=recording.pk).update(lease_until=None)
    delete_working_copy(recording)
    return "archived"


def finalize(recording: Recording) -> None:
    """Read and verify the working copy, build and sign its manifest, keep it with the timeline."""
    timeline: list[dict] = []

    def visit(rec: fmt.Record) -> None:
        if rec.type in TIMELINE_RECORDS:
            timeline.append(timeline_entry(rec))

    manifest = fmt.build_manifest(recording.working_path, visit=visit)
    if manifest["session"] != recording.session.reference:
        raise ArchiveError(f"the working copy belongs to session {manifest['session']}")
    canonical = fmt.manifest_bytes(manifest)
    digest = hashlib.sha256(canonical).hexdigest()
    with transaction.atomic():
        Recording.objects.filter(pk=recording.pk).update(
            manifest=manifest, manifest_sha256=digest, signature=signing.sign(canonical),
            signing_key_id=signing.signing_key_id(), segment_count=len(manifest["segments"]),
            size_bytes=sum(s["bytes"] for s in manifest["segments"]),
            duration_us=manifest["duration_us"], counts=manifest["counts"],
            ended_cleanly=manifest["ended"], truncated=manifest["truncated"] is not None,
            timeline=timeline, finalized_at=timezone.now(),
            storage_prefix=f"recordings/{recording.session.reference}/{recording.uid}",
        )
        recording.refresh_from_db()
        record(event_type=EventType.RECORDING_FINALIZED, actor=SYSTEM,
               session_ref=recording.session.reference,
               details={"recording": recording.pk, "manifest_sha256": digest,
                        "segments": recording.segment_count, "bytes": recording.size_bytes,
                        "duration_us": recording.duration_us,
                        "ended_cleanly": recording.ended_cleanly,
                        "truncated": recording.truncated,
                        "signing_key_id": recording.signing_key_id})


def timeline_entry(rec: fmt.Record) -> dict:
    """What the player lists beside the picture: chat lines and the session's events."""
    message = rec.json()
    entry = {"at_us": rec.at_us, "kind": rec.type_name, "channel": fmt.CHANNELS[rec.channel]}
    if rec.type == fmt.RECORD_CHAT:
        entry.update(name=message.get("name", ""), text=message.get("text", ""),
                     sender=message.get("from", ""))
    elif rec.type == fmt.RECORD_END:
        entry.update(reason=message.get("reason", ""))
    else:
        entry.update(event=message)
    return entry


def store(recording: Recording) -> None:
    """Seal every segment with the recording's data key and write it, the manifest, its
    signature and the wrapped key to the archive storage. Re-running overwrites the same names."""
    if not recording.wrapped_key:
        # The data key is saved (wrapped) before any blob uses it, so a re-run reuses it.
        master = encryption.master_key()
        Recording.objects.filter(pk=recording.pk, wrapped_key="").update(
            wrapped_key=encryption.wrap(encryption.new_data_key(), master),
            master_key_id=encryption.key_id(master),
        )
        recording.refresh_from_db()
    data_key = encryption.unwrap(recording.wrapped_key)
    source = fmt.DirectorySource(recording.working_path)
    stored = 0
    for segment in recording.manifest["segments"]:
        data = source.read(segment["name"])
        if hashlib.sha256(data).hexdigest() != segment["sha256"]:
            raise ArchiveError(f"{segment['name']} changed since the manifest was signed")
        name = segment_object(segment["name"])
        aad = encryption.associated_data(str(recording.uid), name)
        stored += put(recording, name, encryption.seal(data, data_key, aad))
    canonical = fmt.manifest_bytes(recording.manifest)
    stored += put(recording, MANIFEST_OBJECT, canonical)
    stored += put(recording, SIGNATURE_OBJECT, json_bytes({
        "algorithm": signing.ALGORITHM, "key_id": recording.signing_key_id,
        "signature": recording.signature, "manifest_sha256": recording.manifest_sha256,
    }))
    stored += put(recording, KEY_OBJECT, json_bytes({
        "algorithm": "AES-256-GCM", "compression": "zstd", "wrap": "AES-KW (RFC 3394)",
        "master_key_id": recording.master_key_id, "wrapped_key": recording.wrapped_key,
    }))
    now = timezone.now()
    Recording.objects.filter(pk=recording.pk).update(stored_at=now, stored_bytes=stored)
    recording.stored_at, recording.stored_bytes = now, stored


def put(recording: Recording, name: str, data: bytes) -> int:
    """Write one object under its fixed name, replacing what an interrupted run left there."""
    target = object_name(recording, name)
    backend = storage()
    if backend.exists(target):
        backend.delete(target)
    saved = backend.save(target, ContentFile(data))
    if saved != target:
        raise ArchiveError(f"the storage saved {target} as {saved}")
    return len(data)


def json_bytes(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Verification:
    recording_id: int
    intact: bool
    problems: list[str] = field(default_factory=list)
    segments: int = 0
    records: int = 0

    def summary(self) -> str:
        if self.intact:
            return (f"recording {self.recording_id}: intact ({self.segments} segments, "
                    f"{self.records} records)")
        return f"recording {self.recording_id}: MISMATCH: " + "; ".join(self.problems)


def verify_stored(recording: Recording) -> Verification:
    """Read the whole archive back: manifest, signature, key, every segment decrypted, the hash
    chain, the checkpoints and the final hash. Changes nothing."""
    result = Verification(recording.pk, intact=False)
    problems = result.problems
    if not recording.manifest_sha256 or not recording.wrapped_key:
        problems.append("not archived: no manifest or key")
        return result
    canonical = fmt.manifest_bytes(recording.manifest)
    if hashlib.sha256(canonical).hexdigest() != recording.manifest_sha256:
        problems.append("the manifest in the database differs from its hash")
    if not signing.signature_valid(canonical, recording.signature):
        problems.append("the manifest signature is not valid for the signing key")
    stored_manifest = read_object(recording, MANIFEST_OBJECT, problems)
    if stored_manifest is not None and stored_manifest != canonical:
        problems.append("the stored manifest differs from the signed one")
    if stored_field(recording, SIGNATURE_OBJECT, "signature", problems) != recording.signature:
        problems.append("the stored signature differs from the database's")
    if stored_field(recording, KEY_OBJECT, "wrapped_key", problems) != recording.wrapped_key:
        problems.append("the stored data key differs from the database's")
    try:
        reader = fmt.RecordingReader(ArchiveSource(recording), manifest=recording.manifest)
        for _ in reader.records():
            result.records += 1
        result.segments = len(reader.names)
        if reader.truncated != recording.truncated:
            problems.append("the archive's end differs from the manifest")
    except (fmt.RecordingCorrupt, encryption.SealBroken) as exc:
        problems.append(str(exc))
    result.intact = not problems
    return result


def stored_field(recording: Recording, name: str, key: str, problems: list[str]):
    """One field of a stored JSON object, or None if it cannot be read."""
    data = read_object(recording, name, problems)
    try:
        return json.loads(data)[key] if data is not None else None
    except (ValueError, KeyError, TypeError):
        return None


def read_object(recording: Recording, name: str, problems: list[str]) -> bytes | None:
    try:
        with storage().open(object_name(recording, name), "rb") as file:
            return file.read()
    except (OSError, ValueError) as exc:
        problems.append(f"{name} cannot be read from the archive: {exc}")
        return None


def verify_and_archive(recording: Recording) -> None:
    """Only an archive that reads back intact is archived; the working copy stays until then."""
    result = verify_stored(recording)
    if not result.intact:
        raise ArchiveError("; ".join(result.problems))
    with transaction.atomic():
        if not recording.move_to(RecordingState.ARCHIVED, last_error=""):
            return
        record(event_type=EventType.RECORDING_ARCHIVED, actor=SYSTEM,
               session_ref=recording.session.reference,
               details={"recording": recording.pk, "manifest_sha256": recording.manifest_sha256,
                        "stored_bytes": recording.stored_bytes,
                        "storage": recording.storage_prefix,
                        "master_key_id": recording.master_key_id,
                        "records": result.records})
    recording.state = RecordingState.ARCHIVED


def delete_working_copy(recording: Recording) -> bool:
    """After the archive verified: remove the relay's unencrypted files (safe to repeat)."""
    recording.refresh_from_db()
    if recording.state not in (RecordingState.ARCHIVED, RecordingState.PURGED) or (
        recording.working_copy_deleted_at is not None
    ):
        return False
    shutil.rmtree(recording.working_path, ignore_errors=True)
    if recording.working_path.exists():
        return False  # tried again by the recovery task
    Recording.objects.filter(pk=recording.pk).update(working_copy_deleted_at=timezone.now())
    return True


def fail(recording: Recording, exc: Exception) -> None:
    """A run failed: note and audit it; the working copy stays, a later run tries again."""
    error = f"{type(exc).__name__}: {exc}"[:2000]
    # The claim is kept a while, longer after each failure, so retries do not hammer a full disk.
    retry_at = timezone.now() + min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, recording.attempts - 1))
    with transaction.atomic():
        Recording.objects.filter(pk=recording.pk).update(last_error=error, lease_until=retry_at)
        record(event_type=EventType.RECORDING_ARCHIVE_FAILED, actor=SYSTEM,
               session_ref=recording.session.reference,
               details={"recording": recording.pk, "error": error[:500],
                        "attempt": recording.attempts})


def delete_archive(recording: Recording) -> None:
    """Remove every stored object of a recording (for the purge); missing ones are fine."""
    backend = storage()
    names = [segment_object(s["name"]) for s in (recording.manifest or {}).get("segments", [])]
    for name in [*names, MANIFEST_OBJECT, SIGNATURE_OBJECT, KEY_OBJECT]:
        target = object_name(recording, name)
        if backend.exists(target):
            backend.delete(target)
