"""A staff member's open sockets (console and live) end with the sign-in: on sign-out, after the
idle timeout, on deactivation, and when the browser session is gone (close 4401, see
docs/protocol.md and docs/staff-signin.md)."""

import asyncio
import time

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from audit.event_types import EventType
from portal.staff_access import LAST_SEEN_SESSION_KEY
from tests.personas import events, sign_in_verified
from tests.sessions import schedule
from tests.test_live import active_session, customer, next_of, socket, terms, tile  # noqa: F401
from tests.test_staff_socket import socket_for, sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("office_open", "thread_connections_closed", "terms"),
]


class Desk:
    """Alice's browser: the console page and a live session's page open, the customer sharing."""

    def __init__(self, client, console, live, cust, session):
        self.client, self.console, self.live, self.cust = client, console, live, cust
        self.session = session

    async def close(self):
        for communicator in (self.console, self.live, self.cust):
            try:
                await communicator.disconnect()
            except (Exception, asyncio.CancelledError):
                pass  # a test that failed on a timeout has cancelled it already


@pytest.fixture
def recheck_seconds():
    """How often the sockets re-check the sign-in: too seldom to matter, unless a test says."""
    return 60


@pytest.fixture
async def desk(alice, settings, recheck_seconds):
    settings.STAFF_SOCKET_RECHECK_SECONDS = recheck_seconds
    session, token = await sync(lambda: active_session(alice))
    cust = await customer(token)
    client = Client()
    await sync(sign_in_verified, client, alice)
    console = socket_for(client)
    assert (await console.connect())[0]
    assert (await console.receive_json_from(timeout=5))["type"] == "welcome"
    live = socket(f"/ws/live/staff/{session.reference}/", client)
    assert (await live.connect())[0]
    assert (await next_of(live, "welcome"))["role"] == "staff"
    await next_of(cust, "keyframe_request")
    first = tile(1, keyframe=True)
    await cust.send_to(bytes_data=first)
    assert await live.receive_from(timeout=5) == first  # the screen is flowing
    desk = Desk(client, console, live, cust, session)
    desk.user = alice
    yield desk
    await desk.close()


async def closed_without_delivering(communicator, *, timeout=5) -> tuple[int, list]:
    """Read until the socket closes: its close code and what it still delivered before."""
    delivered = []
    for _ in range(50):
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output["code"], delivered
        delivered.append(output.get("bytes") or output.get("text"))
    raise AssertionError("socket did not close")


async def nothing_more_reaches_the_staff_member(desk) -> None:
    """Both sockets closed with 4401 before a new tile and a console update: these reach
    nobody."""
    await desk.cust.send_to(bytes_data=tile(2))
    await sync(lambda: schedule(desk.user, starts_in=60))  # would be a console update
    for communicator in (desk.console, desk.live):
        code, delivered = await closed_without_delivering(communicator)
        assert code == 4401
        assert not [d for d in delivered if isinstance(d, bytes) or '"update"' in d], delivered
        assert await communicator.receive_nothing(timeout=0.3)


async def both_close_within_the_recheck(desk) -> None:
    """Both sockets closed with 4401 on the timer; after that, nothing reaches them."""
    for communicator in (desk.console, desk.live):
        code, _ = await closed_without_delivering(communicator)
        assert code == 4401
    await desk.cust.send_to(bytes_data=tile(2))
    await sync(lambda: schedule(desk.user, starts_in=60))
    for communicator in (desk.console, desk.live):
        assert await communicator.receive_nothing(timeout=0.5)


def socket_closures() -> list[str]:
    return [e.details["reason"] for e in events(EventType.SOCKET_REFUSED)]


def live_refusals() -> list[tuple[str, str]]:
    return [(e.session_ref, e.details["reason"]) for e in events(EventType.LIVE_REFUSED)]


async def test_signing_out_closes_the_console_and_the_live_socket(desk):
    response = await sync(desk.client.post, reverse("staff-logout"))
    assert response.status_code == 302
    await nothing_more_reaches_the_staff_member(desk)
    assert await sync(socket_closures) == ["sign-in ended: signed out"]
    assert await sync(live_refusals) == [(desk.session.reference, "sign-in ended: signed out")]
    assert (await next_of(desk.cust, "peer_refused"))["code"] == 4401  # the customer is told


async def test_the_idle_timeout_closes_them_on_the_next_request(desk):
    def idle_for_long():
        session = desk.client.session
        session[LAST_SEEN_SESSION_KEY] = time.time() - settings.STAFF_IDLE_TIMEOUT - 1
        session.save()
        desk.client.get(reverse("staff-login"))  # the middleware signs the browser out

    await sync(idle_for_long)
    await nothing_more_reaches_the_staff_member(desk)
    assert await sync(socket_closures) == ["sign-in ended: session idle too long"]


QUICKLY = pytest.mark.parametrize("recheck_seconds", [0.2])


@QUICKLY
async def test_the_idle_timeout_closes_them_without_a_request(desk, settings):
    def idle_for_long():
        session = desk.client.session
        session[LAST_SEEN_SESSION_KEY] = time.time() - settings.STAFF_IDLE_TIMEOUT - 1
        session.save()

    await sync(idle_for_long)
    await both_close_within_the_recheck(desk)
    assert await sync(socket_closures) == ["sign-in ended: session idle too long"]


@QUICKLY
async def test_deactivating_the_account_closes_them(desk, alice):
    alice.is_active = False
    await sync(lambda: alice.save(update_fields=["is_active"]))
    await both_close_within_the_recheck(desk)
    assert await sync(socket_closures) == [
        "sign-in ended: account deactivated or password changed"
    ]


@QUICKLY
async def test_a_deleted_browser_session_closes_them(desk):
    from django.contrib.sessions.models import Session

    await sync(lambda: Session.objects.all().delete())
    await both_close_within_the_recheck(desk)


@QUICKLY
async def test_what_the_staff_member_does_on_the_live_socket_keeps_the_sign_in(desk, settings):
    """Chatting without a page request is not idleness."""
    settings.STAFF_IDLE_TIMEOUT = 2

    for _ in range(4):  # four seconds, twice the idle timeout
        await desk.live.send_json_to({"type": "chat", "text": "Einen Moment bitte."})
        await asyncio.sleep(1)
    await desk.live.send_json_to({"type": "heartbeat"})
    assert await next_of(desk.live, "heartbeat")
    await desk.console.send_json_to({"type": "ping"})
    assert await next_of(desk.console, "pong")


async def test_an_administrator_deactivating_the_account_closes_them_at_once(desk, alice, carol):
    """Through the admin's user form: no waiting for the re-check (60 s here), and audited."""
    from tests.test_role_changes import change_form

    def deactivate():
        admin = Client()
        sign_in_verified(admin, carol)
        form = change_form(alice)
        del form["is_active"]  # the box unticked
        response = admin.post(reverse("admin:auth_user_change", args=[alice.pk]), form)
        assert response.status_code == 302, response.content[:500]

    await sync(deactivate)
    await nothing_more_reaches_the_staff_member(desk)
    assert await sync(socket_closures) == ["sign-in ended: deactivated"]
    [event] = await sync(events, EventType.ACCOUNT_DEACTIVATED)
    assert event.details["user"] == "alice"
    assert event.actor_label == "carol"
