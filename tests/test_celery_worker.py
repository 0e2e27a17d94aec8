"""A real Celery worker process runs the nightly audit verification from the broker."""

import pytest

from audit.event_types import EventType
from audit.events import Actor, record
from audit.models import AuditEvent
from audit.tasks import verify_audit_chain
from tests.processes import celery_worker, child_env, stop, wait_until


@pytest.mark.django_db(transaction=True)
def test_a_worker_verifies_the_chain_and_records_the_outcome(tmp_path):
    for n in range(3):
        record(event_type="test.event", actor=Actor.system(), details={"n": n})
    log = tmp_path / "worker.log"
    worker = celery_worker(f"test-{tmp_path.name}",
                           child_env(PORTAL_AUDIT_ANCHOR_FILE=str(tmp_path / "anchors.log")), log)
    try:
        verify_audit_chain.delay()
        event = wait_until(
            lambda: AuditEvent.objects.filter(event_type=EventType.AUDIT_VERIFIED).first(),
            timeout=60, what="the worker's verification event", log=log,
        )
    finally:
        stop(worker)
    assert event.details["checked"] == 3
    assert event.actor_label == "nightly verification"
    assert (tmp_path / "anchors.log").read_text().split()[1] == str(event.seq)
