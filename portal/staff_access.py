"""Who may use a staff surface: signed in with password *and* a verified second factor.

Pages use ``staff_required``; WebSockets use ``verified_staff_user``. Idle staff sessions end
after ``STAFF_IDLE_TIMEOUT`` seconds without a request.
"""

from __future__ import annotations

import functools
import hashlib
import time
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from audit.event_types import EventType
from audit.events import Actor, record
from portal import client_ip
from portal.request_audit import record_for_request

LAST_SEEN_SESSION_KEY = "staff_last_seen"

# WebSocket close codes for refused staff sockets (documented in docs/staff-signin.md).
CLOSE_NOT_VERIFIED = 4401
CLOSE_FORBIDDEN = 4403


def _redirect_to(name: str, request):
    return redirect(f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}")


def staff_required(view=None, *, permission: str | None = None):
    """Allow only staff who passed both factors (and hold ``permission``, if given)."""

    def decorator(view_func):
        @functools.wraps(view_func)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return _redirect_to("staff-login", request)
            if not user.is_verified():
                return _redirect_to("staff-login-otp", request)
            if permission and not user.has_perm(permission):
                record_for_request(
                    request,
                    event_type=EventType.ACCESS_DENIED,
                    details={"path": request.path[:200], "permission": permission},
                )
                raise PermissionDenied
            return view_func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


def signin_group(session_key: str) -> str:
    """The channel group of every open staff socket of one signed-in browser session."""
    return "staff-signin-" + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def signin_user_group(user_id: int) -> str:
    """The channel group of every open staff socket of one user, in any browser."""
    return f"staff-signin-user-{user_id}"


def close_staff_sockets(session_key: str | None, *, reason: str) -> None:
    """Once committed, close the open staff sockets of this browser session (4401): signed
    out or idle, nothing more may reach it (portal.staff_sockets)."""
    if session_key:
        _close_after_commit(signin_group(session_key), reason)


def close_user_sockets(user_id: int, *, reason: str) -> None:
    """Once committed, close every open staff socket of this user (deactivated, roles
    changed); without it, the sockets' own re-check closes them within a short while."""
    _close_after_commit(signin_user_group(user_id), reason)


def _close_after_commit(group: str, reason: str) -> None:
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(
        group, {"type": "staff.signed_out", "reason": reason}
    ))


def _idle_too_long(session) -> bool:
    last_seen = session.get(LAST_SEEN_SESSION_KEY)
    return last_seen is not None and time.time() - last_seen > settings.STAFF_IDLE_TIMEOUT


class StaffIdleTimeoutMiddleware:
    """End a signed-in staff session after a quiet spell; the next page asks to sign in again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            if _idle_too_long(request.session):
                user = request.user
                with transaction.atomic():
                    record_for_request(
                        request,
                        event_type=EventType.STAFF_SESSION_EXPIRED,
                        actor=Actor.staff(user),
                        details={"idle_timeout_seconds": settings.STAFF_IDLE_TIMEOUT},
                    )
                    close_staff_sockets(request.session.session_key,
                                        reason="session idle too long")
                logout(request)
                messages.info(
                    request,
                    _(
                        "Your session ended after %(minutes)d minutes without activity. "
                        "Please sign in again."
                    )
                    % {"minutes": settings.STAFF_IDLE_TIMEOUT // 60},
                )
            else:
                request.session[LAST_SEEN_SESSION_KEY] = time.time()
        return self.get_response(request)


@database_sync_to_async
def verified_staff_user(scope, *, permission: str | None = None):
    """The scope's user if signed in with both factors, not idle, and permitted; else None.

    A refusal is audited. Needs ``AuthMiddlewareStack`` (session and user in the scope).
    """
    user = scope.get("user")
    reason = refusal_reason(user, scope.get("session"), permission)
    if reason is None:
        return user
    audit_socket_refusal(scope, user, reason)
    return None


def refusal_reason(user, session, permission: str | None = None) -> str | None:
    """Why ``user`` with this browser ``session`` may not use a staff socket; None if they may."""
    if user is None or not user.is_authenticated or session is None:
        return "not signed in"
    if _idle_too_long(session):
        return "session idle too long"
    device = None
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if persistent_id:
        device = Device.from_persistent_id(persistent_id)
    if device is None or device.user_id != user.pk or not device.confirmed:
        return "second factor not verified"
    if permission and not user.has_perm(permission):
        return f"missing permission {permission}"
    return None


def audit_socket_refusal(scope, user, reason: str) -> None:
    """Audit a staff socket refused, or closed because its sign-in no longer holds."""
    address = client_ip.for_scope(scope)
    signed_in = user is not None and user.is_authenticated
    record(
        event_type=EventType.SOCKET_REFUSED,
        actor=Actor.staff(user) if signed_in else Actor.anonymous(),
        ip=address.ip,
        details={"path": scope.get("path", "")[:200], "reason": reason},
    )
