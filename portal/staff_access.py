"""Who may use a staff surface: signed in with password *and* a verified second factor.

Pages use ``staff_required``; WebSockets use ``verified_staff_user``. Idle staff sessions end
after ``STAFF_IDLE_TIMEOUT`` seconds without a request.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode

from channels.db import database_sync_to_async
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
from audit.events import Actor, record, record_for_request
from portal import client_ip

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
                with transaction.atomic():
                    record_for_request(
                        request,
                        event_type=EventType.ACCESS_DENIED,
                        details={"path": request.path[:200], "permission": permission},
                    )
                raise PermissionDenied
            return view_func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator


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
    session = scope.get("session")
    reason = None
    if user is None or not user.is_authenticated or session is None:
        reason = "not signed in"
    elif _idle_too_long(session):
        reason = "session idle too long"
    else:
        device = None
        persistent_id = session.get(DEVICE_ID_SESSION_KEY)
        if persistent_id:
            device = Device.from_persistent_id(persistent_id)
        if device is None or device.user_id != user.pk or not device.confirmed:
            reason = "second factor not verified"
        elif permission and not user.has_perm(permission):
            reason = f"missing permission {permission}"
    if reason is None:
        return user

    address = client_ip.for_scope(scope)
    signed_in = user is not None and user.is_authenticated
    with transaction.atomic():
        record(
            event_type=EventType.SOCKET_REFUSED,
            actor=Actor.staff(user) if signed_in else Actor.anonymous(),
            ip=address.ip,
            details={"path": scope.get("path", "")[:200], "reason": reason},
        )
    return None
