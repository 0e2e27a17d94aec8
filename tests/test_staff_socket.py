"""The staff console WebSocket: only for staff who passed both factors."""

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from audit.event_types import EventType
from audit.models import AuditEvent
from portal.asgi import application
from portal.staff_access import CLOSE_NOT_VERIFIED, LAST_SEEN_SESSION_KEY
from tests.personas import sign_in_password_only, sign_in_verified

PATH = "/ws/staff/console/"


def socket_for(client) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if cookie:
        headers.append((b"cookie", f"{cookie.key}={cookie.value}".encode()))
    return WebsocketCommunicator(application, PATH, headers=headers)


async def refused_with(communicator) -> int:
    connected, _ = await communicator.connect()
    assert connected
    output = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    assert output["type"] == "websocket.close"
    return output["code"]


pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("thread_connections_closed"),
]



async def test_it_welcomes_a_verified_staff_member(client, alice):
    await sync(sign_in_verified, client, alice)
    communicator = socket_for(client)
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from(timeout=5) == {"type": "welcome", "user": "alice"}
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


async def test_password_only_is_refused_and_audited(client, alice):
    await sync(sign_in_password_only, client, alice)
    assert await refused_with(socket_for(client)) == CLOSE_NOT_VERIFIED
    event = await sync(lambda: AuditEvent.objects.get(event_type=EventType.SOCKET_REFUSED))
    assert event.actor_label == "alice"
    assert event.details["reason"] == "second factor not verified"


async def test_no_session_is_refused(client, db):
    assert await refused_with(socket_for(client)) == CLOSE_NOT_VERIFIED
    event = await sync(lambda: AuditEvent.objects.get(event_type=EventType.SOCKET_REFUSED))
    assert event.details["reason"] == "not signed in"


async def test_an_idle_session_is_refused(client, alice):
    await sync(sign_in_verified, client, alice)

    def make_idle():
        session = client.session
        session[LAST_SEEN_SESSION_KEY] = 0
        session.save()

    await sync(make_idle)
    assert await refused_with(socket_for(client)) == CLOSE_NOT_VERIFIED


async def test_a_foreign_origin_is_rejected(client, alice):
    await sync(sign_in_verified, client, alice)
    communicator = socket_for(client)
    communicator.scope["headers"] = [
        (b"origin", b"https://evil.example") if name == b"origin" else (name, value)
        for name, value in communicator.scope["headers"]
    ]
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def sync(function, *args):
    from asgiref.sync import sync_to_async

    return await sync_to_async(function)(*args)


@pytest.mark.parametrize(
    "frame",
    [{"text": "[" * 100_000}, {"text": "not json"}, {"text": "[1, 2]"}, {"bytes": b"\x00\x01"},
     {"text": '{"type": "ping", "x": "\\ud800"}' + " " * 2000}],
)
async def test_a_bad_message_closes_the_console_socket_with_4422(client, alice, frame):
    await sync(sign_in_verified, client, alice)
    communicator = socket_for(client)
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=5))["type"] == "welcome"
    await communicator.send_input({"type": "websocket.receive", **frame})
    output = await communicator.receive_output(timeout=5)  # raises what the consumer raised
    assert output == {"type": "websocket.close", "code": 4422}
    await communicator.disconnect()
    event = await sync(lambda: AuditEvent.objects.get(event_type=EventType.SOCKET_REFUSED))
    assert event.details["reason"] == "bad message"
