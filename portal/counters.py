"""Counters in the shared cache, for every limit: count first, then decide.

``count`` returns the value after its own increment, so that of many concurrent requests
exactly the first ``limit`` see a value within the limit. ``cache.add`` and ``cache.incr`` are
atomic on Redis, so all daphne processes count together.

Two kinds of window: a counter's own window starts with its first count (``count``); a clock
window (``count_in_window``) has the same edges in every process, so that counts of many
addresses, or of one minute, add up in one counter.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from django.core.cache import cache

# A clock window's counter outlives its window by this much, so that a count made just before
# the edge still finds its counter when it is taken back.
WINDOW_SLACK_SECONDS = 60


class Counted(NamedTuple):
    value: int  # the count after this one
    key: str  # the counter that holds it, for ``uncount``


def count(key: str, timeout: int, *, by: int = 1) -> int:
    """Add ``by`` to the counter (its window starts with its first count); return the value."""
    cache.add(key, 0, timeout=timeout)
    try:
        value = cache.incr(key, by)
    except ValueError:
        # The window ended between add and incr: this count opens the next one.
        cache.add(key, by, timeout=timeout)
        return by
    if value == by:
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


def forget(key: str) -> None:
    """Start the counter afresh."""
    cache.delete(key)


def _window_key(name: str, seconds: int) -> str:
    return f"{name}:{int(time.time() // seconds)}"


def count_in_window(name: str, seconds: int) -> Counted:
    """Count in the current clock window of ``seconds`` (a minute: ``seconds=60``)."""
    key = _window_key(name, seconds)
    return Counted(count(key, seconds + WINDOW_SLACK_SECONDS), key)


def value_in_window(name: str, seconds: int) -> int:
    """The count so far in the current clock window of ``seconds``."""
    return cache.get(_window_key(name, seconds)) or 0


def seconds_left_in_window(seconds: int) -> int:
    """Until the current clock window of ``seconds`` ends (at least 1)."""
    return max(1, int(seconds - time.time() % seconds))
