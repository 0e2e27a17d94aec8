"""Fixed-window counters in the shared cache, for every limit: count first, then decide.

``count`` returns the value after its own increment, so that of many concurrent requests
exactly the first ``limit`` see a value within the limit. ``cache.add`` and ``cache.incr`` are
atomic on Redis, so all daphne processes count together.
"""

from __future__ import annotations

from django.core.cache import cache


def count(key: str, timeout: int) -> int:
    """Add one to the counter (its window starts with its first count) and return the value."""
    cache.add(key, 0, timeout=timeout)
    try:
        value = cache.incr(key)
    except ValueError:
        # The window ended between add and incr: this count opens the next one.
        cache.add(key, 1, timeout=timeout)
        return 1
    if value == 1:
        # Redis' INCR creates a key without expiry if it vanished after Django's existence
        # check; the first count of a window makes sure that window ends.
        cache.touch(key, timeout)
    return value


def uncount(key: str) -> None:
    """Take one back (a count that turned out not to matter); its window may be over."""
    try:
        cache.decr(key)
    except ValueError:
        pass
