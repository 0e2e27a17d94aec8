"""A privileged account's password and second factor change only with four eyes.

Whoever sets the password or the authenticator of a Compliance officer, an Administrator or a
superuser holds that account's rights. So for such an account one administrator requests the
step with a reason, a second one (neither the requester nor the person concerned) approves, and
the approval carries the step out at once: a new password or enrolment code is shown once to the
approver, never to the requester. Other accounts keep the direct steps, and nobody does any of
this to their own account. Requests share the model, expiry and rejection of role changes.
"""

from __future__ import annotations

import secrets
from base64 import b32encode
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.event_types import EventType
from audit.events import Actor, record
from portal import enrolment
from portal.models import RequestKind, RequestState, RoleChangeRequest, is_privileged
from portal.role_changes import RoleChangeRefused, check_manager, claim, details, lock

ACCOUNT_KINDS = (
    RequestKind.PASSWORD,
    RequestKind.SECOND_FACTOR_RESET,
    RequestKind.ENROLMENT_CODE,
)


class AccountChangeRefused(RoleChangeRefused):
    """A step on an account the rules refuse; the message is for the administrator."""


@dataclass(frozen=True)
class CarriedOut:
    """An approved request's result: the new password or enrolment code, shown once."""

    change_request: RoleChangeRequest
    secret: str = ""
    expires_at: object = None  # an enrolment code's end of validity


def own_account_refusal(*, user: AbstractBaseUser, by_user: AbstractBaseUser) -> str | None:
    """Why an administrator may not set ``user``'s password or factor directly, if not."""
    if user.pk == by_user.pk:
        return _("You cannot do this for your own account. Please ask another administrator.")
    return None


def needs_request(user: AbstractBaseUser) -> bool:
    """The account holds a privileged role: its password and factor need a second administrator."""
    return is_privileged(user)


@transaction.atomic
def record_refusal(
    *, user: AbstractBaseUser, by_user: AbstractBaseUser, step: str, reason: str,
    ip: str | None = None,
) -> None:
    """Audit a direct attempt refused because of the account (own or privileged)."""
    record(
        event_type=EventType.ACCOUNT_CHANGE_REFUSED,
        actor=Actor.staff(by_user),
        ip=ip,
        details={"user": user.get_username(), "user_id": user.pk, "step": step,
                 "reason": reason},
    )


def record_password_set(
    *, user: AbstractBaseUser, by_user: AbstractBaseUser, ip: str | None = None,
    change_request: RoleChangeRequest | None = None,
) -> None:
    """Audit a password set by an administrator, in the caller's transaction."""
    record(
        event_type=EventType.PASSWORD_SET,
        actor=Actor.staff(by_user),
        ip=ip,
        details={
            "user": user.get_username(),
            "user_id": user.pk,
            "request_id": change_request.pk if change_request else None,
            "requested_by": change_request.requested_by.get_username() if change_request else None,
            "generated": change_request is not None,
        },
    )


@transaction.atomic
def request_account_change(
    *,
    user: AbstractBaseUser,
    kind: str,
    by_user: AbstractBaseUser,
    note: str,
    ip: str | None = None,
) -> RoleChangeRequest:
    """Ask for a new password, a factor reset or an enrolment code of a privileged account."""
    check_manager(by_user)
    if kind not in ACCOUNT_KINDS:
        raise AccountChangeRefused(_("Unknown request."))
    lock(user)
    refusal = own_account_refusal(user=user, by_user=by_user)
    if refusal:
        raise AccountChangeRefused(refusal)
    if user.is_superuser and not by_user.is_superuser:
        raise AccountChangeRefused(_("Only a superuser can change a superuser's account."))
    if not needs_request(user):
        raise AccountChangeRefused(
            _("This person holds no privileged role: no second administrator is needed.")
        )
    note = note.strip()[:300]
    if not note:
        raise AccountChangeRefused(_("Please give a reason."))
    if kind == RequestKind.ENROLMENT_CODE and enrolment.has_authenticator(user):
        raise AccountChangeRefused(
            _("This person has an authenticator app already. Request a reset of the second "
              "factor instead.")
        )
    now = timezone.now()
    if RoleChangeRequest.objects.filter(
        user=user, kind=kind, state=RequestState.PENDING, expires_at__gt=now
    ).exists():
        raise AccountChangeRefused(_("The same request for this person is waiting already."))
    change_request = RoleChangeRequest.objects.create(
        user=user,
        kind=kind,
        note=note,
        requested_by=by_user,
        requested_at=now,
        expires_at=now + timedelta(days=settings.ROLE_REQUEST_DAYS),
    )
    record(
        event_type=EventType.ACCOUNT_CHANGE_REQUESTED,
        actor=Actor.staff(by_user),
        ip=ip,
        details={**details(change_request), "note": note,
                 "expires_at": change_request.expires_at},
    )
    return change_request


def new_password() -> str:
    """A one-time password to read out: 100 random bits, lower-case base32 in groups of four."""
    raw = b32encode(secrets.token_bytes(15)).decode("ascii").lower()
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@transaction.atomic
def approve_account_change(
    *, change_request: RoleChangeRequest, by_user: AbstractBaseUser, ip: str | None = None
) -> CarriedOut:
    """The second administrator's approval, carried out at once; any secret goes to them."""
    if change_request.kind not in ACCOUNT_KINDS:
        raise AccountChangeRefused(_("This request is not about a password or second factor."))
    check_manager(by_user)
    user = change_request.user
    if by_user.pk == user.pk:
        raise AccountChangeRefused(_("Nobody can decide about requests for their own account."))
    if by_user.pk == change_request.requested_by_id:
        raise AccountChangeRefused(
            _("You requested this yourself: a second administrator must approve it.")
        )
    if user.is_superuser and not by_user.is_superuser:
        raise AccountChangeRefused(_("Only a superuser can change a superuser's account."))
    lock(user)
    # Audited first; if the request turns out decided already, the whole transaction rolls back.
    record(
        event_type=EventType.ACCOUNT_CHANGE_APPROVED,
        actor=Actor.staff(by_user),
        ip=ip,
        details={**details(change_request),
                 "requested_by": change_request.requested_by.get_username()},
    )
    claim(change_request, by_user=by_user, state=RequestState.APPLIED)
    actor = Actor.staff(by_user)
    try:
        if change_request.kind == RequestKind.PASSWORD:
            password = new_password()
            user.set_password(password)
            user.save(update_fields=["password"])
            record_password_set(user=user, by_user=by_user, ip=ip, change_request=change_request)
            return CarriedOut(change_request, password)
        if change_request.kind == RequestKind.SECOND_FACTOR_RESET:
            enrolment.reset_second_factor(user=user, by=actor, ip=ip,
                                          approved_request=change_request)
        issued = enrolment.issue_code(user=user, by=actor, ip=ip, approved_request=change_request)
    except enrolment.EnrolmentRefused as refused:
        raise AccountChangeRefused(str(refused)) from refused
    return CarriedOut(change_request, issued.code, issued.stored.expires_at)
