"""The expiry task: real Celery workers, conditional claims, one audit event per expiry."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.event_types import EventType
from sessions_app import keys
from sessions_app.models import KeyState, SessionKey, SessionState, SupportSession
from sessions_app.tasks import expire_overdue
from tests.personas import events
from tests.processes import child_env, start, stop, wait_until


def overdue(user, n: int) -> list[SupportSession]:
    """Sessions whose slot ended a minute ago, each with a key past its lifetime."""
    now = timezone.now()
    sessions = []
    for i in range(n):
        session = SupportSession.objects.create(
            reference=f"FW-TEST-{i:05d}", customer_name="Muster GmbH", call_note="call",
            assigned_to=user, scheduled_by=user, state=SessionState.KEY_ISSUED,
            slot_start=now - timedelta(minutes=31), slot_end=now - timedelta(minutes=1),
        )
        SessionKey.objects.create(
            session=session, key_hmac=keys.key_hmac(f"{i:07d}"), issued_by=user,
            lifetime_minutes=15, expires_at=now - timedelta(minutes=2),
        )
        sessions.append(session)
    return sessions


@pytest.mark.django_db(transaction=True)
def test_a_worker_expires_overdue_keys_and_sessions(alice, tmp_path):
    overdue(alice, 3)
    log = tmp_path / "worker.log"
    worker = start(
        ["-m", "celery", "-A", "portal", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-mingle", "--without-gossip", f"--hostname=expiry-{tmp_path.name}@%h"],
        child_env(),
        log,
    )
    try:
        expire_overdue.delay()
        wait_until(
            lambda: not SupportSession.objects.exclude(state=SessionState.EXPIRED).exists(),
            timeout=60, what="the worker to expire the sessions", log=log,
        )
    finally:
        stop(worker)
    assert not SessionKey.objects.filter(state=KeyState.LIVE).exists()
    assert len(events(EventType.KEY_EXPIRED)) == 3
    assert len(events(EventType.SESSION_EXPIRED)) == 3


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_expire_each_row_once(alice):
    overdue(alice, 20)
    results = []
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        try:
            results.append(expire_overdue())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r["sessions"] for r in results) == 20
    assert len(events(EventType.SESSION_EXPIRED)) == 20
    # Each key ended exactly once: expired by one worker, or revoked with its expiring session.
    expired = [e.details["key_id"] for e in events(EventType.KEY_EXPIRED)]
    revoked = [k for e in events(EventType.KEY_REVOKED) for k in e.details["keys"]]
    assert len(expired) == sum(r["keys"] for r in results)
    assert sorted(expired + revoked) == sorted(SessionKey.objects.values_list("pk", flat=True))
    assert not SessionKey.objects.filter(state=KeyState.LIVE).exists()
    assert expire_overdue() == {"keys": 0, "sessions": 0}
