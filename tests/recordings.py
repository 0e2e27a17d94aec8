"""Helpers for tests of recordings: real JPEG screens, written recordings, archived ones."""

from __future__ import annotations

import io
import secrets

from django.conf import settings
from PIL import Image

from recordings import actions, archive
from recordings import format as fmt
from recordings.models import Recording
from sessions_app import protocol

SCREEN = (320, 200)
RED, GREEN, BLUE = (220, 30, 30), (30, 200, 30), (30, 30, 220)


def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def screen(seq: int, colour, *, keyframe: bool = False, at: tuple[int, int] = (0, 0),
           size: tuple[int, int] = (64, 64), screen_size: tuple[int, int] = SCREEN) -> bytes:
    """A screen message as the customer's browser sends it: a keyframe or one tile."""
    x, y = (0, 0) if keyframe else at
    w, h = screen_size if keyframe else size
    tile = protocol.Tile(seq=seq, captured_ms=seq * 1000, screen_w=screen_size[0],
                         screen_h=screen_size[1], x=x, y=y, w=w, h=h,
                         codec=protocol.CODEC_JPEG,
                         flags=protocol.FLAG_KEYFRAME if keyframe else 0)
    return protocol.pack_tile(tile, jpeg(w, h, colour))


def write_recording(session, *, seconds: int = 30, chat_at: int = 12, end: bool = True,
                    picture: bool = True, **writer_options) -> Recording:
    """A recording as the relay writes it: a red keyframe at 0 s, a green keyframe every 10 s,
    a blue tile every second, a chat line at ``chat_at`` s and a control grant at 20 s
    (``picture=False``: the chat and the events only, as when the customer never shared)."""
    relative = f"{session.reference}/connection-test-{secrets.token_hex(4)}"
    recording = actions.start_recording(session=session, directory=relative)
    writer = fmt.RecordingWriter(settings.RECORDINGS_DIR / relative, session.reference,
                                 **writer_options)
    writer.event({"type": "recording_started", "session": session.reference}, at_us=0)
    if picture:
        writer.keyframe(screen(1, RED, keyframe=True), 0)
    for second in range(1, seconds + 1):
        at_us = second * 1_000_000
        if not picture:
            pass
        elif second % 10 == 0:
            writer.keyframe(screen(second + 1, GREEN, keyframe=True), at_us)
        else:
            writer.tile(screen(second + 1, BLUE, at=(64, 64)), at_us)
        if second == chat_at:
            writer.chat({"type": "chat", "from": "staff", "name": "Alice Adviser",
                         "text": "Bitte klicken Sie auf Überweisung."}, at_us + 1,
                        channel=fmt.CHANNEL_STAFF)
        if second == 20:
            writer.event({"type": "control", "granted": True, "by": "customer",
                          "step": "granted"}, at_us + 2)
    if end:
        writer.end("customer_ended", (seconds + 1) * 1_000_000)
    else:
        writer.close()
    return recording


def archived_recording(session, **options) -> Recording:
    """A recording closed and run through the whole archive pipeline, here and now."""
    recording = write_recording(session, **options)
    actions.close_recording(recording_id=recording.pk, reason="ended")
    assert archive.run(recording.pk) == "archived"
    recording.refresh_from_db()
    return recording
