"""The live session's sockets: every message type and every refusal (docs/protocol.md).

Runs on the in-memory channel layer by default and on Redis when REDIS_URL is set (CI).
"""

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from audit.event_types import EventType
from consent import actions as consent_actions
from consent.models import ConsentEvent, ConsentEventKind, TermsVersion
from portal.asgi import application
from sessions_app import actions, protocol
from sessions_app.models import ChatMessage, EndReason, SessionState, SupportSession
from tests.personas import events, make_staff, sign_in_password_only, sign_in_verified
from tests.sessions import waiting_customer
from tests.test_staff_socket import sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("office_open", "thread_connections_closed", "terms"),
]


@pytest.fixture
def terms(db):
    """The shipped terms (a transactional test before this one flushed the migration's rows)."""
    TermsVersion.objects.get_or_create(
        version=1, language="de",
        defaults={"text": "AGB\n\nText.", "published_at": "2026-01-01T00:00Z"},
    )


def active_session(user, *, full_control=False):
    session = waiting_customer(user)
    terms = TermsVersion.objects.current("de")
    consent_actions.give_consent(
        session=session, terms_id=terms.pk, language="de",
        answers=consent_actions.Answers(True, True, True, full_control), ip="203.0.113.5",
    )
    actions.admit_customer(session=session, by_user=user)
    session.refresh_from_db()
    return session, actions.issue_live_token(session=session)


def tile(seq=1, *, x=0, y=0, w=64, h=64, screen=(1280, 800), keyframe=False, payload=b"\xff" * 100):
    if keyframe:
        x, y, (w, h) = 0, 0, screen
    return protocol.pack_tile(
        protocol.Tile(seq, 1_700_000_000_000, *screen, x, y, w, h, protocol.CODEC_JPEG,
                      protocol.FLAG_KEYFRAME if keyframe else 0),
        payload,
    )


def socket(path, client=None):
    headers = [(b"origin", b"http://testserver")]
    if client is not None:
        cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
        headers.append((b"cookie", f"{cookie.key}={cookie.value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def customer(token):
    communicator = socket("/ws/live/customer/")
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "hello", "token": token})
    welcome = await communicator.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome" and welcome["role"] == "customer"
    return communicator


async def staff(user, session, *, path="staff"):
    client = Client()
    await sync(sign_in_verified, client, user)
    communicator = socket(f"/ws/live/{path}/{session.reference}/", client)
    assert (await communicator.connect())[0]
    return communicator


async def welcomed(communicator):
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "welcome", message
    return message


async def next_of(communicator, kind, *, limit=10):
    """The next JSON message of ``kind``, skipping others (peer notices, heartbeats)."""
    for _ in range(limit):
        message = await communicator.receive_json_from(timeout=5)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


async def closed_with(communicator):
    """Read until the socket closes; return its close code. Then let the consumer see the
    disconnect, as daphne would, so that it finishes before the test's event loop does."""
    for _ in range(20):
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            await communicator.disconnect()
            return output["code"]
    raise AssertionError("socket did not close")


async def both(alice, **kwargs):
    session, token = await sync(lambda: active_session(alice, **kwargs))
    cust = await customer(token)
    viewer = await staff(alice, session)
    await welcomed(viewer)
    assert (await next_of(cust, "peer"))["role"] == "staff"
    assert (await next_of(cust, "keyframe_request"))
    return session, cust, viewer


def refusals():
    return [e.details for e in events(EventType.LIVE_REFUSED)]


# --- Connecting ------------------------------------------------------------------------------


async def test_screen_tiles_go_from_the_customer_to_the_staff_member(alice):
    session, cust, viewer = await both(alice)
    sent = tile(1, keyframe=True)
    await cust.send_to(bytes_data=sent)
    assert await viewer.receive_from(timeout=5) == sent
    await viewer.send_json_to({"type": "ack", "seq": 1})
    await cust.disconnect()
    await viewer.disconnect()


async def test_a_used_token_is_refused(alice):
    session, token = await sync(lambda: active_session(alice))
    first = await customer(token)
    await first.disconnect()
    second = socket("/ws/live/customer/")
    await second.connect()
    await second.send_json_to({"type": "hello", "token": token})
    assert await closed_with(second) == protocol.CLOSE_BAD_TOKEN
    assert await sync(refusals) == [
        {"role": "customer", "close_code": 4403, "reason": "token already used"}
    ]


async def test_a_second_customer_connection_is_refused_and_the_first_told(alice):
    session, cust, viewer = await both(alice)
    token = await sync(lambda: actions.issue_live_token(session=session))
    intruder = socket("/ws/live/customer/")
    await intruder.connect()
    await intruder.send_json_to({"type": "hello", "token": token})
    assert await closed_with(intruder) == protocol.CLOSE_DUPLICATE
    assert (await sync(refusals))[0]["reason"] == "second customer connection"
    told = {"type": "peer_refused", "role": "customer", "code": 4409,
            "reason": "second customer connection"}
    assert await next_of(cust, "peer_refused") == told
    assert await next_of(viewer, "peer_refused") == told
    await cust.disconnect()
    await viewer.disconnect()


async def test_refusals_at_the_first_message_are_in_the_sessions_history(alice):
    """The token names the session: a used token (4403) and a second connection (4409) are
    audited under the session's reference, and its staff member is told."""
    session, token = await sync(lambda: active_session(alice))
    cust = await customer(token)
    viewer = await staff(alice, session)
    await welcomed(viewer)
    for hello, code, reason in [
        (token, 4403, "token already used"),
        (await sync(lambda: actions.issue_live_token(session=session)), 4409,
         "second customer connection"),
    ]:
        refused = socket("/ws/live/customer/")
        await refused.connect()
        await refused.send_json_to({"type": "hello", "token": hello})
        assert await closed_with(refused) == code
        assert await next_of(viewer, "peer_refused") == {
            "type": "peer_refused", "role": "customer", "code": code, "reason": reason,
        }
    history = await sync(lambda: [(e.session_ref, e.details["close_code"])
                                  for e in events(EventType.LIVE_REFUSED)])
    assert history == [(session.reference, 4403), (session.reference, 4409)]
    await cust.disconnect()
    await viewer.disconnect()


@pytest.mark.parametrize("token", ["1234567", "x" * 43, ""])
async def test_the_seven_digit_key_or_a_forged_token_opens_nothing(alice, token):
    communicator = socket("/ws/live/customer/")
    await communicator.connect()
    await communicator.send_json_to({"type": "hello", "token": token})
    assert await closed_with(communicator) == protocol.CLOSE_BAD_TOKEN


async def test_anything_before_hello_is_refused(db):
    communicator = socket("/ws/live/customer/")
    await communicator.connect()
    await communicator.send_json_to({"type": "chat", "text": "hi"})
    assert await closed_with(communicator) == protocol.CLOSE_BAD_TOKEN


async def test_no_hello_in_time_closes_the_socket(settings, db):
    settings.LIVE_HEARTBEAT_SECONDS = 0.2
    communicator = socket("/ws/live/customer/")
    await communicator.connect()
    assert await closed_with(communicator) == protocol.CLOSE_TIMEOUT


async def test_staff_sockets_need_the_second_factor_and_the_assignment(alice):
    session, token = await sync(lambda: active_session(alice))
    client = Client()
    await sync(sign_in_password_only, client, alice)
    password_only = socket(f"/ws/live/staff/{session.reference}/", client)
    await password_only.connect()
    assert await closed_with(password_only) == 4401
    erik = await sync(make_staff, "erik", "Support staff")
    other = await staff(erik, session)
    assert await closed_with(other) == protocol.CLOSE_FORBIDDEN
    bob = await sync(make_staff, "bobby", "Compliance officer")
    not_staff = await staff(bob, session)
    assert await closed_with(not_staff) == 4401  # lacks the support permission


# --- Bad messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ({"text": '{"type": "launch_missiles"}'}, 4422, "unknown type 'launch_missiles'"),
        ({"text": "not json"}, 4422, "not JSON"),
        ({"text": '{"type": "chat"}'}, 4422, "chat: missing text"),
        ({"text": '{"type": "chat", "text": "hi", "evil": 1}'}, 4422, "unknown fields ['evil']"),
        ({"bytes": b"\x01\x01short"}, 4422, "binary message shorter than its header"),
        ({"bytes": tile(x=1270, w=64)}, 4422, "tile outside the screen"),
        ({"bytes": b"\x02" + tile()[1:]}, 4422, "protocol version 2"),
        ({"bytes": tile()[:1] + b"\x09" + tile()[2:]}, 4422, "unknown binary kind 9"),
    ],
)
async def test_a_bad_customer_message_closes_it_and_tells_the_staff_member(
    alice, message, code, reason
):
    session, cust, viewer = await both(alice)
    if "text" in message:
        await cust.send_to(text_data=message["text"])
    else:
        await cust.send_to(bytes_data=message["bytes"])
    assert await closed_with(cust) == code
    notice = await next_of(viewer, "peer_refused")
    assert notice == {"type": "peer_refused", "role": "customer", "code": code, "reason": reason}
    assert (await sync(refusals))[0]["reason"] == reason
    await viewer.disconnect()


async def test_an_oversized_message_is_refused(alice, settings):
    settings.LIVE_MAX_MESSAGE_BYTES = 2000
    session, cust, viewer = await both(alice)
    await cust.send_to(bytes_data=tile(payload=b"x" * 3000))
    assert await closed_with(cust) == protocol.CLOSE_TOO_LARGE
    await viewer.disconnect()


async def test_too_many_messages_are_refused(alice, settings):
    settings.LIVE_MAX_MESSAGES_PER_SECOND = 10
    session, cust, viewer = await both(alice)
    for _ in range(30):
        await cust.send_json_to({"type": "heartbeat"})
    assert await closed_with(cust) == protocol.CLOSE_TOO_FAST
    await viewer.disconnect()


async def test_input_without_control_closes_the_staff_socket(alice):
    session, cust, viewer = await both(alice)
    await viewer.send_json_to({"type": "input", "event": "pointermove", "x": 0.5, "y": 0.5})
    assert await closed_with(viewer) == protocol.CLOSE_NOT_ALLOWED
    assert (await next_of(cust, "peer_refused"))["reason"] == "input without control"
    await cust.disconnect()


async def test_an_observer_may_not_chat(alice, bob):
    session, cust, viewer = await both(alice)
    observer = await staff(bob, session, path="observe")
    await welcomed(observer)
    await observer.send_json_to({"type": "chat", "text": "hello"})
    assert await closed_with(observer) == protocol.CLOSE_BAD_MESSAGE
    await cust.disconnect()
    await viewer.disconnect()


# --- The session's steps ---------------------------------------------------------------------


async def test_chat_goes_both_ways_and_is_stored(alice):
    session, cust, viewer = await both(alice)
    await cust.send_json_to({"type": "chat", "text": "Das Fenster ist leer."})
    line = await next_of(viewer, "chat")
    assert (line["from"], line["name"], line["text"]) == ("customer", "Erika Muster",
                                                         "Das Fenster ist leer.")
    assert (await next_of(cust, "chat"))["text"] == "Das Fenster ist leer."  # the echo
    await viewer.send_json_to({"type": "chat", "text": "Bitte klicken Sie auf Neu laden."})
    assert (await next_of(cust, "chat"))["text"] == "Bitte klicken Sie auf Neu laden."
    texts = await sync(lambda: list(ChatMessage.objects.values_list("sender", "text")))
    assert texts == [("customer", "Das Fenster ist leer."),
                     ("staff", "Bitte klicken Sie auf Neu laden.")]
    await cust.disconnect()
    await viewer.disconnect()


async def test_control_is_requested_granted_used_and_revoked(alice):
    session, cust, viewer = await both(alice)
    await viewer.send_json_to({"type": "control_request"})
    assert await next_of(cust, "control_request")
    await cust.send_json_to({"type": "control_grant"})
    assert (await next_of(viewer, "control"))["granted"] is True
    move = {"type": "input", "event": "pointerdown", "x": 0.25, "y": 0.75, "button": 0}
    await viewer.send_json_to(move)
    assert await next_of(cust, "input") == move
    await cust.send_json_to({"type": "control_revoke"})
    assert (await next_of(viewer, "control"))["granted"] is False
    kinds = await sync(lambda: list(ConsentEvent.objects.values_list("kind", flat=True)))
    assert kinds == [ConsentEventKind.CONTROL_REQUESTED, ConsentEventKind.CONTROL_GRANTED,
                     ConsentEventKind.CONTROL_REVOKED]
    # Input already on its way when control ended is dropped, not punished.
    await viewer.send_json_to(move)
    assert (await next_of(viewer, "error")) == {"type": "error", "code": 0,
                                               "reason": "input dropped"}
    assert (await next_of(cust, "control"))["step"] == "revoked"  # its own, echoed
    assert await cust.receive_nothing(timeout=0.3)  # but no input
    await cust.disconnect()
    await viewer.disconnect()


async def test_input_long_after_control_ended_closes_the_staff_socket(alice, monkeypatch):
    from live import consumers

    monkeypatch.setattr(consumers, "INPUT_RACE_SECONDS", 0.0)
    session, cust, viewer = await both(alice, full_control=True)
    await cust.send_json_to({"type": "control_revoke"})
    assert (await next_of(viewer, "control"))["step"] == "revoked"
    await viewer.send_json_to({"type": "input", "event": "keydown", "key": "a"})
    assert await closed_with(viewer) == protocol.CLOSE_NOT_ALLOWED
    await cust.disconnect()


async def test_the_adviser_gives_control_back(alice):
    session, cust, viewer = await both(alice, full_control=True)
    await viewer.send_json_to({"type": "control_release"})
    released = await next_of(cust, "control")
    assert (released["granted"], released["step"]) == (False, "released")
    kinds = await sync(lambda: list(ConsentEvent.objects.values_list("kind", flat=True)))
    assert kinds == [ConsentEventKind.CONTROL_GRANTED, ConsentEventKind.CONTROL_RELEASED]
    await cust.disconnect()
    await viewer.disconnect()


async def test_an_observer_who_came_first_is_announced_to_the_customer(alice, bob):
    session, token = await sync(lambda: active_session(alice))
    observer = await staff(bob, session, path="observe")
    await welcomed(observer)
    cust = await customer(token)
    peer = await next_of(cust, "peer")
    assert (peer["role"], peer["present"], peer["name"]) == ("observer", True, "bob")
    await cust.disconnect()
    await observer.disconnect()


async def test_a_denied_request_grants_nothing_and_granting_twice_is_refused(alice):
    session, cust, viewer = await both(alice)
    await viewer.send_json_to({"type": "control_request"})
    await next_of(cust, "control_request")
    await cust.send_json_to({"type": "control_deny"})
    assert (await next_of(viewer, "control"))["granted"] is False
    await cust.send_json_to({"type": "control_grant"})  # nothing pending any more
    error = await next_of(cust, "error")
    assert error["code"] == 0
    await cust.disconnect()
    await viewer.disconnect()


async def test_pause_stops_screen_and_input_and_resume_restarts(alice):
    session, cust, viewer = await both(alice, full_control=True)
    await cust.send_json_to({"type": "pause"})
    assert (await next_of(viewer, "sharing"))["paused"] is True
    assert await sync(lambda: SupportSession.objects.get(pk=session.pk).sharing_paused)
    await cust.send_json_to({"type": "resume"})
    assert (await next_of(viewer, "sharing"))["paused"] is False
    await cust.send_to(bytes_data=tile(2, keyframe=True))
    assert await viewer.receive_from(timeout=5)
    await cust.send_json_to({"type": "pause"})
    await next_of(viewer, "sharing")
    await cust.send_to(bytes_data=tile(3))
    assert await closed_with(cust) == protocol.CLOSE_NOT_ALLOWED
    assert await sync(lambda: [e.event_type for e in events(EventType.SHARING_PAUSED)])
    await viewer.disconnect()


@pytest.mark.parametrize("who", ["customer", "staff"])
async def test_either_side_ends_and_every_socket_is_told(alice, bob, who):
    session, cust, viewer = await both(alice)
    observer = await staff(bob, session, path="observe")
    await welcomed(observer)
    assert (await next_of(cust, "peer"))["role"] == "observer"
    await (cust if who == "customer" else viewer).send_json_to({"type": "end"})
    for communicator in (cust, viewer, observer):
        ended = await next_of(communicator, "ended")
        assert ended["reason"] == f"{who}_ended"
        assert await closed_with(communicator) == protocol.CLOSE_ENDED
    session = await sync(lambda: SupportSession.objects.get(pk=session.pk))
    assert (session.state, session.end_reason) == (SessionState.ENDED, f"{who}_ended")


async def test_a_lost_customer_ends_the_session_after_the_grace_period(alice):
    session, cust, viewer = await both(alice)
    await cust.disconnect()
    assert (await next_of(viewer, "peer"))["present"] is False
    lost = await sync(lambda: SupportSession.objects.get(pk=session.pk))
    assert lost.customer_channel == "" and lost.customer_lost_at is not None
    assert await sync(lambda: actions.end_if_still_lost(session.pk, lost_at=lost.customer_lost_at))
    assert (await next_of(viewer, "ended"))["reason"] == EndReason.CONNECTION_LOST
    assert await closed_with(viewer) == protocol.CLOSE_ENDED
    # A second run (a duplicate task) changes nothing.
    assert not await sync(lambda: actions.end_if_still_lost(session.pk,
                                                            lost_at=lost.customer_lost_at))


async def test_a_customer_back_within_the_grace_period_keeps_the_session(alice):
    session, cust, viewer = await both(alice)
    await cust.disconnect()
    lost = await sync(lambda: SupportSession.objects.get(pk=session.pk))
    token = await sync(lambda: actions.issue_live_token(session=session))
    back = await customer(token)
    assert not await sync(lambda: actions.end_if_still_lost(session.pk,
                                                            lost_at=lost.customer_lost_at))
    assert (await sync(lambda: SupportSession.objects.get(pk=session.pk))).state == "active"
    await back.disconnect()
    await viewer.disconnect()


# --- Flow control ------------------------------------------------------------------------------


async def test_a_slow_viewer_gets_the_newest_keyframe_not_a_backlog(alice, settings):
    settings.LIVE_VIEWER_WINDOW_BYTES = 1000
    session, cust, viewer = await both(alice)
    first = tile(1, payload=b"a" * 600)
    await cust.send_to(bytes_data=first)
    assert await viewer.receive_from(timeout=5) == first
    # No ack: the next tiles overflow the window and are dropped; a keyframe is asked for.
    for seq in range(2, 6):
        await cust.send_to(bytes_data=tile(seq, payload=b"b" * 600))
    assert await next_of(cust, "keyframe_request")
    assert await viewer.receive_nothing(timeout=0.3)
    await viewer.send_json_to({"type": "ack", "seq": 1})
    await asyncio.sleep(0.1)
    await cust.send_to(bytes_data=tile(6, payload=b"c" * 100))  # stale: still dropped
    keyframe = tile(7, keyframe=True, payload=b"k" * 300)
    await cust.send_to(bytes_data=keyframe)
    assert await viewer.receive_from(timeout=5) == keyframe
    await cust.disconnect()
    await viewer.disconnect()


def test_the_protocol_constants_match_the_document():
    text = (settings.BASE_DIR / "docs/protocol.md").read_text()
    for name in ("CLOSE_ENDED", "CLOSE_BAD_TOKEN", "CLOSE_FORBIDDEN", "CLOSE_DUPLICATE",
                 "CLOSE_TOO_LARGE", "CLOSE_BAD_MESSAGE", "CLOSE_NOT_ALLOWED", "CLOSE_TOO_FAST",
                 "CLOSE_TIMEOUT", "CLOSE_NOT_VERIFIED", "CLOSE_BYTE_LIMIT"):
        assert f"| {getattr(protocol, name)} | `{name}` |" in text, name
    assert f"{protocol.HEADER_BYTES} bytes" in text
    assert f"`{protocol.HEADER.format}`" in text
    for role, kinds in protocol.CLIENT_MESSAGES.items():
        for kind in kinds:
            assert f"`{kind}`" in text, (role, kind)
    assert json.dumps(protocol.PROTOCOL_VERSION) in text


async def test_what_was_in_flight_after_ones_own_end_is_dropped_quietly(alice):
    """The browser may still send a tile or a line after its own `end`: not a violation."""
    session, cust, viewer = await both(alice)
    await viewer.send_json_to({"type": "end"})
    await viewer.send_json_to({"type": "chat", "text": "one more thing"})
    assert await closed_with(viewer) == protocol.CLOSE_ENDED
    assert await closed_with(cust) == protocol.CLOSE_ENDED
    assert not await sync(lambda: ChatMessage.objects.exists())
    assert await sync(refusals) == []


async def test_a_lost_tile_makes_the_viewer_wait_for_a_keyframe(alice):
    session, cust, viewer = await both(alice)
    first = tile(1, keyframe=True)
    await cust.send_to(bytes_data=first)
    assert await viewer.receive_from(timeout=5) == first
    await cust.send_to(bytes_data=tile(3))  # tile 2 never arrived
    assert await next_of(cust, "keyframe_request")
    assert await viewer.receive_nothing(timeout=0.3)
    keyframe = tile(4, keyframe=True)
    await cust.send_to(bytes_data=keyframe)
    assert await viewer.receive_from(timeout=5) == keyframe
    await cust.disconnect()
    await viewer.disconnect()


async def test_a_tile_that_waited_too_long_is_dropped(alice, settings):
    settings.LIVE_MAX_TILE_AGE_SECONDS = -1  # every tile is already too old
    session, cust, viewer = await both(alice)
    await cust.send_to(bytes_data=tile(1))
    assert await next_of(cust, "keyframe_request")
    assert await viewer.receive_nothing(timeout=0.3)
    keyframe = tile(2, keyframe=True)  # keyframes always pass
    await cust.send_to(bytes_data=keyframe)
    assert await viewer.receive_from(timeout=5) == keyframe
    await cust.disconnect()
    await viewer.disconnect()
