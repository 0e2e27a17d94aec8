"""Changing a staff member's roles: requested by one administrator, for someone else only.

Granting Compliance officer or Administrator takes effect once a second, different
administrator approves (four eyes); granting Support staff and removing a role take effect at
once. Each request, decision and applied change is audited in the transaction of the change,
and a request is applied at most once (claimed with a conditional UPDATE).

The same request model carries the four-eyes steps on privileged accounts (new password, second
factor, enrolment code; ``portal.account_changes``): rejecting and expiring work here for every
kind of request.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.event_types import EventType
from audit.events import Actor, record
from audit.models import AuditEvent
from portal.models import (
    RequestKind,
    RequestState,
    RoleChange,
    RoleChangeRequest,
    needs_four_eyes,
)
from portal.roles import MANAGE_ACCOUNTS, ROLE_LABELS


class RoleChangeRefused(Exception):
    """A role change the rules refuse; the message is for the administrator."""


def may_manage_roles(user: AbstractBaseUser) -> bool:
    """Administrators (and superusers) request, approve and reject role changes."""
    return bool(user.is_active and user.has_perms(MANAGE_ACCOUNTS))


def check_manager(user: AbstractBaseUser) -> None:
    if not may_manage_roles(user):
        raise RoleChangeRefused(_("Only administrators can change roles."))


def details(change_request: RoleChangeRequest) -> dict:
    """What every audit event about a request names."""
    if change_request.kind != RequestKind.ROLE:
        return {
            "request_id": change_request.pk,
            "kind": change_request.kind,
            "user": change_request.user.get_username(),
            "user_id": change_request.user_id,
        }
    return {
        "request_id": change_request.pk,
        "user": change_request.user.get_username(),
        "user_id": change_request.user_id,
        "role": change_request.role,
        "change": change_request.change,
    }


def lock(user: AbstractBaseUser) -> None:
    # One role change per person at a time, so two requests cannot race past the checks.
    get_user_model()._default_manager.select_for_update().filter(pk=user.pk).first()


def claim(change_request: RoleChangeRequest, *, by_user: AbstractBaseUser, state: str) -> None:
    """Decide a waiting, unexpired request, at most once (one conditional UPDATE)."""
    now = timezone.now()
    if not change_request.move_to(state, at=now, where={"expires_at__gt": now},
                                  decided_by=by_user):
        raise RoleChangeRefused(_("This request was decided already or has expired."))
    change_request.refresh_from_db()


def _apply(change_request: RoleChangeRequest, *, by_user: AbstractBaseUser, ip: str | None) -> None:
    """Claim the pending request (once) and change the group membership."""
    claim(change_request, by_user=by_user, state=RequestState.APPLIED)
    group = Group.objects.get(name=change_request.role)
    if change_request.change == RoleChange.GRANT:
        change_request.user.groups.add(group)
    else:
        change_request.user.groups.remove(group)
    record(
        event_type=EventType.ROLE_CHANGED,
        actor=Actor.staff(by_user),
        ip=ip,
        details={
            **details(change_request),
            "requested_by": change_request.requested_by.get_username(),
            "approved_by": (
                by_user.get_username() if change_request.needs_second_administrator else None
            ),
        },
    )


@transaction.atomic
def request_role_change(
    *,
    user: AbstractBaseUser,
    role: str,
    change: str,
    by_user: AbstractBaseUser,
    ip: str | None = None,
    note: str = "",
) -> RoleChangeRequest:
    """Ask to grant or remove one role of another person; applied at once unless four eyes."""
    check_manager(by_user)
    if role not in ROLE_LABELS or change not in RoleChange.values:
        raise RoleChangeRefused(_("Unknown role or change."))
    lock(user)
    if user.pk == by_user.pk:
        raise RoleChangeRefused(
            _("Nobody can change their own roles. Please ask another administrator.")
        )
    if user.is_superuser and not by_user.is_superuser:
        raise RoleChangeRefused(_("Only a superuser can change a superuser's roles."))
    holds = user.groups.filter(name=role).exists()
    if change == RoleChange.GRANT and holds:
        raise RoleChangeRefused(_("This person holds this role already."))
    if change == RoleChange.REMOVE and not holds:
        raise RoleChangeRefused(_("This person does not hold this role."))
    now = timezone.now()
    if RoleChangeRequest.objects.filter(
        user=user, kind=RequestKind.ROLE, role=role, state=RequestState.PENDING,
        expires_at__gt=now,
    ).exists():
        raise RoleChangeRefused(_("A request for this role of this person is waiting already."))
    change_request = RoleChangeRequest.objects.create(
        user=user,
        role=role,
        change=change,
        note=note[:300],
        requested_by=by_user,
        requested_at=now,
        expires_at=now + timedelta(days=settings.ROLE_REQUEST_DAYS),
    )
    four_eyes = needs_four_eyes(role=role, change=change)
    record(
        event_type=EventType.ROLE_CHANGE_REQUESTED,
        actor=Actor.staff(by_user),
        ip=ip,
        details={
            **details(change_request),
            "note": change_request.note,
            "needs_second_administrator": four_eyes,
            "expires_at": change_request.expires_at,
        },
    )
    if not four_eyes:
        _apply(change_request, by_user=by_user, ip=ip)
    return change_request


def _check_decider(change_request: RoleChangeRequest, by_user: AbstractBaseUser) -> None:
    check_manager(by_user)
    if by_user.pk == change_request.user_id:
        if change_request.kind != RequestKind.ROLE:
            raise RoleChangeRefused(_("Nobody can decide about requests for their own account."))
        raise RoleChangeRefused(_("Nobody can decide about their own roles."))


@transaction.atomic
def approve_role_change(
    *, change_request: RoleChangeRequest, by_user: AbstractBaseUser, ip: str | None = None
) -> None:
    """The second administrator's approval: the change takes effect now."""
    if change_request.kind != RequestKind.ROLE:
        raise RoleChangeRefused(_("This request is not a role change."))
    _check_decider(change_request, by_user)
    if by_user.pk == change_request.requested_by_id:
        raise RoleChangeRefused(
            _("You requested this change yourself: a second administrator must approve it.")
        )
    if change_request.user.is_superuser and not by_user.is_superuser:
        raise RoleChangeRefused(_("Only a superuser can change a superuser's roles."))
    lock(change_request.user)
    # Audited first; if the request turns out decided already, the whole transaction rolls back.
    record(
        event_type=EventType.ROLE_CHANGE_APPROVED,
        actor=Actor.staff(by_user),
        ip=ip,
        details={**details(change_request),
                 "requested_by": change_request.requested_by.get_username()},
    )
    _apply(change_request, by_user=by_user, ip=ip)


@transaction.atomic
def reject_role_change(
    *,
    change_request: RoleChangeRequest,
    by_user: AbstractBaseUser,
    ip: str | None = None,
) -> None:
    """Turn a waiting request down (or withdraw one's own request); nothing changes."""
    _check_decider(change_request, by_user)
    claim(change_request, by_user=by_user, state=RequestState.REJECTED)
    record(
        event_type=(EventType.ROLE_CHANGE_REJECTED if change_request.kind == RequestKind.ROLE
                    else EventType.ACCOUNT_CHANGE_REJECTED),
        actor=Actor.staff(by_user),
        ip=ip,
        details={**details(change_request),
                 "withdrawn": by_user.pk == change_request.requested_by_id},
    )


# The sign-in means of a person: whoever set them could hold the account.
SIGN_IN_EVENTS = (
    EventType.PASSWORD_SET,
    EventType.ENROLMENT_STARTED,
    EventType.SECOND_FACTOR_RESET,
)


def set_up_by_requester(change_request: RoleChangeRequest) -> list[AuditEvent]:
    """The requester's own steps on the person's password or factor, for the approver to see.

    An account without a privileged role keeps the direct steps, so an administrator could set
    one up for themselves and then ask for a privileged role for it.
    """
    if change_request.kind != RequestKind.ROLE or not change_request.needs_second_administrator:
        return []
    return list(
        AuditEvent.objects.filter(
            event_type__in=SIGN_IN_EVENTS,
            actor_id=change_request.requested_by_id,
            details__user_id=change_request.user_id,
        ).order_by("seq")
    )


def expire_request(request_id: int, *, now=None) -> bool:
    """Record that a request waited too long (once, claimed by a conditional UPDATE)."""
    now = now or timezone.now()
    with transaction.atomic():
        change_request = RoleChangeRequest.objects.select_related("user").filter(
            pk=request_id
        ).first()
        if change_request is None or not change_request.move_to(
            RequestState.EXPIRED, at=now, where={"expires_at__lte": now}
        ):
            return False
        record(
            event_type=(EventType.ROLE_CHANGE_EXPIRED if change_request.kind == RequestKind.ROLE
                        else EventType.ACCOUNT_CHANGE_EXPIRED),
            actor=Actor.system("four-eyes request expiry"),
            details=details(change_request),
        )
    return True


def overdue_request_ids(*, now=None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        RoleChangeRequest.objects.filter(state=RequestState.PENDING, expires_at__lte=now)
        .values_list("pk", flat=True)[:limit]
    )
