"""/healthz: the state of the database, channel layer, Celery broker and audit verification."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.chain import record_verification, verify_chain
from audit.event_types import EventType
from audit.events import Actor, record
from audit.models import AuditEvent

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_it_reports_every_component_healthy(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "channel_layer", "celery_broker",
                                   "audit_verification", "recordings_free_space"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["audit_verification"]["state"] == "never verified yet"


def test_it_shows_the_last_intact_verification(client, db):
    record(event_type="test.event", actor=Actor.system())
    record_verification(verify_chain(), actor=Actor.system())
    check = client.get("/healthz").json()["checks"]["audit_verification"]
    assert check["ok"] and check["state"] == "intact" and check["checked"] == 1


def test_a_broken_chain_makes_it_fail(client, db):
    record(event_type=EventType.AUDIT_BROKEN, actor=Actor.system(),
           details={"checked": 3, "broken_seq": 4, "reason": "altered"})
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["audit_verification"]["state"] == "broken"


def test_a_stale_verification_makes_it_fail(client, db, settings):
    record_verification(verify_chain(), actor=Actor.system())
    settings.AUDIT_VERIFICATION_MAX_AGE = 60
    event = AuditEvent.objects.get()
    assert timezone.now() - event.created_at < timedelta(seconds=60)
    assert client.get("/healthz").status_code == 200
    settings.AUDIT_VERIFICATION_MAX_AGE = 0
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "stale" in response.json()["checks"]["audit_verification"]["state"]


def test_an_unreachable_channel_layer_makes_it_fail_without_a_trace(client, db, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [UNREACHABLE_REDIS]},
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    check = response.json()["checks"]["channel_layer"]
    assert check["ok"] is False and check["error"]
    assert "Traceback" not in response.content.decode()


@pytest.fixture
def unreachable_broker():
    from portal.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = UNREACHABLE_REDIS
    app.pool.force_close_all()
    yield
    app.conf.broker_url = previous
    app.pool.force_close_all()


def test_an_unreachable_broker_makes_it_fail(client, db, unreachable_broker):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["celery_broker"]["ok"] is False


OUTSIDER = "203.0.113.7"
TOKEN = "healthz-token-for-the-monitoring-0123"


def test_an_outside_address_gets_only_the_status(client, db):
    response = client.get("/healthz", REMOTE_ADDR=OUTSIDER)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_an_outside_address_sees_a_failure_without_its_reason(client, db):
    record(event_type=EventType.AUDIT_BROKEN, actor=Actor.system(),
           details={"checked": 3, "broken_seq": 4, "reason": "altered"})
    response = client.get("/healthz", REMOTE_ADDR=OUTSIDER)
    assert response.status_code == 503
    assert response.json() == {"status": "fail"}


def test_the_token_shows_the_details_to_an_outside_address(client, db, settings):
    settings.HEALTHZ_TOKEN = TOKEN
    shown = client.get("/healthz", REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert set(shown.json()["checks"]) >= {"database", "channel_layer"}
    wrong = client.get("/healthz", REMOTE_ADDR=OUTSIDER, HTTP_AUTHORIZATION="Bearer guess")
    assert wrong.json() == {"status": "ok"}


def test_a_forwarded_loopback_address_is_not_local(client, db, settings):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/24")]
    # The proxy appended the real client to what the client claimed.
    response = client.get("/healthz", REMOTE_ADDR="10.0.0.5",
                          HTTP_X_FORWARDED_FOR=f"127.0.0.1, {OUTSIDER}")
    assert response.json() == {"status": "ok"}


def _refused_sockets(url: str) -> None:
    """A staff socket without sign-in, then a handshake with a foreign Origin."""
    import asyncio

    import websockets

    host = url.split("//", 1)[1]

    async def both():
        async with websockets.connect(f"ws://{host}/ws/staff/console/", origin=url) as socket:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 5)
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"ws://{host}/ws/live/customer/",
                                          origin="http://evil.example"):
                pass

    asyncio.run(both())


@pytest.mark.skipif("not __import__('django.conf').conf.settings.REDIS_URL",
                    reason="the shared receive loop is channels-redis's")
def test_refused_sockets_do_not_disturb_the_channel_layer_probe(transactional_db, tmp_path):
    import time

    from tests.processes import child_env, free_port, http_status, start, stop, wait_until

    env = child_env()
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    port, log = free_port(), tmp_path / "daphne.log"
    process = start(["-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                     "portal.asgi:application"], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or http_status(url + "/healthz") == 200,
                   timeout=60, what="daphne to answer on /healthz", log=log)
        answers = []
        for _ in range(3):
            _refused_sockets(url)
            # channels-redis reads block for 5 s: watch for longer than two of them.
            until = time.monotonic() + 11
            while time.monotonic() < until:
                answers.append(http_status(url + "/healthz"))
                time.sleep(0.3)
        assert set(answers) == {200}, answers
    finally:
        stop(process)
