"""The console updates without a reload: session changes reach the staff's open pages."""

import pytest

from sessions_app import actions
from sessions_app.models import SessionState, Team
from tests.personas import make_staff, sign_in_verified
from tests.sessions import schedule, waiting_customer
from tests.test_staff_socket import socket_for, sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("office_open", "thread_connections_closed"),
]


async def connected(client, user):
    await sync(sign_in_verified, client, user)
    communicator = socket_for(client)
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=5))["type"] == "welcome"
    return communicator


async def next_update(communicator) -> dict:
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "update"
    return message["data"]


async def test_the_staff_member_hears_of_each_step_as_it_happens(client, alice):
    communicator = await connected(client, alice)
    session = await sync(waiting_customer, alice)
    states = [(await next_update(communicator)) for _ in range(3)]
    assert states == [
        {"session": session.reference, "state": SessionState.SCHEDULED},
        {"session": session.reference, "state": SessionState.KEY_ISSUED},
        {"session": session.reference, "state": SessionState.CUSTOMER_WAITING},
    ]
    await sync(lambda: actions.admit_customer(session=session, by_user=alice))
    assert (await next_update(communicator))["state"] == SessionState.ACTIVE
    await communicator.disconnect()


async def test_teammates_hear_of_team_sessions_and_others_do_not(client, alice, db):
    def setup():
        erik = make_staff("erik", "Support staff")
        frida = make_staff("frida", "Support staff")
        Team.objects.create(name="Firmenkunden").members.add(alice, erik)
        Team.objects.create(name="Privatkunden").members.add(frida)
        return erik, frida

    erik, frida = await sync(setup)
    from django.test import Client

    alice_socket = await connected(client, alice)
    frida_socket = await connected(Client(), frida)
    session = await sync(schedule, erik)
    assert await next_update(alice_socket) == {
        "session": session.reference, "state": SessionState.SCHEDULED,
    }
    assert await frida_socket.receive_nothing(timeout=0.5)
    await alice_socket.disconnect()
    await frida_socket.disconnect()


async def test_a_rolled_back_change_tells_nobody(client, alice):
    communicator = await connected(client, alice)

    def fail_inside_a_transaction():
        from django.db import transaction

        with pytest.raises(RuntimeError), transaction.atomic():
            schedule(alice)
            raise RuntimeError("the disk is full")

    await sync(fail_inside_a_transaction)
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


@pytest.mark.skipif("RedisChannelLayer" not in __import__("django.conf").conf.settings
                    .CHANNEL_LAYERS["default"]["BACKEND"], reason="the Redis layer only")
async def test_an_idle_socket_stays_open_on_redis(client, alice):
    """redis-py 8 timed reads out after 5 s while channels-redis waits 5 s: idle sockets died."""
    import asyncio

    communicator = await connected(client, alice)
    await asyncio.sleep(7)
    session = await sync(schedule, alice)
    assert (await next_update(communicator))["session"] == session.reference
    await communicator.disconnect()
