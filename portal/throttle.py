"""Failed sign-in attempts, counted per user name and per client address in the shared cache.

Each counter is a fixed window: it starts with the first attempt and expires
``SIGNIN_FAILURE_WINDOW`` seconds later. An attempt is counted *before* its password or code
is checked (``claim_attempt``) and decided on the count that the atomic increment returned, so
that concurrent attempts cannot all pass a check that none of them has counted yet; an attempt
that succeeds, or that checked nothing, gives its count back (``release_attempt``). Addresses
count through ``portal.address_buckets`` (IPv6 per /64), all processes in ``portal.counters``.
"""

from __future__ import annotations

import hashlib

from django.conf import settings

from portal.address_buckets import bucket
from portal.counters import count, forget, uncount

_PREFIX = "signin-failures"


def _user_key(username: str) -> str:
    # Hashed: a user name may hold characters that are not safe in a cache key.
    digest = hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()
    return f"{_PREFIX}:user:{digest}"


def _ip_key(ip: str | None) -> str:
    return f"{_PREFIX}:ip:{bucket(ip)}"


def claim_attempt(*, username: str, ip: str | None) -> str | None:
    """Count one attempt before it is checked; the limit ("user" or "ip") it exceeds, if any.

    A refused attempt is not counted (it checks nothing). The user name is counted first and
    the address only for attempts the user name lets through, so that a burst against one user
    name neither blocks its address nor, by counts that are given back a moment later, refuses
    attempts within the limit.
    """
    window = settings.SIGNIN_FAILURE_WINDOW
    user_key, ip_key = _user_key(username), _ip_key(ip)
    if count(user_key, window) > settings.SIGNIN_FAILURES_PER_USER:
        uncount(user_key)
        return "user"
    if count(ip_key, window) > settings.SIGNIN_FAILURES_PER_IP:
        uncount(ip_key)
        uncount(user_key)
        return "ip"
    return None


def release_attempt(*, username: str, ip: str | None) -> None:
    """The claimed attempt succeeded or checked nothing: it is not a failure."""
    uncount(_user_key(username))
    uncount(_ip_key(ip))


def record_failure(*, username: str, ip: str | None) -> None:
    """A claimed attempt failed: it keeps the count its claim took, so nothing is added.

    Kept so that call sites written for the old check-then-count throttle stay correct; new
    code only claims, and releases on success.
    """


def forget_user_failures(*, username: str) -> None:
    """After a complete sign-in; the address keeps its count so that spraying stays visible."""
    forget(_user_key(username))


def wait_minutes() -> int:
    """How long a blocked user waits at most, for messages."""
    return max(1, settings.SIGNIN_FAILURE_WINDOW // 60)
