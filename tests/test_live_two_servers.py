"""Two real daphne processes on one Redis: the customer on one, the staff member on the other.
Frames, chat, control, input and the end all cross between them."""

import asyncio
import json

import pytest
import websockets
from django.conf import settings
from django.test import Client

from consent import actions as consent_actions
from consent.models import ConsentEvent, TermsVersion
from sessions_app import actions, protocol
from sessions_app.models import ChatMessage, EndReason, SessionState, SupportSession
from tests.personas import sign_in_verified
from tests.processes import child_env, free_port, http_status, start, stop, wait_until
from tests.sessions import waiting_customer

pytestmark = [
    pytest.mark.skipif(
        "RedisChannelLayer" not in settings.CHANNEL_LAYERS["default"]["BACKEND"],
        reason="two processes share a channel layer only on Redis (REDIS_URL)",
    ),
    pytest.mark.usefixtures("office_open"),
]
TIMEOUT = 10


@pytest.fixture
def two_daphnes(tmp_path, transactional_db):
    env = child_env()
    servers = []
    for name in ("a", "b"):
        port = free_port()
        log = tmp_path / f"daphne-{name}.log"
        process = start(["-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                         "portal.asgi:application"], env, log)
        servers.append((f"127.0.0.1:{port}", process, log))
    try:
        for address, _process, log in servers:
            wait_until(lambda a=address: http_status(f"http://{a}/healthz") == 200, timeout=60,
                       what=f"daphne on {address}", log=log)
        yield [address for address, _process, _log in servers]
    finally:
        for _address, process, _log in servers:
            stop(process)


def active_session(alice):
    TermsVersion.objects.get_or_create(
        version=1, language="de",
        defaults={"text": "AGB\n\nText.", "published_at": "2026-01-01T00:00Z"},
    )
    session = waiting_customer(alice)
    consent_actions.give_consent(
        session=session, terms_id=TermsVersion.objects.current("de").pk, language="de",
        answers=consent_actions.Answers(True, True, True, False), ip=None,
    )
    actions.admit_customer(session=session, by_user=alice)
    session.refresh_from_db()
    return session, actions.issue_live_token(session=session)


async def next_of(socket, kind):
    while True:
        message = await asyncio.wait_for(socket.recv(), TIMEOUT)
        if isinstance(message, str) and json.loads(message)["type"] == kind:
            return json.loads(message)


async def scenario(customer_at: str, staff_at: str, session, token: str, cookie: str) -> dict:
    seen = {}
    customer = await websockets.connect(
        f"ws://{customer_at}/ws/live/customer/", origin=f"http://{customer_at}",
    )  # offers permessage-deflate by default: the server must not take it
    seen["customer_extensions"] = customer.response.headers.get("Sec-WebSocket-Extensions")
    await customer.send(json.dumps({"type": "hello", "token": token}))
    assert (await next_of(customer, "welcome"))["session"] == session.reference
    staff = await websockets.connect(
        f"ws://{staff_at}/ws/live/staff/{session.reference}/", origin=f"http://{staff_at}",
        additional_headers={"Cookie": cookie}, compression=None,
    )
    assert (await next_of(staff, "welcome"))["customer_present"] is True
    await next_of(customer, "keyframe_request")  # the viewer joined on the other server

    frame = protocol.pack_tile(
        protocol.Tile(1, 1, 1280, 800, 0, 0, 1280, 800, protocol.CODEC_JPEG,
                      protocol.FLAG_KEYFRAME), b"\xff\xd8" + b"j" * 50_000,
    )
    await customer.send(frame)
    received = await asyncio.wait_for(staff.recv(), TIMEOUT)
    while isinstance(received, str):
        received = await asyncio.wait_for(staff.recv(), TIMEOUT)
    seen["frame_equal"] = received == frame
    await staff.send(json.dumps({"type": "ack", "seq": 1}))

    await customer.send(json.dumps({"type": "chat", "text": "Hallo aus Prozess A"}))
    seen["chat_to_staff"] = (await next_of(staff, "chat"))["text"]
    await staff.send(json.dumps({"type": "chat", "text": "Hallo aus Prozess B"}))
    await next_of(customer, "chat")  # the customer's own line comes back first
    seen["chat_to_customer"] = (await next_of(customer, "chat"))["text"]

    await staff.send(json.dumps({"type": "control_request"}))
    await next_of(customer, "control_request")
    await customer.send(json.dumps({"type": "control_grant"}))
    seen["granted"] = (await next_of(staff, "control"))["granted"]
    click = {"type": "input", "event": "pointerdown", "x": 0.5, "y": 0.5, "button": 0}
    await staff.send(json.dumps(click))
    seen["input"] = await next_of(customer, "input")

    await customer.send(json.dumps({"type": "end"}))
    seen["staff_ended"] = (await next_of(staff, "ended"))["reason"]
    await asyncio.wait_for(staff.wait_closed(), TIMEOUT)
    await asyncio.wait_for(customer.wait_closed(), TIMEOUT)
    seen["close_codes"] = (customer.close_code, staff.close_code)
    return seen


def test_a_session_spans_two_daphne_processes(two_daphnes, alice):
    session, token = active_session(alice)
    browser = Client()
    sign_in_verified(browser, alice)
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME]
    seen = asyncio.run(scenario(*two_daphnes, session, token,
                                f"{cookie.key}={cookie.value}"))
    assert seen["customer_extensions"] is None  # no permessage-deflate
    assert seen["frame_equal"]
    assert (seen["chat_to_staff"], seen["chat_to_customer"]) == ("Hallo aus Prozess A",
                                                                 "Hallo aus Prozess B")
    assert seen["granted"] is True
    assert seen["input"] == {"type": "input", "event": "pointerdown", "x": 0.5, "y": 0.5,
                             "button": 0}
    assert seen["staff_ended"] == EndReason.CUSTOMER_ENDED
    assert seen["close_codes"] == (protocol.CLOSE_ENDED, protocol.CLOSE_ENDED)
    session = SupportSession.objects.get(pk=session.pk)
    assert session.state == SessionState.ENDED
    assert ChatMessage.objects.count() == 2
    assert ConsentEvent.objects.filter(kind="control_granted").exists()
