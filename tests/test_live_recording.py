"""Recording in the relay: everything is written before it is forwarded, and a recording that
cannot be written ends the session at once (fail closed)."""

import errno

import pytest

from audit.event_types import EventType
from recordings import format as recording
from sessions_app import protocol
from sessions_app.models import EndReason, SessionState, SupportSession
from tests.personas import events
from tests.test_live import (  # noqa: F401 - the terms fixture
    active_session,
    both,
    closed_with,
    customer,
    next_of,
    staff,
    sync,
    terms,
    tile,
    welcomed,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("office_open", "thread_connections_closed", "terms"),
]


def recordings_of(settings, session):
    return sorted((settings.RECORDINGS_DIR / session.reference).iterdir())


async def test_the_screen_chat_and_input_are_recorded_before_they_are_relayed(alice, settings):
    session, cust, viewer = await both(alice, full_control=True)
    keyframe = tile(1, keyframe=True)
    await cust.send_to(bytes_data=keyframe)
    assert await viewer.receive_from(timeout=5) == keyframe
    await viewer.send_json_to({"type": "chat", "text": "Guten Tag"})
    await next_of(cust, "chat")
    await viewer.send_json_to({"type": "input", "event": "keydown", "key": "p"})
    assert (await next_of(cust, "input"))["key"] == "p"  # the customer gets the key itself
    await cust.send_json_to({"type": "end"})
    await next_of(viewer, "ended")
    await closed_with(cust)
    await closed_with(viewer)

    [directory] = recordings_of(settings, session)
    [started] = await sync(lambda: events(EventType.RECORDING_STARTED))
    assert started.details["directory"] == f"{session.reference}/{directory.name}"
    records = list(recording.RecordingReader(directory).records())
    kinds = [r.type_name for r in records if r.type_name != "checkpoint"]
    first_screen = next(r for r in records if r.type_name in ("keyframe", "tile"))
    assert first_screen.type_name == "keyframe" and first_screen.payload == keyframe
    assert "chat" in kinds and "input" in kinds and kinds[-1] == "end"
    [typed] = [r for r in records if r.type_name == "input"]
    assert typed.json()["key"] is None  # staff keystrokes without the key, by default
    [chat] = [r for r in records if r.type_name == "chat"]
    assert chat.json()["text"] == "Guten Tag" and chat.channel == recording.CHANNEL_STAFF


async def test_an_unwritable_recording_folder_ends_the_session_before_anything_is_relayed(
    alice, settings, tmp_path
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the recordings should go")
    settings.RECORDINGS_DIR = blocker
    session, token = await sync(lambda: active_session(alice))
    viewer = await staff(alice, session)
    await welcomed(viewer)
    cust = await _hello(token)
    ended = await next_of(cust, "ended")
    assert ended["reason"] == EndReason.RECORDING_FAILED
    assert await closed_with(cust) == protocol.CLOSE_ENDED
    assert (await next_of(viewer, "ended"))["reason"] == EndReason.RECORDING_FAILED
    assert await closed_with(viewer) == protocol.CLOSE_ENDED
    session = await sync(lambda: SupportSession.objects.get(pk=session.pk))
    assert (session.state, session.end_reason) == (SessionState.ENDED,
                                                   EndReason.RECORDING_FAILED)
    assert await sync(lambda: events(EventType.RECORDING_FAILED)[0].details["error"])


async def test_a_disk_that_fills_up_mid_session_stops_the_relay(alice, settings, monkeypatch):
    session, cust, viewer = await both(alice)

    def disk_full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recording.RecordingWriter, "_write", disk_full)
    await cust.send_to(bytes_data=tile(1, keyframe=True))
    assert (await next_of(viewer, "ended"))["reason"] == EndReason.RECORDING_FAILED
    assert await closed_with(viewer) == protocol.CLOSE_ENDED
    assert await closed_with(cust) == protocol.CLOSE_ENDED
    session = await sync(lambda: SupportSession.objects.get(pk=session.pk))
    assert session.end_reason == EndReason.RECORDING_FAILED


async def _hello(token):
    from tests.test_live import socket

    communicator = socket("/ws/live/customer/")
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "hello", "token": token})
    return communicator
