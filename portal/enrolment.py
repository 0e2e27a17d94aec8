"""Enrolment codes: an administrator starts someone's set-up of an authenticator app.

The administrator issues a one-time code (shown once, stored as SHA-256) and hands it to the
person, who needs it together with their password before any secret is shown. Resetting a
second factor also happens here. Every change is audited in its own transaction. For an account
holding a privileged role both steps need a second administrator (``portal.account_changes``):
an administrator's direct step is refused, the approved request carries it out.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from base64 import b32encode
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.event_types import EventType
from audit.events import Actor, record
from portal.models import (
    EnrolmentCode,
    RequestKind,
    RequestState,
    RoleChangeRequest,
    is_privileged,
)

# 16 characters of lower-case base32 (80 random bits), shown in groups of four.
CODE = re.compile(r"[a-z2-7]{16}")
CODE_MAX_LENGTH = 40


class EnrolmentRefused(Exception):
    """The administrator asked for something the enrolment rules refuse; the message says why."""


class NeedsSecondAdministrator(EnrolmentRefused):
    """The account holds a privileged role: the step needs an approved four-eyes request."""


class CodeCheck(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"
    USED = "used"  # used already, or replaced by a newer code, or revoked by a reset
    EXPIRED = "expired"


@dataclass(frozen=True)
class IssuedCode:
    code: str  # shown once to the administrator, never stored
    stored: EnrolmentCode


@dataclass(frozen=True)
class UsedCode:
    check: CodeCheck
    code: EnrolmentCode | None = None


def normalise_code(raw: str) -> str:
    """An enrolment code as typed ("ABCD efgh-…") in the form it is hashed."""
    return re.sub(r"[\s-]", "", raw).lower()


def format_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def code_digest(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode("ascii", "replace")).hexdigest()


def has_authenticator(user: AbstractBaseUser) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def lock_user(user: AbstractBaseUser) -> None:
    """One enrolment change per person at a time: a reset, a new code and a confirmation
    cannot interleave (row lock on PostgreSQL; SQLite serializes every write transaction)."""
    get_user_model()._default_manager.select_for_update().filter(pk=user.pk).first()


def _subject(user: AbstractBaseUser) -> dict:
    return {"user": user.get_username(), "user_id": user.pk}


def _refuse_own_account(user: AbstractBaseUser, by: Actor) -> None:
    # Someone holding an administrator's session must not swap that administrator's factor.
    if by.user_id is not None and by.user_id == user.pk:
        raise EnrolmentRefused(
            _("You cannot do this for your own account. Please ask another administrator.")
        )


def _refuse_privileged(
    user: AbstractBaseUser, by: Actor, approved_request: RoleChangeRequest | None,
    kinds: tuple[str, ...],
) -> None:
    # An administrator who could set a privileged person's factor could take over their rights.
    if by.user_id is None or not is_privileged(user):
        return  # the server's own steps (manage.py) and accounts without a privileged role
    if (
        approved_request is not None
        and approved_request.user_id == user.pk
        and approved_request.kind in kinds
        and approved_request.state == RequestState.APPLIED
        and approved_request.decided_by_id == by.user_id
    ):
        return
    raise NeedsSecondAdministrator(
        _("This person holds a privileged role: a second administrator must approve this step. "
          "Please request it.")
    )


def _revoke_codes(user: AbstractBaseUser, *, now) -> int:
    """Void the person's earlier codes, unused ones and those whose enrolment is under way."""
    return EnrolmentCode.objects.filter(
        user=user, revoked_at__isnull=True, expired_at__isnull=True
    ).update(revoked_at=now)


def is_current(code_id: int | None, *, user: AbstractBaseUser) -> bool:
    """True while an enrolment begun with this code may still finish: no newer code, no reset."""
    return EnrolmentCode.objects.filter(
        pk=code_id, user=user, used_at__isnull=False, revoked_at__isnull=True
    ).exists()


@transaction.atomic
def issue_code(
    *, user: AbstractBaseUser, by: Actor, ip: str | None = None,
    approved_request: RoleChangeRequest | None = None,
) -> IssuedCode:
    """A new one-time enrolment code for ``user``; earlier unused codes stop working."""
    lock_user(user)
    _refuse_own_account(user, by)
    _refuse_privileged(user, by, approved_request,
                       (RequestKind.ENROLMENT_CODE, RequestKind.SECOND_FACTOR_RESET))
    if not user.is_active:
        raise EnrolmentRefused(_("This account is deactivated."))
    if has_authenticator(user):
        raise EnrolmentRefused(
            _("This person has an authenticator app already. Reset the second factor first.")
        )
    now = timezone.now()
    replaced = _revoke_codes(user, now=now)
    code = b32encode(secrets.token_bytes(10)).decode("ascii").lower()
    stored = EnrolmentCode.objects.create(
        user=user,
        code_sha256=code_digest(code),
        issued_by_id=by.user_id,
        issued_at=now,
        expires_at=now + timedelta(hours=settings.ENROLMENT_CODE_HOURS),
    )
    record(
        event_type=EventType.ENROLMENT_STARTED,
        actor=by,
        ip=ip,
        details={
            **_subject(user),
            "code_id": stored.pk,
            "expires_at": stored.expires_at,
            "replaced_codes": replaced,
            "request_id": approved_request.pk if approved_request else None,
        },
    )
    return IssuedCode(code, stored)


@transaction.atomic
def reset_second_factor(
    *, user: AbstractBaseUser, by: Actor, ip: str | None = None,
    approved_request: RoleChangeRequest | None = None,
) -> None:
    """Delete the person's authenticator apps and backup codes; they enrol again with a code."""
    lock_user(user)
    _refuse_own_account(user, by)
    _refuse_privileged(user, by, approved_request, (RequestKind.SECOND_FACTOR_RESET,))
    now = timezone.now()
    authenticators, _detail = TOTPDevice.objects.filter(user=user).delete()
    backup_devices = StaticDevice.objects.filter(user=user).count()
    StaticDevice.objects.filter(user=user).delete()
    revoked = _revoke_codes(user, now=now)
    record(
        event_type=EventType.SECOND_FACTOR_RESET,
        actor=by,
        ip=ip,
        details={
            **_subject(user),
            "authenticators": authenticators,
            "backup_code_sets": backup_devices,
            "revoked_codes": revoked,
            "request_id": approved_request.pk if approved_request else None,
        },
    )


def use_code(*, user: AbstractBaseUser, code: str) -> UsedCode:
    """Consume ``user``'s enrolment code, once: a conditional UPDATE, so two browsers cannot
    both start with it. Runs in the caller's transaction, which audits the outcome."""
    digest = code_digest(code)
    now = timezone.now()
    usable = EnrolmentCode.usable(now=now).filter(user=user, code_sha256=digest)
    claimed = usable.update(used_at=now)
    stored = EnrolmentCode.objects.filter(user=user, code_sha256=digest).first()
    if claimed == 1:
        return UsedCode(CodeCheck.OK, stored)
    if stored is None:
        return UsedCode(CodeCheck.WRONG)
    if stored.used_at is None and stored.revoked_at is None:
        return UsedCode(CodeCheck.EXPIRED, stored)
    return UsedCode(CodeCheck.USED, stored)


def expire_code(code_id: int, *, now=None) -> bool:
    """Record that an unused code ran out (once, claimed by a conditional UPDATE)."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = EnrolmentCode.objects.filter(
            pk=code_id, used_at__isnull=True, revoked_at__isnull=True, expired_at__isnull=True,
            expires_at__lte=now,
        ).update(expired_at=now)
        if not claimed:
            return False
        stored = EnrolmentCode.objects.select_related("user").get(pk=code_id)
        record(
            event_type=EventType.ENROLMENT_CODE_EXPIRED,
            actor=Actor.system("enrolment code expiry"),
            details={**_subject(stored.user), "code_id": stored.pk,
                     "expires_at": stored.expires_at},
        )
    return True


def overdue_code_ids(*, now=None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        EnrolmentCode.objects.filter(
            used_at__isnull=True, revoked_at__isnull=True, expired_at__isnull=True,
            expires_at__lte=now,
        ).values_list("pk", flat=True)[:limit]
    )
