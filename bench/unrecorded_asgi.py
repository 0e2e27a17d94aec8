"""Bench only: the portal's ASGI application with a customer socket whose records go nowhere.

``bench/relay.py`` serves this in a second daphne process beside ``portal.asgi`` to measure what
recording costs the relay. Everything else is the real relay: the hello, the recording's
database row and its first record, tile parsing, the channel layer, flow control. Only the
per-message write is left out (``record`` still computes the record's time and says True).

Nothing in the portal imports this module or names it in a setting, and it refuses to load
unless the bench sets ``BENCH_UNRECORDED_RELAY=1``: an unrecorded relay must never serve a bank.
"""

from __future__ import annotations

import os

if os.environ.get("BENCH_UNRECORDED_RELAY") != "1":
    raise ImportError("bench/unrecorded_asgi.py is for bench/relay.py only "
                      "(BENCH_UNRECORDED_RELAY=1 is not set)")

from portal.asgi import django_asgi_app  # noqa: E402 - sets Django up first

# isort: split
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from live.consumers import CustomerConsumer  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402


class UnrecordedCustomerConsumer(CustomerConsumer):
    """The customer's socket with ``record`` writing nothing (the writer is still opened)."""

    async def record(self, write, *args, **kwargs) -> bool:
        if self.recorder is None:
            return False
        self.at_us()  # the relay computes the record's time either way
        return True


def _unrecorded(patterns: list) -> list:
    """The portal's WebSocket routes, the customer's socket swapped for the unrecorded one."""
    swapped, found = [], 0
    for pattern in patterns:
        if getattr(pattern.callback, "consumer_class", None) is CustomerConsumer:
            pattern = path(str(pattern.pattern), UnrecordedCustomerConsumer.as_asgi())
            found += 1
        swapped.append(pattern)
    if found != 1:
        raise RuntimeError(f"expected one customer route in portal.routing, found {found}")
    return swapped


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(_unrecorded(websocket_urlpatterns)))
        ),
    }
)
