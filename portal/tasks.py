"""Celery tasks of the portal: thin, idempotent, claiming rows with conditional UPDATEs."""

from celery import shared_task
from django.utils import timezone

from portal import enrolment, role_changes


@shared_task
def expire_enrolment_codes_and_role_requests() -> dict:
    """Every few minutes: audit enrolment codes and role change requests that ran out unused."""
    now = timezone.now()
    codes = sum(enrolment.expire_code(pk, now=now) for pk in enrolment.overdue_code_ids(now=now))
    requests = sum(
        role_changes.expire_request(pk, now=now)
        for pk in role_changes.overdue_request_ids(now=now)
    )
    return {"enrolment_codes": codes, "role_requests": requests}
