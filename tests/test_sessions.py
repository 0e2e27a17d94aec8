"""Support sessions: scheduling, keys, admission and every state transition, all audited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.chain import verify_chain
from audit.event_types import EventType
from audit.models import AuditEvent
from sessions_app import actions, keys
from sessions_app.business_hours import OutsideOpeningHours
from sessions_app.models import (
    TRANSITIONS,
    EndReason,
    InvalidTransition,
    KeyState,
    SessionKey,
    SessionState,
    SupportSession,
)
from sessions_app.tasks import expire_overdue
from tests.personas import events, make_staff
from tests.sessions import schedule, waiting_customer

pytestmark = pytest.mark.usefixtures("office_open", "english_messages")


def redeem(key: str, name: str = "Erika Muster"):
    return actions.redeem_key(typed_key=key, customer_name=name, ip="203.0.113.5",
                              user_agent="Firefox")


# --- Scheduling ----------------------------------------------------------------------------


def test_it_schedules_a_session_after_a_phone_call(alice):
    session = schedule(alice)
    assert session.reference == f"FW-2026-{session.pk:06d}"
    assert session.state == SessionState.SCHEDULED
    assert session.assigned_to == alice and session.scheduled_by == alice
    [event] = events(EventType.SESSION_SCHEDULED)
    assert event.session_ref == session.reference
    assert event.details["call_note"] == "Call 10:02, ticket 4711"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"call_note": "  "}, "phone call"),
        ({"customer_name": ""}, "customer"),
        ({"starts_in": -60}, "past"),
        ({"starts_in": 8 * 60}, None),  # 18:00: outside opening hours
    ],
)
def test_a_bad_slot_or_missing_note_is_refused_and_nothing_is_saved(alice, fields, message):
    error = OutsideOpeningHours if message is None else actions.SessionRuleError
    with pytest.raises(error) as refused:
        schedule(alice, **fields)
    if message:
        assert message in str(refused.value)
    assert not SupportSession.objects.exists()
    assert not events(EventType.SESSION_SCHEDULED)


def test_overlapping_slots_are_refused_for_one_staff_member_only(alice, db):
    schedule(alice, starts_in=0, minutes=30)
    with pytest.raises(actions.SessionRuleError, match="overlaps"):
        schedule(alice, starts_in=20, minutes=30)
    schedule(alice, starts_in=30, minutes=30)  # back to back is fine
    erin = make_staff("erin", "Support staff")
    schedule(erin, starts_in=20, minutes=30)
    assert SupportSession.objects.count() == 3


def test_a_cancelled_session_frees_its_slot(alice):
    session = schedule(alice)
    with pytest.raises(actions.SessionRuleError, match="overlaps"):
        schedule(alice)
    actions.cancel_session(session=session, by_user=alice)
    session.refresh_from_db()
    assert session.state == SessionState.CANCELLED
    again = schedule(alice)
    assert again.state == SessionState.SCHEDULED
    assert again.slot_start < session.slot_end and session.slot_start < again.slot_end
    assert SupportSession.objects.count() == 2


# --- Keys ----------------------------------------------------------------------------------


def test_a_key_is_seven_digits_stored_only_as_its_hmac(alice):
    session = schedule(alice)
    key, stored = actions.issue_key(session=session, by_user=alice)
    assert len(key) == 7 and key.isdigit()
    assert keys.grouped(key) == f"{key[:3]} {key[3:]}"
    assert stored.key_hmac == keys.key_hmac(key) and key not in stored.key_hmac
    assert stored.expires_at == stored.issued_at + timedelta(minutes=15)
    session.refresh_from_db()
    assert session.state == SessionState.KEY_ISSUED
    for event in AuditEvent.objects.all():
        assert key not in str(event.details)


def test_the_lifetime_is_chosen_up_to_the_maximum(alice, settings):
    session = schedule(alice, minutes=90)
    _key, stored = actions.issue_key(session=session, by_user=alice, lifetime_minutes=60)
    assert stored.expires_at - stored.issued_at == timedelta(minutes=60)
    with pytest.raises(actions.SessionRuleError):
        actions.issue_key(session=session, by_user=alice, lifetime_minutes=61)


def test_a_key_never_outlives_its_slot(alice):
    session = schedule(alice, minutes=10)
    _key, stored = actions.issue_key(session=session, by_user=alice, lifetime_minutes=60)
    assert stored.expires_at == session.slot_end


def test_reissuing_revokes_the_previous_key(alice):
    session = schedule(alice)
    first, _ = actions.issue_key(session=session, by_user=alice)
    second, _ = actions.issue_key(session=session, by_user=alice)
    assert SessionKey.objects.filter(session=session, state=KeyState.LIVE).count() == 1
    assert events(EventType.KEY_REVOKED)
    with pytest.raises(actions.KeyRejected):
        redeem(first)
    assert redeem(second).state == SessionState.CUSTOMER_WAITING


def test_only_the_assigned_staff_member_issues_keys(alice, db):
    session = schedule(alice)
    erin = make_staff("erin", "Support staff")
    with pytest.raises(actions.NotYourSession):
        actions.issue_key(session=session, by_user=erin)
    assert not SessionKey.objects.exists()


def test_no_key_for_a_cancelled_session(alice):
    session = schedule(alice)
    actions.cancel_session(session=session, by_user=alice)
    with pytest.raises(InvalidTransition, match="Cancelled"):
        actions.issue_key(session=session, by_user=alice)
    assert not SessionKey.objects.exists()


def test_no_key_outside_opening_hours(alice, office_open):
    session = schedule(alice, starts_in=5 * 60, minutes=30)  # 15:00–15:30
    office_open.move_to(timezone.now().replace(hour=19))  # 20:00 in Berlin
    with pytest.raises(OutsideOpeningHours):
        actions.issue_key(session=session, by_user=alice)


# --- Redemption ----------------------------------------------------------------------------


def test_redeeming_puts_the_customer_in_the_waiting_room(alice):
    session = schedule(alice)
    key, _ = actions.issue_key(session=session, by_user=alice)
    waiting = redeem(keys.grouped(key))  # typed as read out: "123 4567"
    assert waiting.pk == session.pk and waiting.state == SessionState.CUSTOMER_WAITING
    assert waiting.customer_entered_name == "Erika Muster"
    assert waiting.customer_ip == "203.0.113.5"
    assert SessionKey.objects.get().state == KeyState.REDEEMED
    [event] = events(EventType.KEY_REDEEMED)
    assert event.actor_type == "customer" and event.client_ip == "203.0.113.5"


def test_a_key_works_once(alice):
    session = schedule(alice)
    key, _ = actions.issue_key(session=session, by_user=alice)
    redeem(key)
    with pytest.raises(actions.KeyRejected):
        redeem(key)
    [failure] = events(EventType.KEY_REDEMPTION_FAILED)
    assert failure.details["reason"] == "no live key"


def test_an_expired_key_fails(alice, office_open):
    session = schedule(alice, minutes=60)
    key, _ = actions.issue_key(session=session, by_user=alice, lifetime_minutes=15)
    office_open.shift(timedelta(minutes=16))
    with pytest.raises(actions.KeyRejected):
        redeem(key)
    assert events(EventType.KEY_REDEMPTION_FAILED)[0].details["reason"] == "key expired"


def test_a_key_works_only_inside_its_slot(alice, office_open):
    session = schedule(alice, starts_in=10)
    key, _ = actions.issue_key(session=session, by_user=alice, lifetime_minutes=15)
    with pytest.raises(actions.KeyRejected):
        redeem(key)
    office_open.shift(timedelta(minutes=10))
    assert redeem(key).state == SessionState.CUSTOMER_WAITING


@pytest.mark.parametrize(
    "typed",
    ["", "123456", "12345678", "abcdefg", "１２３４５６７", "0" * 500, "1 2 3 4 5 6 7",
     "1234 567", "123  4567", "123.4567", "123 - 4567", "12a4567"],
)
def test_malformed_keys_get_the_same_answer(db, typed):
    with pytest.raises(actions.KeyRejected):
        redeem(typed)
    assert len(events(EventType.KEY_REDEMPTION_FAILED)) == 1


def test_no_redemption_outside_opening_hours(alice, office_open):
    session = schedule(alice)
    key, _ = actions.issue_key(session=session, by_user=alice)
    office_open.move_to(timezone.now() + timedelta(hours=9))
    with pytest.raises(OutsideOpeningHours):
        redeem(key)


# --- Admission and the end -----------------------------------------------------------------


def test_the_staff_member_admits_the_customer(alice):
    session = waiting_customer(alice)
    actions.admit_customer(session=session, by_user=alice)
    session.refresh_from_db()
    assert session.state == SessionState.ACTIVE and session.admitted_at
    [event] = events(EventType.CUSTOMER_ADMITTED)
    assert event.details["customer_entered_name"] == "Erika Muster"
    with pytest.raises(InvalidTransition):
        actions.admit_customer(session=session, by_user=alice)


def test_the_staff_member_refuses_a_stranger(alice):
    session = waiting_customer(alice)
    actions.refuse_customer(session=session, by_user=alice)
    session.refresh_from_db()
    assert session.state == SessionState.REFUSED and session.end_reason == EndReason.REFUSED
    with pytest.raises(InvalidTransition):
        actions.admit_customer(session=session, by_user=alice)


def test_a_teammate_cannot_admit(alice, db):
    session = waiting_customer(alice)
    erin = make_staff("erin", "Support staff")
    with pytest.raises(actions.NotYourSession):
        actions.admit_customer(session=session, by_user=erin)
    session.refresh_from_db()
    assert session.state == SessionState.CUSTOMER_WAITING


@pytest.mark.parametrize("reason", [EndReason.CUSTOMER_ENDED, EndReason.STAFF_ENDED])
def test_a_session_ends_with_its_reason_and_its_key_stays_dead(alice, reason):
    from audit.events import Actor

    session = schedule(alice)
    key, _ = actions.issue_key(session=session, by_user=alice)
    redeem(key)
    actions.admit_customer(session=session, by_user=alice)
    actions.end_session(session=session, reason=reason, by=Actor.staff(alice))
    session.refresh_from_db()
    assert session.state == SessionState.ENDED and session.end_reason == reason
    assert events(EventType.SESSION_ENDED)[0].details["reason"] == reason
    assert SessionKey.objects.get(session=session).state == KeyState.REDEEMED
    with pytest.raises(actions.KeyRejected):
        redeem(key)
    session.refresh_from_db()
    assert session.state == SessionState.ENDED


@pytest.mark.parametrize("start", list(SessionState))
@pytest.mark.parametrize("target", list(TRANSITIONS))
def test_every_transition_is_allowed_or_refused_as_the_table_says(alice, start, target):
    session = schedule(alice)
    SupportSession.objects.filter(pk=session.pk).update(state=start)
    session.refresh_from_db()
    allowed_from, stamp = TRANSITIONS[target]
    if start in allowed_from:
        session.move_to(target)
        session.refresh_from_db()
        assert session.state == target and getattr(session, stamp) is not None
    else:
        with pytest.raises(InvalidTransition):
            session.move_to(target)
        session.refresh_from_db()
        assert session.state == start


# --- Expiry --------------------------------------------------------------------------------


def test_the_expiry_task_expires_keys_and_unused_sessions_once(alice, office_open):
    keyed = schedule(alice, minutes=30)
    key, _ = actions.issue_key(session=keyed, by_user=alice, lifetime_minutes=5)
    unused = schedule(alice, starts_in=30, minutes=15)

    office_open.shift(timedelta(minutes=6))
    assert expire_overdue() == {"keys": 1, "sessions": 0}
    assert expire_overdue() == {"keys": 0, "sessions": 0}  # safe to run twice
    with pytest.raises(actions.KeyRejected):
        redeem(key)

    office_open.shift(timedelta(minutes=45))
    assert expire_overdue() == {"keys": 0, "sessions": 2}
    for session in (keyed, unused):
        session.refresh_from_db()
        assert session.state == SessionState.EXPIRED and session.end_reason == EndReason.EXPIRED
    assert len(events(EventType.KEY_EXPIRED)) == 1
    assert len(events(EventType.SESSION_EXPIRED)) == 2


def test_an_active_session_outlives_its_slot_and_closing_time(alice, office_open):
    session = waiting_customer(alice)
    actions.admit_customer(session=session, by_user=alice)
    office_open.shift(timedelta(hours=9))  # 19:00, closed, slot long over
    expire_overdue()
    session.refresh_from_db()
    assert session.state == SessionState.ACTIVE


# --- The whole story -----------------------------------------------------------------------


def test_schedule_issue_redeem_admit_then_the_key_is_dead_and_the_chain_intact(alice):
    session = schedule(alice)
    key, _ = actions.issue_key(session=session, by_user=alice)
    redeem(key)
    session.refresh_from_db()
    actions.admit_customer(session=session, by_user=alice)
    with pytest.raises(actions.KeyRejected):
        redeem(key)
    story = list(
        AuditEvent.objects.filter(session_ref=session.reference)
        .order_by("seq")
        .values_list("event_type", flat=True)
    )
    assert story == [
        EventType.SESSION_SCHEDULED,
        EventType.KEY_ISSUED,
        EventType.KEY_REDEEMED,
        EventType.CUSTOMER_ADMITTED,
    ]
    assert verify_chain().intact


def test_a_key_ends_once_and_only_from_live(alice):
    """Redeemed, expired or revoked: the first move wins, and no move leads out of it."""
    session = schedule(alice)
    typed, key = actions.issue_key(session=session, by_user=alice)
    actions.redeem_key(typed_key=typed, customer_name="Erika Muster", ip="203.0.113.5",
                       user_agent="Firefox")
    key.refresh_from_db()
    assert key.state == KeyState.REDEEMED and key.redeemed_at
    later = timezone.now() + timedelta(days=1)
    assert not actions.expire_key(key.pk, now=later)
    assert not key.move_to(KeyState.REVOKED)
    key.refresh_from_db()
    assert (key.state, key.expired_at, key.revoked_at) == (KeyState.REDEEMED, None, None)
    assert not events(EventType.KEY_EXPIRED)
