"""Helpers for tests of support sessions."""

from datetime import timedelta

from django.utils import timezone

from sessions_app import actions


def schedule(user, *, starts_in: int = 0, minutes: int = 30, **fields):
    """A session for ``user`` starting ``starts_in`` minutes from now."""
    start = timezone.now() + timedelta(minutes=starts_in)
    return actions.schedule_session(
        by_user=user,
        customer_name=fields.pop("customer_name", "Muster GmbH"),
        call_note=fields.pop("call_note", "Call 10:02, ticket 4711"),
        slot_start=start,
        slot_end=start + timedelta(minutes=minutes),
        **fields,
    )


def waiting_customer(user, **fields):
    """A session whose key the customer has just redeemed."""
    session = schedule(user, **fields)
    key, _ = actions.issue_key(session=session, by_user=user)
    return actions.redeem_key(typed_key=key, customer_name="Erika Muster", ip="203.0.113.5",
                              user_agent="Firefox")


def wait_for_a_whole_slot(minutes: int = 30) -> int:
    """For tests on the real clock with the portal open all day: the length of a slot that
    starts now and ends today (a slot never spans midnight). Close to midnight, waits for the
    new day first, so that the slot is never only seconds long."""
    import time

    from sessions_app.business_hours import local_zone

    now = timezone.localtime(timezone.now(), local_zone())
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    left = (midnight - now).total_seconds()
    if left < 180:
        time.sleep(left + 1)
        return minutes
    return min(minutes, int(left // 60) - 1)
