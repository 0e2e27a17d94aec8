"""What /healthz checks: database, channel layer, Celery broker and the audit verification here;
apps above portal add their own with ``register`` (recordings: the free space of its folder)."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.chain import last_verification
from audit.event_types import EventType
from portal import client_ip
from portal.celery import app as celery_app

CHECK_TIMEOUT = 3.0


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def check_channel_layer() -> dict:
    """A message's round trip through a channel layer of the probe's own.

    Same backend and settings as the consumers' layer, but not that instance: with
    channels-redis, all process-local channels of one instance share one receive loop, and a
    consumer's cancelled receive (a refused socket) can hold it for seconds, which made a healthy
    node fail here. A layer of its own has its own receive loop and Redis connections.
    """
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)

    async def round_trip():
        try:
            channel = await layer.new_channel("healthz.")
            await layer.send(channel, {"type": "healthz.ping"})
            message = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT)
            return message.get("type") == "healthz.ping"
        finally:
            if hasattr(layer, "close_pools"):  # channels-redis: no connections left behind
                await asyncio.wait_for(layer.close_pools(), CHECK_TIMEOUT)

    ok = async_to_sync(round_trip)()
    return {"ok": ok, "backend": type(layer).__name__}


def check_celery_broker() -> dict:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT)
        transport = conn.transport_cls
    return {"ok": True, "transport": str(transport)}


def check_audit_verification() -> dict:
    event = last_verification()
    if event is None:
        return {"ok": True, "state": "never verified yet"}
    age = timezone.now() - event.created_at
    intact = event.event_type == EventType.AUDIT_VERIFIED
    fresh = age <= timedelta(seconds=settings.AUDIT_VERIFICATION_MAX_AGE)
    return {
        "ok": intact and fresh,
        "state": ("intact" if intact else "broken") + ("" if fresh else ", stale"),
        "at": event.created_at.isoformat(),
        "checked": event.details.get("checked"),
    }


CHECKS = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "celery_broker": check_celery_broker,
    "audit_verification": check_audit_verification,
}


def register(name: str, check) -> None:
    """Add a check from an app above portal (called from its AppConfig.ready)."""
    CHECKS[name] = check


def run_checks() -> dict[str, dict]:
    """Run every check; a check that raises is reported as failed with the error's class."""
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:  # noqa: BLE001 - a failing dependency is the answer
            results[name] = {"ok": False, "error": type(error).__name__}
    return results


def may_see_details(request) -> bool:
    """Details for loopback clients and for the bearer of PORTAL_HEALTHZ_TOKEN only."""
    token = settings.HEALTHZ_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode()):
            return True
    ip = client_ip.of(request)
    return ip is not None and ipaddress.ip_address(ip).is_loopback
