"""Wrong session keys, counted per address and across all addresses in the shared cache.

Per address: a fixed window of ``KEY_FAILURE_WINDOW`` seconds that starts with the first wrong
key; at ``KEY_FAILURES_PER_IP`` the address is blocked until the window ends. Globally: one
counter per calendar minute; the failure that reaches ``KEY_FAILURE_ALARM_PER_MINUTE`` writes
one alarm event. ``cache.add`` + ``cache.incr`` are atomic on Redis, so all daphne processes
count together.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from audit.event_types import EventType
from audit.events import Actor, record

_PREFIX = "key-failures"


def _ip_key(ip: str | None) -> str:
    # Requests whose address could not be read share one counter rather than escaping it.
    return f"{_PREFIX}:ip:{ip or 'unknown'}"


def _incr(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr: this failure opens the next
        cache.add(key, 1, timeout=timeout)
        return 1


def is_blocked(ip: str | None) -> bool:
    return int(cache.get(_ip_key(ip), 0)) >= settings.KEY_FAILURES_PER_IP


def record_failure(ip: str | None) -> None:
    """Count one wrong key for the address and globally; raise the alarm once per minute."""
    _incr(_ip_key(ip), settings.KEY_FAILURE_WINDOW)
    minute = int(time.time() // 60)
    failures = _incr(f"{_PREFIX}:global:{minute}", 120)
    if failures == settings.KEY_FAILURE_ALARM_PER_MINUTE:
        with transaction.atomic():
            record(
                event_type=EventType.KEY_GUESSING_ALARM, actor=Actor.system("key throttle"),
                ip=ip, details={"failures_this_minute": failures,
                                "threshold": settings.KEY_FAILURE_ALARM_PER_MINUTE},
            )


def wait_minutes() -> int:
    return max(1, settings.KEY_FAILURE_WINDOW // 60)
