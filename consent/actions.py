"""Every change to terms and consent: atomic, audited in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.event_types import EventType
from audit.events import Actor, record
from consent.models import (
    RETENTION_PLACEHOLDER,
    ConsentAcceptance,
    ConsentEvent,
    ConsentEventKind,
    TermsVersion,
)
from portal.environment import period_code
from sessions_app import actions as session_actions
from sessions_app import live
from sessions_app.models import EndReason, SessionState, SupportSession


class ConsentRefused(Exception):
    """The consent cannot be recorded; the message is for the customer."""


class TermsReplaced(ConsentRefused):
    """The customer read a version that is no longer the current one."""


@dataclass(frozen=True)
class Answers:
    accepted_terms: bool
    it_permission: bool
    share_screen: bool
    full_control: bool


def configured_retention() -> str:
    """The retention of the default recording class, as terms state it (e.g. ``24m``)."""
    return period_code(settings.RECORDING_RETENTION[settings.RECORDING_DEFAULT_CLASS])


@transaction.atomic
def publish_terms(*, terms: TermsVersion, by_user: AbstractBaseUser, ip: str | None = None) -> None:
    """Publish a draft: from now on it is what customers accept, and it never changes.

    The text states the configured recording retention where it says ``{retention}``; the
    stored text and its hash are the filled ones.
    """
    already = _("This version is already published.")
    if TermsVersion.objects.filter(pk=terms.pk, published_at__isnull=False).exists():
        raise ConsentRefused(already)
    if RETENTION_PLACEHOLDER not in terms.text:
        raise ConsentRefused(_(
            "The text must state how long recordings are kept: write {retention} where the "
            "period belongs; it is filled in from the configuration when you publish."
        ))
    published = terms.with_retention(configured_retention())
    claimed = TermsVersion.objects.filter(
        pk=terms.pk, published_at__isnull=True
    ).update(
        published_at=timezone.now(), published_by=by_user, text=published.text,
        sha256=published.sha256, recording_retention=published.recording_retention,
    )
    if claimed != 1:
        raise ConsentRefused(already)
    terms.refresh_from_db()
    record(
        event_type=EventType.TERMS_PUBLISHED, actor=Actor.staff(by_user), ip=ip,
        details={"version": terms.version, "language": terms.language, "sha256": terms.sha256,
                 "recording_retention": terms.recording_retention},
    )


@transaction.atomic
def give_consent(
    *,
    session: SupportSession,
    terms_id: int,
    language: str,
    answers: Answers,
    ip: str | None,
    user_agent: str = "",
) -> ConsentAcceptance:
    """Record the customer's consent to the current terms; (a) to (c) are required."""
    session = SupportSession.objects.select_for_update().get(pk=session.pk)
    if session.state not in (SessionState.CUSTOMER_WAITING, SessionState.ACTIVE):
        raise ConsentRefused(_("This session has ended."))
    if ConsentAcceptance.objects.filter(session=session).exists():
        raise ConsentRefused(_("You have already agreed; nothing more to do here."))
    if not (answers.accepted_terms and answers.it_permission and answers.share_screen):
        raise ConsentRefused(_("Please tick the first three boxes to continue."))
    current = TermsVersion.objects.current(language)
    if current is None or current.pk != terms_id:
        raise TermsReplaced(
            _("The terms were updated while you were reading. Please read the new version.")
        )
    now = timezone.now()
    acceptance = ConsentAcceptance.objects.create(
        session=session,
        terms=current,
        terms_sha256=current.sha256,
        language=current.language,
        customer_name=session.customer_entered_name,
        accepted_terms=answers.accepted_terms,
        it_permission=answers.it_permission,
        share_screen=answers.share_screen,
        full_control=answers.full_control,
        accepted_at=now,
        ip=ip,
        user_agent=user_agent[:300],
    )
    by = Actor.customer(session.customer_entered_name or "customer")
    session.audit(
        EventType.CONSENT_GIVEN, by=by, ip=ip, terms_version=current.version,
        terms_language=current.language, terms_sha256=current.sha256,
        accepted_terms=True, it_permission=True, share_screen=True,
        full_control=answers.full_control,
    )
    if answers.full_control:
        ConsentEvent.objects.create(
            session=session, kind=ConsentEventKind.CONTROL_GRANTED, at=now, ip=ip
        )
        session.audit(EventType.CONTROL_GRANTED, by=by, ip=ip, at_consent=True)
    live.session_changed(session)
    return acceptance


@transaction.atomic
def end_by_customer(
    *, session: SupportSession, ip: str | None, adviser_not_recognised: bool = False
) -> None:
    """The customer ends the session: consent withdrawn, key burnt, everyone told."""
    by = Actor.customer(session.customer_entered_name or "customer")
    session_actions.end_session(session=session, reason=EndReason.CUSTOMER_ENDED, by=by, ip=ip)
    if ConsentAcceptance.objects.filter(session=session).exists():
        ConsentEvent.objects.create(
            session=session, kind=ConsentEventKind.CONSENT_WITHDRAWN, at=session.ended_at, ip=ip
        )
        session.audit(EventType.CONSENT_WITHDRAWN, by=by, ip=ip)
    if adviser_not_recognised:
        session.audit(
            EventType.ADVISER_NOT_RECOGNISED, by=by, ip=ip,
            adviser=session.assigned_to.get_username(),
        )


# --- Control during the live session: every step a stored consent event ---------------------


def _latest_control_event(session: SupportSession) -> ConsentEvent | None:
    return ConsentEvent.objects.filter(
        session=session,
        kind__in=[ConsentEventKind.CONTROL_REQUESTED, ConsentEventKind.CONTROL_GRANTED,
                  ConsentEventKind.CONTROL_DENIED, ConsentEventKind.CONTROL_REVOKED,
                  ConsentEventKind.CONTROL_RELEASED],
    ).order_by("-at", "-pk").first()


def _control_step(session, kind, event_type, *, by: Actor, by_customer: bool, ip, allowed_after):
    session = SupportSession.objects.select_for_update().get(pk=session.pk)
    if session.state != SessionState.ACTIVE:
        raise ConsentRefused(_("The session is not active."))
    latest = _latest_control_event(session)
    if (latest.kind if latest else None) not in allowed_after:
        raise ConsentRefused(_("That is not possible at this point."))
    ConsentEvent.objects.create(session=session, kind=kind, at=timezone.now(),
                                by_customer=by_customer, ip=ip)
    session.audit(event_type, by=by, ip=ip)


@transaction.atomic
def request_control(*, session: SupportSession, by_user: AbstractBaseUser, ip=None) -> None:
    """The adviser asks for full control; the customer will be prompted."""
    session_actions.check_assigned(session, by_user)
    _control_step(session, ConsentEventKind.CONTROL_REQUESTED, EventType.CONTROL_REQUESTED,
                  by=Actor.staff(by_user), by_customer=False, ip=ip,
                  allowed_after={None, ConsentEventKind.CONTROL_DENIED,
                                 ConsentEventKind.CONTROL_REVOKED,
                                 ConsentEventKind.CONTROL_RELEASED})


@transaction.atomic
def answer_control(*, session: SupportSession, grant: bool, ip=None) -> None:
    """The customer grants or denies the pending request."""
    kind = ConsentEventKind.CONTROL_GRANTED if grant else ConsentEventKind.CONTROL_DENIED
    event = EventType.CONTROL_GRANTED if grant else EventType.CONTROL_DENIED
    _control_step(session, kind, event, by=Actor.customer(session.customer_entered_name),
                  by_customer=True, ip=ip, allowed_after={ConsentEventKind.CONTROL_REQUESTED})


@transaction.atomic
def revoke_control(*, session: SupportSession, ip=None) -> None:
    """The customer takes control back, at any time."""
    _control_step(session, ConsentEventKind.CONTROL_REVOKED, EventType.CONTROL_REVOKED,
                  by=Actor.customer(session.customer_entered_name), by_customer=True, ip=ip,
                  allowed_after={ConsentEventKind.CONTROL_GRANTED})


@transaction.atomic
def release_control(*, session: SupportSession, by_user: AbstractBaseUser, ip=None) -> None:
    """The adviser gives control back, or withdraws a request not yet answered."""
    session_actions.check_assigned(session, by_user)
    _control_step(session, ConsentEventKind.CONTROL_RELEASED, EventType.CONTROL_RELEASED,
                  by=Actor.staff(by_user), by_customer=False, ip=ip,
                  allowed_after={ConsentEventKind.CONTROL_GRANTED,
                                 ConsentEventKind.CONTROL_REQUESTED})


def control_pending(session: SupportSession) -> bool:
    """Whether the adviser's request for control waits for the customer's answer."""
    latest = _latest_control_event(session)
    return latest is not None and latest.kind == ConsentEventKind.CONTROL_REQUESTED
