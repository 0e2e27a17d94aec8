"""Celery tasks of support sessions: thin, idempotent, claiming rows with conditional UPDATEs."""

from celery import shared_task
from django.utils import timezone

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
