"""Celery tasks of support sessions: thin, idempotent, claiming rows with conditional UPDATEs."""

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from sessions_app import actions
from sessions_app.actions import expire_key, expire_session
from sessions_app.models import KeyState, SessionKey, SessionState, SupportSession

BATCH = 500


@shared_task
def expire_overdue() -> dict:
    """Every minute: expire keys past their lifetime and sessions whose slot passed unused."""
    now = timezone.now()
    key_ids = SessionKey.objects.filter(state=KeyState.LIVE, expires_at__lte=now).values_list(
        "pk", flat=True
    )[:BATCH]
    session_ids = SupportSession.objects.filter(
        state__in=[SessionState.SCHEDULED, SessionState.KEY_ISSUED, SessionState.CUSTOMER_WAITING],
        slot_end__lte=now,
    ).values_list("pk", flat=True)[:BATCH]
    keys = sum(expire_key(pk, now=now) for pk in list(key_ids))
    sessions = sum(expire_session(pk, now=now) for pk in list(session_ids))
    return {"keys": keys, "sessions": sessions}


@shared_task
def end_if_still_lost(session_id: int, lost_at: str) -> bool:
    """After the grace period: end the session with "connection lost" unless the customer is
    back. Safe to run twice: the second run finds the session ended."""
    return actions.end_if_still_lost(session_id, lost_at=datetime.fromisoformat(lost_at))
