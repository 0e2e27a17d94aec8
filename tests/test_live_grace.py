"""A lost customer: a real Celery worker ends the session after the grace period."""

from datetime import time as clock

import pytest

from audit.event_types import EventType
from consent import actions as consent_actions
from consent.models import TermsVersion
from sessions_app import actions
from sessions_app.models import EndReason, SessionState, SupportSession
from tests.personas import events
from tests.processes import celery_worker, child_env, stop, wait_until
from tests.sessions import wait_for_a_whole_slot, waiting_customer

# No travelling clock here: the task's countdown becomes a time the worker reads off its own.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _open_around_the_clock(settings):
    settings.OPENING_HOURS = {day: (clock(0, 0), clock(23, 59, 59)) for day in range(7)}
    settings.HOLIDAY_STATE = "none"


def connected_customer(user):
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
    token = actions.issue_live_token(session=session)
    return actions.connect_customer(token=token, channel="test-channel-1")


def test_a_worker_ends_the_session_when_the_customer_stays_away(alice, settings, tmp_path):
    settings.LIVE_GRACE_SECONDS = 1
    session = connected_customer(alice)
    log = tmp_path / "worker.log"
    worker = celery_worker(f"grace-{tmp_path.name}", child_env(), log)
    try:
        assert actions.disconnect_customer(session=session, channel="test-channel-1")
        wait_until(
            lambda: SupportSession.objects.get(pk=session.pk).state == SessionState.ENDED,
            timeout=60, what="the worker to end the lost session", log=log,
        )
    finally:
        stop(worker)
    session.refresh_from_db()
    assert session.end_reason == EndReason.CONNECTION_LOST
    assert events(EventType.LIVE_DISCONNECTED)[0].session_ref == session.reference
    [ended] = events(EventType.SESSION_ENDED)
    assert ended.actor_label == "connection watch"
    assert ended.details["reason"] == EndReason.CONNECTION_LOST
