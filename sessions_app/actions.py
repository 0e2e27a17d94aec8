"""Every change to support sessions and keys: atomic, audited in the same transaction.

Views, consumers and tasks call these; the state rules themselves live on the models.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.event_types import EventType
from audit.events import Actor, record
from sessions_app import business_hours, key_attempts, keys, live
from sessions_app.models import (
    ChatMessage,
    EndReason,
    InvalidTransition,
    KeyState,
    LiveToken,
    SessionKey,
    SessionState,
    SupportSession,
)

# A slot may start this much in the past: "now" takes a moment to type.
SLOT_START_GRACE = timedelta(minutes=5)
KEY_DRAWS = 10  # attempts to draw a key not already live (collisions are rare)


class SessionRuleError(Exception):
    """A request the session rules refuse; the message is for the staff member."""


class NotYourSession(SessionRuleError):
    """Only the assigned staff member may run a session."""


class KeyRejected(Exception):
    """A key that does not open a session. Deliberately one reason for every cause."""


def check_assigned(session: SupportSession, user: AbstractBaseUser) -> None:
    if session.assigned_to_id != user.pk:
        raise NotYourSession(_("Only the assigned staff member can do this."))


def _revoke_live_keys(session: SupportSession, *, by: Actor, ip: str | None, now) -> None:
    # Locked first, so that a key the expiry task takes at the same moment is not counted twice.
    live_keys = list(
        SessionKey.objects.select_for_update().filter(session=session, state=KeyState.LIVE)
    )
    revoked = [key.pk for key in live_keys if key.move_to(KeyState.REVOKED, at=now)]
    if revoked:
        session.audit(EventType.KEY_REVOKED, by=by, ip=ip, keys=revoked)


@transaction.atomic
def schedule_session(
    *,
    by_user: AbstractBaseUser,
    customer_name: str,
    call_note: str,
    slot_start: datetime,
    slot_end: datetime,
    assigned_to: AbstractBaseUser | None = None,
    ip: str | None = None,
) -> SupportSession:
    """Schedule a session after a phone call, in opening hours, without overlapping the staff
    member's other sessions."""
    from django.contrib.auth import get_user_model

    assigned_to = assigned_to or by_user
    customer_name, call_note = customer_name.strip(), call_note.strip()
    if not customer_name:
        raise SessionRuleError(_("Enter the customer's name or company."))
    if not call_note:
        raise SessionRuleError(_("Note the phone call or ticket: sessions only follow a call."))
    if slot_end <= slot_start:
        raise SessionRuleError(_("The slot must end after it starts."))
    now = timezone.now()
    if slot_start < now - SLOT_START_GRACE:
        raise SessionRuleError(_("The slot lies in the past."))
    business_hours.require_slot_inside_hours(slot_start, slot_end)

    # One scheduler at a time per staff member, so that two overlapping slots cannot both pass.
    get_user_model().objects.select_for_update().filter(pk=assigned_to.pk).first()
    clash = (
        SupportSession.objects.open()
        .filter(assigned_to=assigned_to)
        .overlapping(slot_start, slot_end)
        .first()
    )
    if clash is not None:
        raise SessionRuleError(
            _("This overlaps session %(ref)s of the same staff member.") % {"ref": clash.reference}
        )
    session = SupportSession.objects.create(
        reference=f"new-{secrets.token_hex(8)}",  # the final one needs the primary key
        customer_name=customer_name,
        call_note=call_note,
        assigned_to=assigned_to,
        team=assigned_to.support_teams.order_by("name").first(),
        scheduled_by=by_user,
        slot_start=slot_start,
        slot_end=slot_end,
    )
    year = slot_start.astimezone(business_hours.local_zone()).year
    session.reference = f"FW-{year}-{session.pk:06d}"
    session.save(update_fields=["reference"])
    session.audit(
        EventType.SESSION_SCHEDULED,
        by=Actor.staff(by_user),
        ip=ip,
        customer_name=customer_name,
        call_note=call_note,
        assigned_to=assigned_to.get_username(),
        slot_start=slot_start,
        slot_end=slot_end,
    )
    live.session_changed(session)
    return session


@transaction.atomic
def issue_key(
    *,
    session: SupportSession,
    by_user: AbstractBaseUser,
    lifetime_minutes: int | None = None,
    ip: str | None = None,
) -> tuple[str, SessionKey]:
    """Issue a new key (revoking any earlier one) and return it in plain text, this once."""
    check_assigned(session, by_user)
    lifetime = lifetime_minutes or settings.KEY_LIFETIME_DEFAULT
    if not 1 <= lifetime <= settings.KEY_LIFETIME_MAX:
        raise SessionRuleError(
            _("A key lives between 1 and %(max)d minutes.") % {"max": settings.KEY_LIFETIME_MAX}
        )
    now = timezone.now()
    business_hours.require_open(now)
    # Serialize issuing per session (a double click must not leave two live keys).
    session = SupportSession.objects.select_for_update().get(pk=session.pk)
    if session.slot_end <= now and session.is_open:
        raise SessionRuleError(_("The slot of this session is over."))
    session.move_to(SessionState.KEY_ISSUED, at=now)
    by = Actor.staff(by_user)
    _revoke_live_keys(session, by=by, ip=ip, now=now)
    expires_at = min(now + timedelta(minutes=lifetime), session.slot_end)
    for _attempt in range(KEY_DRAWS):
        plain = keys.new_key()
        try:
            with transaction.atomic():
                key = SessionKey.objects.create(
                    session=session,
                    key_hmac=keys.key_hmac(plain),
                    issued_by=by_user,
                    issued_at=now,
                    lifetime_minutes=lifetime,
                    expires_at=expires_at,
                )
            break
        except IntegrityError:
            continue  # that number is live for another session: draw again
    else:  # pragma: no cover - needs ten collisions in a row
        raise SessionRuleError(_("No free key could be drawn. Please try again."))
    session.audit(
        EventType.KEY_ISSUED, by=by, ip=ip, key_id=key.pk, lifetime_minutes=lifetime,
        expires_at=expires_at,
    )
    live.session_changed(session)
    return plain, key


def redeem_key(
    *, typed_key: str, customer_name: str, ip: str | None, user_agent: str = "",
    only_session: int | None = None,
) -> SupportSession:
    """The customer enters the key: exactly one redemption of a live key wins. Any failure is
    audited and raised as KeyRejected, without saying why; outside opening hours raises
    OutsideOpeningHours. ``only_session``: a browser let past the key-entry blocks by its
    adviser (``lift_key_block``) opens that session alone."""
    try:
        return _redeem(typed_key=typed_key, customer_name=customer_name, ip=ip,
                       user_agent=user_agent, only_session=only_session)
    except KeyRejected as rejected:
        record(
            event_type=EventType.KEY_REDEMPTION_FAILED,
            actor=Actor.customer(customer_name or "customer"),
            ip=ip,
            details={"reason": str(rejected), "user_agent": user_agent[:300]},
        )
        raise


@transaction.atomic
def _redeem(*, typed_key: str, customer_name: str, ip: str | None, user_agent: str,
            only_session: int | None):
    business_hours.require_open()
    digits = keys.normalised(typed_key)
    if digits is None:
        raise KeyRejected("not seven digits")
    now = timezone.now()
    key = (
        SessionKey.objects.select_related("session")
        .filter(key_hmac=keys.key_hmac(digits), state=KeyState.LIVE)
        .first()
    )
    if key is None:
        raise KeyRejected("no live key")
    if only_session is not None and key.session_id != only_session:
        # A lift must not help a guesser: past the blocks, no other session's key opens.
        raise KeyRejected("past the block, a key of another session")
    session = key.session
    if key.expires_at <= now:
        raise KeyRejected("key expired")
    if not session.slot_start <= now < session.slot_end:
        raise KeyRejected("outside the session's slot")
    # The claim: of two concurrent redemptions, only one UPDATE finds the key still live.
    if not key.move_to(KeyState.REDEEMED, at=now):
        raise KeyRejected("already redeemed")
    try:
        session.move_to(
            SessionState.CUSTOMER_WAITING,
            at=now,
            customer_entered_name=customer_name.strip()[:200],
            customer_ip=ip,
            customer_user_agent=user_agent[:300],
        )
    except InvalidTransition:
        raise KeyRejected("session not waiting for a customer") from None
    extra = {"block_lifted": True} if only_session is not None else {}
    session.audit(
        EventType.KEY_REDEEMED, by=Actor.customer(customer_name), ip=ip, key_id=key.pk,
        customer_entered_name=session.customer_entered_name, user_agent=user_agent[:300],
        **extra,
    )
    live.session_changed(session)
    return session


@transaction.atomic
def lift_key_block(
    *, session: SupportSession, by_user: AbstractBaseUser, help_code: str, ip: str | None = None
) -> str | None:
    """The customer on the phone reads the help code from their blocked key page: that browser
    may then try this session's key past the blocks (a few tries, for ``KEY_BLOCK_LIFT``).
    Returns the address the code was shown to."""
    check_assigned(session, by_user)
    if session.state not in (SessionState.SCHEDULED, SessionState.KEY_ISSUED):
        raise SessionRuleError(_("This session is not waiting for its key."))
    code = key_attempts.normalised_help_code(help_code)
    shown_to = key_attempts.help_code_address(code) if code else None
    if shown_to is None:
        raise SessionRuleError(_(
            "No customer's page shows this help code. Please ask the customer to read it again."
        ))
    session.audit(
        EventType.KEY_BLOCK_LIFTED, by=Actor.staff(by_user), ip=ip,
        customer_ip=shown_to or None, minutes=settings.KEY_BLOCK_LIFT // 60,
        tries=key_attempts.KEY_BLOCK_LIFT_TRIES,
    )
    transaction.on_commit(lambda: key_attempts.lift(code, session_id=session.pk))
    return shown_to or None


@transaction.atomic
def admit_customer(*, session: SupportSession, by_user: AbstractBaseUser, ip=None) -> None:
    check_assigned(session, by_user)
    session.admit(by=Actor.staff(by_user), ip=ip)
    live.session_changed(session)


@transaction.atomic
def refuse_customer(*, session: SupportSession, by_user: AbstractBaseUser, ip=None) -> None:
    check_assigned(session, by_user)
    session.refuse(by=Actor.staff(by_user), ip=ip)
    live.session_changed(session)


@transaction.atomic
def cancel_session(*, session: SupportSession, by_user: AbstractBaseUser, ip=None) -> None:
    """Call off a session before the customer arrived; its key stops working."""
    check_assigned(session, by_user)
    now = timezone.now()
    session.move_to(SessionState.CANCELLED, at=now)
    by = Actor.staff(by_user)
    _revoke_live_keys(session, by=by, ip=ip, now=now)
    session.audit(EventType.SESSION_CANCELLED, by=by, ip=ip)
    live.session_changed(session)


@transaction.atomic
def end_session(*, session: SupportSession, reason: str, by: Actor, ip=None) -> None:
    """End a waiting or active session; any key left is burnt."""
    now = timezone.now()
    session.move_to(SessionState.ENDED, at=now, end_reason=EndReason(reason))
    _revoke_live_keys(session, by=by, ip=ip, now=now)
    session.audit(EventType.SESSION_ENDED, by=by, ip=ip, reason=reason)
    live.session_changed(session)


@transaction.atomic
def end_by_staff(*, session: SupportSession, by_user: AbstractBaseUser, ip=None) -> None:
    """The assigned staff member ends the session (or sends a waiting customer away)."""
    check_assigned(session, by_user)
    end_session(session=session, reason=EndReason.STAFF_ENDED, by=Actor.staff(by_user), ip=ip)


def expire_key(key_id: int, *, now: datetime) -> bool:
    """Expire one key past its lifetime; False if someone else got there first."""
    with transaction.atomic():
        key = SessionKey.objects.select_related("session").filter(pk=key_id).first()
        if key is None or not key.move_to(KeyState.EXPIRED, at=now,
                                          where={"expires_at__lte": now}):
            return False
        key.session.audit(EventType.KEY_EXPIRED, by=Actor.system("key expiry"), key_id=key_id)
    return True


def expire_session(session_id: int, *, now: datetime) -> bool:
    """Expire a session whose slot passed without it starting; False if it moved meanwhile."""
    with transaction.atomic():
        session = SupportSession.objects.get(pk=session_id)
        try:
            session.move_to(SessionState.EXPIRED, at=now, end_reason=EndReason.EXPIRED)
        except InvalidTransition:
            return False
        by = Actor.system("session expiry")
        _revoke_live_keys(session, by=by, ip=None, now=now)
        session.audit(EventType.SESSION_EXPIRED, by=by, slot_end=session.slot_end)
        live.session_changed(session)
    return True


# --- The live session (see docs/protocol.md) ---------------------------------------------------


class LiveRefused(Exception):
    """A live connection the rules refuse; ``code`` is the protocol's close code, ``session``
    the session the token belongs to (None for an unknown token)."""

    def __init__(self, code: int, reason: str, session: SupportSession | None = None):
        self.code, self.reason, self.session = code, reason, session
        super().__init__(reason)


@transaction.atomic
def issue_live_token(*, session: SupportSession, ip: str | None = None) -> str:
    """A fresh single-use token for the admitted customer's browser to open the live socket."""
    if session.state != SessionState.ACTIVE:
        raise SessionRuleError(_("The session is not active."))
    plain = keys.new_token()
    token = LiveToken.objects.create(session=session, token_hmac=keys.key_hmac(plain))
    session.audit(EventType.LIVE_TOKEN_ISSUED, by=Actor.customer(session.customer_entered_name),
                  ip=ip, token_id=token.pk)
    return plain


@transaction.atomic
def connect_customer(*, token: str, channel: str, ip: str | None = None) -> SupportSession:
    """Claim a token for one connection; refuse a used token or a second connection."""
    from sessions_app import protocol

    now = timezone.now()
    found = (
        LiveToken.objects.select_related("session")
        .filter(token_hmac=keys.key_hmac(token))
        .first()
        if keys.is_token(token) else None
    )
    if found is None:
        _refuse_live(None, protocol.CLOSE_BAD_TOKEN, "unknown token", ip)
    session = SupportSession.objects.select_for_update().get(pk=found.session_id)
    claimed = LiveToken.objects.filter(pk=found.pk, used_at__isnull=True).update(used_at=now)
    if claimed != 1:
        _refuse_live(session, protocol.CLOSE_BAD_TOKEN, "token already used", ip)
    if session.state != SessionState.ACTIVE:
        _refuse_live(session, protocol.CLOSE_BAD_TOKEN, "session not active", ip)
    if session.customer_channel:
        _refuse_live(session, protocol.CLOSE_DUPLICATE, "second customer connection", ip)
    SupportSession.objects.filter(pk=session.pk).update(customer_channel=channel,
                                                        customer_lost_at=None)
    session.customer_channel, session.customer_lost_at = channel, None
    session.audit(EventType.LIVE_CONNECTED, by=Actor.customer(session.customer_entered_name),
                  ip=ip, role="customer", token_id=found.pk)
    return session


def _refuse_live(session, code: int, reason: str, ip: str | None):
    # The claim rolls back; the consumer audits the refusal (record_live_refusal) afterwards,
    # under the session's reference, and tells the session's other sockets.
    raise LiveRefused(code, reason, session)


def record_live_refusal(*, session_ref: str, role: str, code: int, reason: str,
                        actor: Actor, ip: str | None) -> None:
    """Audit a refused connection or message (called after the refusing transaction)."""
    record(event_type=EventType.LIVE_REFUSED, actor=actor, ip=ip, session_ref=session_ref,
           details={"role": role, "close_code": code, "reason": reason})


@transaction.atomic
def disconnect_customer(*, session: SupportSession, channel: str, ip: str | None = None) -> bool:
    """The customer's connection closed; if the session still runs, the grace period starts."""
    from sessions_app import tasks

    now = timezone.now()
    released = SupportSession.objects.filter(pk=session.pk, customer_channel=channel).update(
        customer_channel="", customer_lost_at=now
    )
    if released != 1:
        return False
    session.refresh_from_db()
    session.audit(EventType.LIVE_DISCONNECTED, by=Actor.customer(session.customer_entered_name),
                  ip=ip, role="customer")
    if session.state == SessionState.ACTIVE:
        transaction.on_commit(lambda: tasks.end_if_still_lost.apply_async(
            args=[session.pk, now.isoformat()], countdown=settings.LIVE_GRACE_SECONDS
        ))
    return True


def end_if_still_lost(session_id: int, *, lost_at: datetime) -> bool:
    """After the grace period: end the session if the customer has not come back since."""
    with transaction.atomic():
        session = SupportSession.objects.select_for_update().filter(pk=session_id).first()
        if (session is None or session.state != SessionState.ACTIVE or session.customer_channel
                or session.customer_lost_at != lost_at):
            return False
        end_session(session=session, reason=EndReason.CONNECTION_LOST,
                    by=Actor.system("connection watch"))
    return True


@transaction.atomic
def set_sharing_paused(*, session: SupportSession, paused: bool, ip: str | None = None) -> bool:
    """The customer pauses (no screen, no input) or resumes; False if nothing changed."""
    changed = SupportSession.objects.filter(
        pk=session.pk, state=SessionState.ACTIVE, sharing_paused=not paused
    ).update(sharing_paused=paused)
    if changed != 1:
        return False
    session.sharing_paused = paused
    session.audit(EventType.SHARING_PAUSED if paused else EventType.SHARING_RESUMED,
                  by=Actor.customer(session.customer_entered_name), ip=ip)
    return True


@transaction.atomic
def post_chat(*, session: SupportSession, sender: str, label: str, text: str) -> ChatMessage:
    """Store one chat line for the transcript (the relay forwards it after this)."""
    if session.state != SessionState.ACTIVE:
        raise SessionRuleError(_("The session is not active."))
    return ChatMessage.objects.create(session=session, sender=sender, sender_label=label[:200],
                                      text=text.strip())


def end_for_failed_recording(*, session: SupportSession, error: str) -> bool:
    """The recording cannot be written: the session ends at once (fail closed), audited."""
    with transaction.atomic():
        session = SupportSession.objects.select_for_update().get(pk=session.pk)
        if session.state not in (SessionState.CUSTOMER_WAITING, SessionState.ACTIVE):
            return False
        by = Actor.system("recording")
        session.audit(EventType.RECORDING_FAILED, by=by, error=error[:500])
        end_session(session=session, reason=EndReason.RECORDING_FAILED, by=by)
    return True
