"""A session's news reaches every one of its sockets, on every channel layer, whichever process
made it: the channel layer's message where it can, the state re-check
(PORTAL_LIVE_STATE_RECHECK_SECONDS) everywhere. The grace period's countdown; how long a staff
member or an observer watched (docs/protocol.md).

Runs on the in-memory channel layer by default and on Redis when REDIS_URL is set.
"""

import asyncio
import json
import time
from datetime import time as clock

import pytest
import websockets
from channels.layers import channel_layers
from django.conf import settings
from django.test import Client

from audit.event_types import EventType
from consent import actions as consent_actions
from consent.models import TermsVersion
from sessions_app import actions, protocol
from sessions_app.models import EndReason, SessionState, SupportSession
from tests.personas import events, sign_in_verified
from tests.processes import (
    celery_worker,
    child_env,
    free_port,
    http_status,
    start,
    stop,
    wait_until,
)
from tests.sessions import wait_for_a_whole_slot, waiting_customer
from tests.test_live import closed_with, customer, next_of, staff, welcomed
from tests.test_live_grace import connected_customer
from tests.test_staff_socket import sync

# No travelling clock: a real Celery worker (and daphne) read the time off their own clocks.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("thread_connections_closed"),
]


@pytest.fixture(autouse=True)
def _open_around_the_clock(settings):
    settings.OPENING_HOURS = {day: (clock(0, 0), clock(23, 59, 59)) for day in range(7)}
    settings.HOLIDAY_STATE = "none"
    settings.LIVE_STATE_RECHECK_SECONDS = 1


async def next_within(communicator, kind, seconds):
    """The next JSON message of ``kind`` within ``seconds``, skipping others."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = await communicator.receive_json_from(timeout=left)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message within {seconds} s")


def another_process_does(change, *args, **kwargs):
    """Run a session change as another process would: its channel layer is not this test's
    sockets' layer (on the in-memory layer its messages reach no socket here; on Redis, all)."""
    channel_layers.backends.clear()  # the sockets keep theirs; the change gets a new one
    return change(*args, **kwargs)


async def test_the_staff_socket_counts_down_the_grace_period_and_sees_the_customer_back(alice):
    session, token = await sync(lambda: issue(alice))
    cust = await customer(token)
    viewer = await staff(alice, session)
    assert (await welcomed(viewer))["customer_present"] is True
    await cust.disconnect()
    lost = await next_of(viewer, "peer")
    assert lost["role"] == "customer" and lost["present"] is False
    assert settings.LIVE_GRACE_SECONDS - 1 <= lost["grace_seconds"] <= settings.LIVE_GRACE_SECONDS
    row = await sync(lambda: SupportSession.objects.get(pk=session.pk))
    deadline = row.customer_lost_at.timestamp() + settings.LIVE_GRACE_SECONDS
    assert abs(_iso_seconds(lost["grace_ends_at"]) - deadline) < 0.01

    # A page opened during the grace period is told the deadline in its welcome.
    late = await staff(alice, session)
    welcome = await welcomed(late)
    assert welcome["customer_present"] is False
    assert 0 < welcome["grace_seconds"] <= settings.LIVE_GRACE_SECONDS
    assert welcome["grace_ends_at"] == lost["grace_ends_at"]

    # The customer comes back with a new token: "connected" again, no countdown.
    again = await customer(await sync(lambda: actions.issue_live_token(session=row)))
    for communicator in (viewer, late):
        back = await next_of(communicator, "peer")
        while back["role"] != "customer":  # the other page's own arrival
            back = await next_of(communicator, "peer")
        assert back["present"] is True
        assert "grace_seconds" not in back
    for communicator in (again, viewer, late):
        await communicator.disconnect()


async def test_a_customer_on_another_process_lost_and_the_end_reach_the_staff_socket(alice):
    """The customer's socket and the worker's end are elsewhere: only the database tells."""
    session = await sync(lambda: connected_customer(alice))
    viewer = await staff(alice, session)
    assert (await welcomed(viewer))["customer_present"] is True
    await sync(lambda: another_process_does(actions.disconnect_customer, session=session,
                                            channel="test-channel-1"))
    lost = await next_within(viewer, "peer", 5)
    assert (lost["role"], lost["present"]) == ("customer", False)
    assert lost["grace_seconds"] > 0

    row = await sync(lambda: SupportSession.objects.get(pk=session.pk))
    assert await sync(lambda: another_process_does(actions.end_if_still_lost, session.pk,
                                                   lost_at=row.customer_lost_at))
    ended = await next_within(viewer, "ended", 5)
    assert (ended["state"], ended["reason"]) == (SessionState.ENDED, EndReason.CONNECTION_LOST)
    assert await closed_with(viewer) == protocol.CLOSE_ENDED


async def test_a_celery_workers_connection_lost_end_reaches_the_staff_socket(alice, settings,
                                                                             tmp_path):
    settings.LIVE_GRACE_SECONDS = 1
    log = tmp_path / "worker.log"
    worker = await sync(lambda: celery_worker(f"events-{tmp_path.name}", child_env(), log))
    try:
        await sync(lambda: wait_until(lambda: "ready." in log.read_text(), timeout=60,
                                      what="the celery worker to be ready", log=log))
        session, token = await sync(lambda: issue(alice))
        cust = await customer(token)
        viewer = await staff(alice, session)
        await welcomed(viewer)
        await cust.disconnect()  # queues end_if_still_lost for the worker, 1 s on
        assert (await next_of(viewer, "peer"))["present"] is False
        ended = await next_within(viewer, "ended", 30)
        assert ended["reason"] == EndReason.CONNECTION_LOST
        assert await closed_with(viewer) == protocol.CLOSE_ENDED
    finally:
        await sync(lambda: stop(worker))
    [end] = await sync(lambda: events(EventType.SESSION_ENDED))
    assert end.actor_label == "connection watch"


async def test_staff_and_observer_sockets_audit_how_long_they_were_connected(alice, bob):
    session, token = await sync(lambda: issue(alice))
    cust = await customer(token)
    viewer = await staff(alice, session)
    await welcomed(viewer)
    observer = await staff(bob, session, path="observe")
    await welcomed(observer)
    await asyncio.sleep(0.3)
    await observer.disconnect()
    await viewer.disconnect()
    await cust.disconnect()
    left = await sync(lambda: [e for e in events(EventType.LIVE_DISCONNECTED)
                               if e.details["role"] != "customer"])
    assert [(e.details["role"], e.actor_label) for e in left] == [("observer", "bob"),
                                                                  ("staff", "alice")]
    for event in left:
        assert event.session_ref == session.reference
        assert 0.3 <= event.details["connected_seconds"] < 30


@pytest.fixture
def served(tmp_path, transactional_db):
    """``manage.py serve`` as ``make run`` starts it: daphne, a Celery worker and beat, on the
    default channel layer of this run (in-memory without REDIS_URL)."""
    port = free_port()
    env = child_env(PORTAL_LIVE_GRACE_SECONDS="5", PORTAL_LIVE_STATE_RECHECK_SECONDS="1")
    log = tmp_path / "serve.log"
    process = start(["manage.py", "serve", "--port", str(port), "--concurrency", "1"], env, log)
    try:
        wait_until(lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200, timeout=60,
                   what="/healthz to answer 200", log=log)
        wait_until(lambda: "ready." in log.read_text(), timeout=60,
                   what="the celery worker to be ready", log=log)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


def test_with_make_runs_processes_the_staff_page_learns_the_lost_customers_end(served, alice):
    session, token = issue(alice)
    browser = Client()
    sign_in_verified(browser, alice)
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME]
    seen = asyncio.run(lost_customer(served, session, token, f"{cookie.key}={cookie.value}"))
    assert seen["lost"]["present"] is False and 4 <= seen["lost"]["grace_seconds"] <= 5
    assert seen["ended"]["reason"] == EndReason.CONNECTION_LOST
    assert seen["ended_after"] < 5 + 5  # the grace period and a few seconds
    assert seen["close_code"] == protocol.CLOSE_ENDED
    row = SupportSession.objects.get(pk=session.pk)
    assert (row.state, row.end_reason) == (SessionState.ENDED, EndReason.CONNECTION_LOST)


async def lost_customer(address: str, session, token: str, cookie: str) -> dict:
    async def next_kind(socket, kind, seconds=10):
        while True:
            message = await asyncio.wait_for(socket.recv(), seconds)
            if isinstance(message, str) and json.loads(message)["type"] == kind:
                return json.loads(message)

    seen = {}
    origin = f"http://{address}"
    customer_socket = await websockets.connect(f"ws://{address}/ws/live/customer/",
                                               origin=origin, compression=None)
    await customer_socket.send(json.dumps({"type": "hello", "token": token}))
    await next_kind(customer_socket, "welcome")
    staff_socket = await websockets.connect(
        f"ws://{address}/ws/live/staff/{session.reference}/", origin=origin,
        additional_headers={"Cookie": cookie}, compression=None,
    )
    assert (await next_kind(staff_socket, "welcome"))["customer_present"] is True
    await customer_socket.close()  # the customer closes the tab
    seen["lost"] = await next_kind(staff_socket, "peer")
    left_at = time.monotonic()
    seen["ended"] = await next_kind(staff_socket, "ended", 30)
    seen["ended_after"] = time.monotonic() - left_at
    await asyncio.wait_for(staff_socket.wait_closed(), 10)
    seen["close_code"] = staff_socket.close_code
    return seen


def issue(user):
    """An active session whose customer may connect: (session, live token)."""
    TermsVersion.objects.get_or_create(
        version=1, language="de",
        defaults={"text": "AGB\n\nText.", "published_at": "2026-01-01T00:00Z"},
    )
    session = waiting_customer(user, minutes=wait_for_a_whole_slot())
    consent_actions.give_consent(
        session=session, terms_id=TermsVersion.objects.current("de").pk, language="de",
        answers=consent_actions.Answers(True, True, True, False), ip=None,
    )
    actions.admit_customer(session=session, by_user=user)
    session.refresh_from_db()
    return session, actions.issue_live_token(session=session)


def _iso_seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()
