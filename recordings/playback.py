"""The admin player's server side: what it plays from, and who watched, jumped and downloaded.

The browser fetches one decrypted segment at a time (``recordings/admin.py``). Opening the
player, every jump to another moment and every download of an export is audited; a burst of
jumps (dragging the timeline) is audited once, as its first jump.
"""

from __future__ import annotations

import hashlib
import time

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.utils.translation import gettext as _

from audit.event_types import EventType
from audit.models import AuditEvent
from portal.request_audit import record_for_request
from recordings import archive
from recordings import format as fmt
from recordings.models import Recording, RecordingExport
from sessions_app.models import EndReason

SEEK_BURST_SECONDS = 3  # jumps closer together than this are one burst, audited once
VIEWER_STATE_SECONDS = 12 * 3600  # how long the last served segment is remembered
# Everything a reviewer does with a recording, for "who has watched it" on its admin page.
WATCH_EVENTS = (
    EventType.RECORDING_VIEWED,
    EventType.RECORDING_SEEKED,
    EventType.RECORDING_EXPORT_REQUESTED,
    EventType.RECORDING_EXPORTED,
    EventType.RECORDING_EXPORT_FAILED,
    EventType.RECORDING_EXPORT_DOWNLOADED,
    EventType.RECORDING_LEGAL_HOLD_SET,
    EventType.RECORDING_LEGAL_HOLD_LIFTED,
)


def viewer_name(user: AbstractBaseUser) -> str:
    """The name the watermark carries: full name and user name, or the user name alone."""
    username = user.get_username()
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    return f"{full} ({username})" if full else username


def clock(at_us: int) -> str:
    """A session time as the player shows it: m:ss, or h:mm:ss from an hour on."""
    seconds = max(0, int(at_us // 1_000_000))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def player_index(recording: Recording, *, segment_urls: list[str]) -> dict:
    """What the player needs to fetch, seek and draw: segments, keyframes and the duration."""
    manifest = recording.manifest or {}
    return {
        "duration_us": recording.duration_us,
        "segments": [
            {"number": segment["number"], "first_us": segment["first_us"],
             "last_us": segment["last_us"], "url": url}
            for segment, url in zip(manifest.get("segments", []), segment_urls, strict=True)
        ],
        # A keyframe repeated at a segment start lacks the tiles drawn since the original:
        # the player jumps to originals only (docs/recording-format.md).
        "keyframes": [
            {"segment": frame["segment"], "offset": frame["offset"], "at_us": frame["at_us"]}
            for frame in manifest.get("keyframes", []) if not frame.get("repeated")
        ],
    }


def timeline_items(recording: Recording) -> list[dict]:
    """The chat lines and the session's events beside the picture, described for people."""
    items = []
    for entry in recording.timeline or []:
        kind = entry.get("kind")
        if kind == "chat":
            sender = {"customer": _("Customer"), "staff": _("Staff")}.get(entry.get("sender"),
                                                                          "")
            who = entry.get("name") or sender
            items.append({"kind": "chat", "kind_label": _("Chat"), "who": who,
                          "text": entry.get("text", "")})
        elif kind == "end":
            items.append({"kind": "end", "kind_label": _("End"), "who": "",
                          "text": end_text(entry.get("reason", ""))})
        elif kind == "event":
            items.append({"kind": "event", "kind_label": _("Event"), "who": "",
                          "text": event_text(entry.get("event") or {})})
        else:
            continue
        items[-1].update(at_us=entry.get("at_us", 0), clock=clock(entry.get("at_us", 0)))
    return items


def end_text(reason: str) -> str:
    try:
        label = EndReason(reason).label
    except ValueError:
        label = reason
    return _("The session ended: %(reason)s") % {"reason": label}


def event_text(event: dict) -> str:
    """A recorded control or consent event (docs/protocol.md) in words."""
    kind = event.get("type")
    if kind == "recording_started":
        return str(EventType.RECORDING_STARTED.label)
    if kind == "control_request":
        return str(EventType.CONTROL_REQUESTED.label)
    if kind == "control":
        step = event.get("step") or ("granted" if event.get("granted") else "released")
        return str({
            "granted": EventType.CONTROL_GRANTED.label,
            "denied": EventType.CONTROL_DENIED.label,
            "revoked": EventType.CONTROL_REVOKED.label,
        }.get(step, EventType.CONTROL_RELEASED.label))
    if kind == "sharing":
        return str(EventType.SHARING_PAUSED.label if event.get("paused")
                   else EventType.SHARING_RESUMED.label)
    if kind == "peer":
        role = {"customer": _("Customer"), "staff": _("Staff"),
                "observer": _("Observer")}.get(event.get("role"), event.get("role", ""))
        who = f"{role} {event['name']}" if event.get("name") else role
        return (_("%(who)s joined") if event.get("present") else _("%(who)s left")) % {
            "who": who}
    if kind == "peer_refused":
        return _("A connection was refused (%(role)s): %(reason)s") % {
            "role": event.get("role", ""), "reason": event.get("reason", "")}
    return str(kind or _("Event"))


def watch_log(recording: Recording, *, limit: int = 200) -> list[dict]:
    """Who opened, jumped in, exported or held this recording, newest first, from the audit."""
    events = (AuditEvent.objects.filter(session_ref=recording.session.reference,
                                        event_type__in=[str(t) for t in WATCH_EVENTS],
                                        details__recording=recording.pk)
              .order_by("-seq")[:limit])
    return [{"event": event, "summary": watch_summary(event)} for event in events]


def watch_summary(event: AuditEvent) -> str:
    details = event.details or {}
    if event.event_type == EventType.RECORDING_SEEKED:
        start, end = details.get("from_us"), details.get("to_us") or 0
        return _("from %(start)s to %(end)s") % {
            "start": "–" if start is None else clock(start), "end": clock(end)}
    if details.get("reason"):
        return details["reason"]
    if details.get("error"):
        return details["error"]
    return ""


def read_segment(recording: Recording, number: int) -> bytes:
    """One decrypted segment, checked against the signed manifest (RecordingCorrupt if not)."""
    reader = fmt.RecordingReader(archive.ArchiveSource(recording), manifest=recording.manifest)
    return reader.segment(number)


def export_intact(export: RecordingExport) -> bool:
    """Whether the stored file of a finished export still has the SHA-256 that was audited."""
    digest = hashlib.sha256()
    try:
        with archive.storage().open(export.storage_name, "rb") as file:
            for chunk in iter(lambda: file.read(1024 * 1024), b""):
                digest.update(chunk)
    except (OSError, ValueError):
        return False
    return digest.hexdigest() == export.sha256


# --- Audited reviewer steps --------------------------------------------------------------------


def _last_segment_key(user_id: int, recording_id: int) -> str:
    return f"recording-player:{user_id}:{recording_id}:last-segment"


def _burst_key(user_id: int, recording_id: int) -> str:
    return f"recording-player:{user_id}:{recording_id}:seek-burst"


def record_viewed(request, *, recording: Recording) -> AuditEvent:
    """The reviewer opened the player: audited, and the next segment 0 counts as its start."""
    cache.delete(_last_segment_key(request.user.pk, recording.pk))
    return record_for_request(
        request, event_type=EventType.RECORDING_VIEWED,
        session_ref=recording.session.reference,
        details={"recording": recording.pk, "manifest_sha256": recording.manifest_sha256},
    )


def record_segment_served(request, *, recording: Recording, number: int,
                          seek_to_us: int | None = None,
                          from_us: int | None = None) -> AuditEvent | None:
    """Note the segment served to this reviewer; audit it as a seek if it is one.

    A seek is a request that carries ``?seek=`` or is not the segment after the last one this
    reviewer got for this recording. Only the first seek of a burst is audited: none within
    SEEK_BURST_SECONDS before it. Returns the RECORDING_SEEKED event, if one was written.
    """
    user_id = request.user.pk
    last = cache.get(_last_segment_key(user_id, recording.pk))
    cache.set(_last_segment_key(user_id, recording.pk), number, VIEWER_STATE_SECONDS)
    sequential = number == (0 if last is None else last + 1)
    if seek_to_us is None and sequential:
        return None
    # The burst's start is kept as a time, not as a key's expiry, so that the rule follows the
    # portal's clock on every cache backend. Two jumps at the same instant may both be audited:
    # an event too many, never one too few.
    now = time.time()
    burst_started = cache.get(_burst_key(user_id, recording.pk))
    if burst_started is not None and now - burst_started < SEEK_BURST_SECONDS:
        return None
    cache.set(_burst_key(user_id, recording.pk), now, VIEWER_STATE_SECONDS)
    segments = (recording.manifest or {}).get("segments", [])
    to_us = seek_to_us if seek_to_us is not None else segments[number]["first_us"]
    return record_for_request(
        request, event_type=EventType.RECORDING_SEEKED,
        session_ref=recording.session.reference,
        details={"recording": recording.pk, "from_us": from_us, "to_us": to_us,
                 "from_segment": last, "to_segment": number},
    )


def record_export_downloaded(request, *, export: RecordingExport) -> AuditEvent:
    return record_for_request(
        request, event_type=EventType.RECORDING_EXPORT_DOWNLOADED,
        session_ref=export.recording.session.reference,
        details={"recording": export.recording_id, "export": export.pk,
                 "sha256": export.sha256, "bytes": export.size_bytes},
    )


def record_refused(request, *, permission: str, recording_id: int,
                   session_ref: str = "") -> AuditEvent:
    """A reviewer page or segment refused for lack of permission."""
    return record_for_request(
        request, event_type=EventType.ACCESS_DENIED, session_ref=session_ref,
        details={"path": request.path[:200], "permission": permission,
                 "recording": recording_id},
    )


def record_integrity_failure(request, *, recording: Recording, problem: str,
                             found_by: str) -> AuditEvent:
    """A segment or an export that no longer matches its hash: refused to the reviewer, audited."""
    return record_for_request(
        request, event_type=EventType.RECORDING_VERIFICATION_FAILED,
        session_ref=recording.session.reference,
        details={"recording": recording.pk, "manifest_sha256": recording.manifest_sha256,
                 "problems": [problem[:500]], "found_by": found_by},
    )
