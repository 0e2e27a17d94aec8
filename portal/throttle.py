"""Failed sign-in attempts, counted per user name and per client address in the shared cache.

Each counter is a fixed window: it starts with the first attempt and expires
``SIGNIN_FAILURE_WINDOW`` seconds later. An attempt is counted *before* its password or code
is checked (``claim_attempt``) and decided on the count that the atomic increment returned, so
that concurrent attempts cannot all pass a check that none of them has counted yet; an attempt
that succeeds, or that checked nothing, gives its count back (``release_attempt``). Addresses
count through ``portal.address_buckets`` (IPv6 per /64). ``cache.incr`` is atomic on Redis, so
several daphne processes count together.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from portal.address_buckets import bucket
from portal.counters import count, uncount

_PREFIX = "signin-failures"


def _user_key(username: str) -> str:
    # Hashed: a user name may hold characters that are not safe in a cache key.
    digest = hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()
    return f"{_PREFIX}:user:{digest}"


def _ip_key(ip: str | None) -> str:
    return f"{_PREFIX}:ip:{bucket(ip)}"


def claim_attempt(*, username: str, ip: str | None) -> str | None:
    """Count one attempt before it is checked; the limit ("user" or "ip") it exceeds, if any.

    A refused attempt is not counted (it checks nothing), so a blocked user name does not push
    its address over the address limit.
    """
    window = settings.SIGNIN_FAILURE_WINDOW
    user_count = count(_user_key(username), window)
    ip_count = count(_ip_key(ip), window)
    limit = None
    if user_count > settings.SIGNIN_FAILURES_PER_USER:
        limit = "user"
    elif ip_count > settings.SIGNIN_FAILURES_PER_IP:
        limit = "ip"
    if limit is not None:
        release_attempt(username=username, ip=ip)
    return limit


def release_attempt(*, username: str, ip: str | None) -> None:
    """The claimed attempt succeeded or checked nothing: it is not a failure."""
    uncount(_user_key(username))
    uncount(_ip_key(ip))


def forget_user_failures(*, username: str) -> None:
    """After a complete sign-in; the address keeps its count so that spraying stays visible."""
    cache.delete(_user_key(username))


def wait_minutes() -> int:
    """How long a blocked user waits at most, for messages."""
    return max(1, settings.SIGNIN_FAILURE_WINDOW // 60)
