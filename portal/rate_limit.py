"""Requests per client address and minute on public pages, counted in the shared cache."""

from __future__ import annotations

import functools

from django.conf import settings
from django.shortcuts import render
from django.utils.translation import gettext as _

from portal import client_ip
from portal.address_buckets import bucket as address_bucket
from portal.counters import count_in_window


def allow(ip: str | None, *, limit: int, bucket: str) -> bool:
    """Count this request; False once the address (IPv6: its /64) made more than ``limit`` this
    minute."""
    return count_in_window(f"rate:{bucket}:{address_bucket(ip)}", 60).value <= limit


def customer_rate_limited(view):
    """Answer 429 to an address that asks for customer pages too often."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        ip = client_ip.of(request)
        if not allow(ip, limit=settings.CUSTOMER_REQUESTS_PER_MINUTE, bucket="customer"):
            response = render(
                request, "portal/too_many.html",
                {"message": _("Too many requests from your network. Please wait a minute.")},
                status=429,
            )
            response["Retry-After"] = "60"
            return response
        return view(request, *args, **kwargs)

    return wrapper
