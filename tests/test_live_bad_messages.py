"""A bad message closes only its socket, with 4422, audited, through the normal disconnect path:
the customer can come back, the "connection lost" rule runs, the recording is closed.
(docs/protocol.md, "Close codes").
"""

import pytest

from audit.event_types import EventType
from recordings.models import Recording
from sessions_app import actions, protocol
from sessions_app.models import SupportSession
from tests.personas import events
from tests.test_live import both, closed_with, customer, next_of, terms  # noqa: F401
from tests.test_staff_socket import sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("office_open", "thread_connections_closed", "terms"),
]

NESTED = '{"type": "chat", "text": ' + "[" * 100_000 + "]" * 100_000 + "}"


def history(session) -> list[tuple[str, dict]]:
    return [(e.event_type, e.details) for e in events(EventType.LIVE_REFUSED)
            if e.session_ref == session.reference]


async def the_customer_is_back(session) -> None:
    """The customer's slot was given back: a fresh token connects again (no 4409)."""
    lost = await sync(lambda: SupportSession.objects.get(pk=session.pk))
    assert lost.customer_channel == "" and lost.customer_lost_at is not None  # rule armed
    token = await sync(lambda: actions.issue_live_token(session=session))
    back = await customer(token)
    await back.disconnect()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (NESTED, "nested too deeply"),
        ('{"type": "chat", "text": "\\ud800"}', "chat: text holds characters not allowed"),
        ('{"type": "chat", "text": "a\\u0000b"}', "chat: text holds characters not allowed"),
        ('{"type": "hello", "token": NaN}', "not JSON"),
        ('{"type": "heartbeat", "x": 1e999}', "unknown fields ['x']"),
    ],
)
async def test_a_bad_customer_message_takes_the_normal_way_out(alice, text, reason):
    session, cust, viewer = await both(alice)
    await cust.send_to(text_data=text)
    assert await closed_with(cust) == protocol.CLOSE_BAD_MESSAGE
    assert await next_of(viewer, "peer_refused") == {
        "type": "peer_refused", "role": "customer", "code": 4422, "reason": reason,
    }
    assert (await next_of(viewer, "peer"))["present"] is False  # as for a lost connection
    assert await sync(history, session) == [
        (EventType.LIVE_REFUSED, {"role": "customer", "close_code": 4422, "reason": reason}),
    ]
    closed = await sync(lambda: list(Recording.objects.values_list("closed_at", flat=True)))
    assert closed and all(closed)
    await the_customer_is_back(session)
    await viewer.disconnect()


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "input", "event": "keydown", "key": "\ud800"},
         "input: key holds characters not allowed"),
        ({"type": "input", "event": "wheel", "dx": 10**400}, "input: dx out of range"),
        ({"type": "input", "event": "pointerdown", "button": 2**70},
         "input: button out of range"),
        ({"type": "ack", "seq": 2**40}, "ack: seq out of range"),
        ({"type": "ack", "seq": "1"}, "ack: seq must be int"),
    ],
)
async def test_a_bad_staff_message_closes_the_staff_socket_only(alice, message, reason):
    import json

    session, cust, viewer = await both(alice, full_control=True)
    await viewer.send_to(text_data=json.dumps(message))
    assert await closed_with(viewer) == protocol.CLOSE_BAD_MESSAGE
    assert (await next_of(cust, "peer_refused"))["reason"] == reason
    assert await sync(history, session) == [
        (EventType.LIVE_REFUSED, {"role": "staff", "close_code": 4422, "reason": reason}),
    ]
    await cust.send_json_to({"type": "heartbeat"})  # the customer's socket is untouched
    assert await next_of(cust, "heartbeat")
    await cust.disconnect()


async def test_a_nested_message_from_the_staff_member_closes_it_with_4422(alice):
    session, cust, viewer = await both(alice)
    await viewer.send_to(text_data=NESTED)
    assert await closed_with(viewer) == protocol.CLOSE_BAD_MESSAGE
    assert (await next_of(cust, "peer_refused"))["reason"] == "nested too deeply"
    await cust.disconnect()


async def test_an_unexpected_error_closes_with_4422_and_the_customer_can_come_back(
    alice, monkeypatch
):
    """Whatever a handler raises, no exception escapes the consumer (Channels would close with
    1011 and skip the disconnect)."""
    def broken(**kwargs):
        raise RuntimeError("a bug")

    session, cust, viewer = await both(alice)
    monkeypatch.setattr(actions, "post_chat", broken)
    await cust.send_json_to({"type": "chat", "text": "Hallo"})
    assert await closed_with(cust) == protocol.CLOSE_BAD_MESSAGE
    assert (await next_of(viewer, "peer_refused"))["reason"] == "unexpected RuntimeError"
    assert (await next_of(viewer, "peer"))["present"] is False
    assert (await sync(history, session))[0][1]["reason"] == "unexpected RuntimeError"
    await the_customer_is_back(session)
    await viewer.disconnect()
