"""Failed sign-in attempts, counted per user name and per client address in the shared cache.

Each counter is a fixed window: it starts with the first failure and expires
``SIGNIN_FAILURE_WINDOW`` seconds later. ``cache.add`` + ``cache.incr`` are atomic on Redis,
so several daphne processes count together.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

_PREFIX = "signin-failures"


def _user_key(username: str) -> str:
    # Hashed: a user name may hold characters that are not safe in a cache key.
    digest = hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()
    return f"{_PREFIX}:user:{digest}"


def _ip_key(ip: str | None) -> str:
    # Requests whose address could not be read share one counter rather than escaping it.
    return f"{_PREFIX}:ip:{ip or 'unknown'}"


def _count(key: str) -> int:
    return int(cache.get(key, 0))


def _increment(key: str) -> None:
    cache.add(key, 0, timeout=settings.SIGNIN_FAILURE_WINDOW)
    try:
        cache.incr(key)
    except ValueError:
        # The window ended between add and incr: this failure opens the next one.
        cache.add(key, 1, timeout=settings.SIGNIN_FAILURE_WINDOW)


def blocked_by(*, username: str, ip: str | None) -> str | None:
    """Which limit ("user" or "ip") is reached in the current window, if any."""
    if _count(_user_key(username)) >= settings.SIGNIN_FAILURES_PER_USER:
        return "user"
    if _count(_ip_key(ip)) >= settings.SIGNIN_FAILURES_PER_IP:
        return "ip"
    return None


def record_failure(*, username: str, ip: str | None) -> None:
    """Count one failed password or code for both the user name and the address."""
    _increment(_user_key(username))
    _increment(_ip_key(ip))


def forget_user_failures(*, username: str) -> None:
    """After a complete sign-in; the address keeps its count so that spraying stays visible."""
    cache.delete(_user_key(username))


def wait_minutes() -> int:
    """How long a blocked user waits at most, for messages."""
    return max(1, settings.SIGNIN_FAILURE_WINDOW // 60)
