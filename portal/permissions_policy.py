"""The Permissions-Policy header: powerful browser features denied on every page.

Only the customer's waiting room, where they share their screen, allows ``display-capture``
for itself (``allow_display_capture``). Nothing here uses the camera, microphone, location
or devices, so they are denied everywhere, also to anything an attacker might inject.
"""

from __future__ import annotations

import functools

HEADER = "Permissions-Policy"
DENIED = (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "hid",
    "magnetometer", "microphone", "midi", "payment", "serial", "usb",
)


def policy(*, allowed_for_self: frozenset[str] = frozenset()) -> str:
    """The header value: every feature in DENIED off, those in ``allowed_for_self`` for self."""
    return ", ".join(f"{feature}=(self)" if feature in allowed_for_self else f"{feature}=()"
                     for feature in DENIED)


DEFAULT = policy()
DISPLAY_CAPTURE = policy(allowed_for_self=frozenset({"display-capture"}))


def allow_display_capture(view):
    """The page may ask the browser to capture the screen (the customer's screen sharing)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response[HEADER] = DISPLAY_CAPTURE
        return response

    return wrapper


class PermissionsPolicyMiddleware:
    """Sets the default policy on every response that has none of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = DEFAULT
        return response
