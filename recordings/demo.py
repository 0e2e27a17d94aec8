"""A demo session with an archived recording, so that `make run` has something to play back."""

from __future__ import annotations

import io
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from recordings import actions, archive
from recordings import format as fmt
from recordings.models import Recording
from sessions_app import protocol
from sessions_app.models import EndReason, SessionState, SupportSession

DEMO_CUSTOMER = "Demo Bäckerei Muster GmbH"
SCREEN = (960, 600)
SECONDS = 60


def ensure_demo_recording(*, staff: AbstractBaseUser) -> Recording:
    """One ended demo session with an archived recording (made once)."""
    existing = Recording.objects.filter(session__customer_name=DEMO_CUSTOMER).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        ended = timezone.now() - timedelta(hours=1)
        session = SupportSession.objects.create(
            reference=f"demo-{secrets.token_hex(6)}", customer_name=DEMO_CUSTOMER,
            call_note="Demo: call about a failing transfer", assigned_to=staff,
            scheduled_by=staff, slot_start=ended - timedelta(minutes=30), slot_end=ended,
            state=SessionState.ENDED, admitted_at=ended - timedelta(seconds=SECONDS),
            ended_at=ended, end_reason=EndReason.CUSTOMER_ENDED,
            customer_entered_name="Erika Muster",
        )
        session.reference = f"FW-DEMO-{session.pk:06d}"
        session.save(update_fields=["reference"])
        relative = f"{session.reference}/connection-demo"
        recording = actions.start_recording(session=session, directory=relative)
    write_demo(settings.RECORDINGS_DIR / relative, session.reference)
    actions.close_recording(recording_id=recording.pk, reason="ended")
    archive.run(recording.pk)
    recording.refresh_from_db()
    return recording


def write_demo(directory, reference: str) -> None:
    writer = fmt.RecordingWriter(directory, reference)
    writer.event({"type": "recording_started", "session": reference}, at_us=0)
    seq = 0
    for second in range(SECONDS):
        at_us = second * 1_000_000
        seq += 1
        writer.keyframe(wire(seq, picture(second), keyframe=True), at_us)
        if second == 8:
            writer.chat({"type": "chat", "from": "customer", "name": "Erika Muster",
                         "text": "Guten Tag, die Überweisung bricht mit Fehler 4711 ab."},
                        at_us + 1, channel=fmt.CHANNEL_CUSTOMER)
        if second == 15:
            writer.chat({"type": "chat", "from": "staff", "name": "Sabine Support",
                         "text": "Danke, ich sehe es. Darf ich kurz übernehmen?"},
                        at_us + 1, channel=fmt.CHANNEL_STAFF)
            writer.event({"type": "control_request"}, at_us + 2)
        if second == 18:
            writer.event({"type": "control", "granted": True, "by": "customer",
                          "step": "granted"}, at_us + 1)
        if 20 <= second < 40:
            writer.input({"type": "input", "event": "pointermove", "x": second / 60,
                          "y": 0.5}, at_us + 3)
        if second == 40:
            writer.event({"type": "control", "granted": False, "by": "customer",
                          "step": "revoked"}, at_us + 1)
    writer.end("customer_ended", SECONDS * 1_000_000)


def picture(second: int) -> bytes:
    """A plain banking window whose progress bar moves, so that playback visibly plays."""
    width, height = SCREEN
    image = Image.new("RGB", SCREEN, (236, 240, 244))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, 48], fill=(0, 70, 120))
    draw.text((16, 16), "Musterbank Business – Überweisung", fill=(255, 255, 255))
    draw.rectangle([40, 90, width - 40, 420], outline=(120, 130, 140), fill=(255, 255, 255))
    for row, label in enumerate(("Empfänger", "IBAN", "Betrag", "Verwendungszweck")):
        draw.text((64, 120 + row * 60), label, fill=(40, 40, 40))
        draw.rectangle([260, 112 + row * 60, width - 80, 140 + row * 60], outline=(160, 160, 160))
    colour = (200, 40, 40) if second < 40 else (30, 140, 60)
    draw.text((64, 380), "Fehler 4711" if second < 40 else "Überweisung ausgeführt", fill=colour)
    draw.rectangle([40, 460, 40 + (width - 80) * (second + 1) // SECONDS, 480], fill=colour)
    draw.text((40, 500), f"{second // 60:02d}:{second % 60:02d}", fill=(40, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def wire(seq: int, image: bytes, *, keyframe: bool) -> bytes:
    width, height = SCREEN
    tile = protocol.Tile(seq, seq * 1000, width, height, 0, 0, width, height,
                         protocol.CODEC_JPEG, protocol.FLAG_KEYFRAME if keyframe else 0)
    return protocol.pack_tile(tile, image)
