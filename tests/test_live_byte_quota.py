"""The byte quota: a byte rate per socket and a byte budget per session (docs/protocol.md,
"Limits"). Past either, the customer's socket closes with 4420, audited, the normal way out;
the recording ends cleanly with the last tile that was let through."""

import asyncio
import time

import pytest

from audit.event_types import EventType
from recordings import format as recording
from recordings.models import Recording
from sessions_app import actions, protocol
from tests.personas import events
from tests.test_live import (  # noqa: F401
    active_session,
    both,
    closed_with,
    customer,
    next_of,
    socket,
    terms,
    tile,
)
from tests.test_live_recording import recordings_of
from tests.test_staff_socket import sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("office_open", "thread_connections_closed", "terms"),
]

MiB = 1024 * 1024
BIG = 500 * 1024  # a large keyframe: just under the largest message


async def next_notice(communicator, kind: str) -> dict:
    """The next JSON message of ``kind``, skipping screen tiles and other messages."""
    import json

    for _ in range(200):
        frame = await communicator.receive_from(timeout=5)
        if isinstance(frame, str) and json.loads(frame)["type"] == kind:
            return json.loads(frame)
    raise AssertionError(f"no {kind} message")


def refusals(session) -> list[dict]:
    return [e.details for e in events(EventType.LIVE_REFUSED) if e.session_ref == session.reference]


def screens_recorded(settings, session) -> list[int]:
    seqs = []
    for directory in recordings_of(settings, session):
        reader = recording.RecordingReader(directory)
        records = list(reader.records())
        assert reader.ended and not reader.truncated  # closed cleanly, with its end record
        seqs += [protocol.HEADER.unpack_from(r.payload)[2] for r in records
                 if r.type_name in ("keyframe", "tile")]
    return seqs


async def test_49_mib_in_a_fifth_of_a_second_is_cut_off(alice, settings):
    session, cust, viewer = await both(alice)
    started = time.monotonic()
    for seq in range(1, 99):  # 98 x 500 KiB: 49 MiB, sent as fast as the socket takes it
        await cust.send_to(bytes_data=tile(seq, keyframe=True, payload=b"\xff" * BIG))
    assert await closed_with(cust) == protocol.CLOSE_BYTE_LIMIT
    took = time.monotonic() - started
    assert (await next_notice(viewer, "peer_refused"))["reason"] == "too many bytes per second"
    assert (await next_notice(viewer, "peer"))["present"] is False  # the normal way out
    assert await sync(refusals, session) == [
        {"role": "customer", "close_code": 4420, "reason": "too many bytes per second"},
    ]
    # The default allows a burst of two seconds' worth (16 MiB), plus what refills at 8 MiB/s
    # while the relay works through them: about 33 tiles of the 98.
    recorded = await sync(screens_recorded, settings, session)
    assert recorded == list(range(1, len(recorded) + 1))
    assert 16 * MiB <= len(recorded) * BIG <= 16 * MiB + 8 * MiB * took
    closed = await sync(lambda: list(Recording.objects.values_list("close_reason", flat=True)))
    assert closed == ["disconnected"]
    await viewer.disconnect()


async def test_a_busy_full_hd_screen_is_untouched(alice, settings):
    """A 1920x1080 screen: a 400 KB keyframe, then 20 changes a second of 60 KB each."""
    session, cust, viewer = await both(alice)
    screen = (1920, 1080)
    await cust.send_to(bytes_data=tile(1, keyframe=True, screen=screen, payload=b"k" * 400_000))
    received = [await viewer.receive_from(timeout=5)]
    for seq in range(2, 62):  # three seconds
        await cust.send_to(bytes_data=tile(seq, screen=screen, w=480, h=270,
                                           payload=b"t" * 60_000))
        received.append(await viewer.receive_from(timeout=5))
        await viewer.send_json_to({"type": "ack", "seq": seq})
        await asyncio.sleep(0.05)
    assert [protocol.HEADER.unpack_from(data)[2] for data in received] == list(range(1, 62))
    await cust.send_json_to({"type": "heartbeat"})
    assert await next_of(cust, "heartbeat")
    assert await sync(refusals, session) == []
    await cust.disconnect()
    await viewer.disconnect()


async def test_the_session_budget_holds_across_reconnects(alice, settings):
    settings.LIVE_MAX_SESSION_BYTES = 3 * MiB
    session, token = await sync(lambda: active_session(alice))
    first = await customer(token)
    for seq in range(1, 5):  # 2 MiB, then the connection drops
        await first.send_to(bytes_data=tile(seq, keyframe=True, payload=b"a" * (MiB // 2 - 28)))
    await first.send_json_to({"type": "heartbeat"})
    assert await next_of(first, "heartbeat")
    await first.disconnect()

    token = await sync(lambda: actions.issue_live_token(session=session))
    second = await customer(token)  # the same session: its 2 MiB still count
    for seq in range(1, 5):
        await second.send_to(bytes_data=tile(seq, keyframe=True, payload=b"b" * (MiB // 2 - 28)))
    assert await closed_with(second) == protocol.CLOSE_BYTE_LIMIT

    token = await sync(lambda: actions.issue_live_token(session=session))
    third = socket("/ws/live/customer/")  # used up: refused at once
    await third.connect()
    await third.send_json_to({"type": "hello", "token": token})
    assert await closed_with(third) == protocol.CLOSE_BYTE_LIMIT
    assert [r["reason"] for r in await sync(refusals, session)] == [
        "session byte budget used up", "session byte budget used up",
    ]
