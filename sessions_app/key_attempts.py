"""Wrong session keys, counted per address and across all addresses in the shared cache.

Every key is counted *before* it is checked (``claim``), on the value the atomic increment
returned, so concurrent guesses cannot all pass a check none of them has counted yet; a key
that opens its session (or is not tried, outside opening hours) gives its count back.

- Per address (IPv6: per /64, ``portal.address_buckets``): a fixed window of
  ``KEY_FAILURE_WINDOW`` seconds from the first wrong key; past ``KEY_FAILURES_PER_IP`` the
  address is refused until the window ends.
- Globally: past ``KEY_FAILURES_GLOBAL`` wrong keys from all addresses within one
  ``KEY_GLOBAL_WINDOW`` (fixed windows on the clock), key entry stops for everyone until the
  window ends (``security.key_entry_blocked_globally``): however many addresses guess, at most
  ``KEY_FAILURES_GLOBAL`` wrong keys are checked per window. The
  ``KEY_FAILURE_ALARM_PER_MINUTE``-th wrong key of a calendar minute writes
  ``security.key_guessing_alarm``.
- A refused browser is shown a help code. Its customer reads it to the adviser, who lifts the
  block for their session (``sessions_app.actions.lift_key_block``): that browser alone may then
  try ``KEY_BLOCK_LIFT_TRIES`` keys past the blocks, and only its session's key opens anything.

Every count is a ``portal.counters`` counter, shared by all daphne processes.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from audit.event_types import EventType
from audit.events import Actor, record
from portal.address_buckets import bucket as address_bucket
from portal.counters import (
    count,
    count_in_window,
    forget,
    seconds_left_in_window,
    uncount,
    value_in_window,
)

_PREFIX = "key-failures"
_GLOBAL = f"{_PREFIX}:global"  # wrong keys from all addresses, per KEY_GLOBAL_WINDOW
_GLOBAL_BLOCK = f"{_PREFIX}:global-block"  # counted once: key entry stops for everyone
KEY_BLOCK_LIFT_TRIES = 3  # keys a lifted browser may try past the blocks
HELP_CODE_DIGITS = 6
HELP_CODE_LIFETIME = 60 * 60  # a help code on a customer's screen stays valid this long


class Refusal(enum.StrEnum):
    ADDRESS = "address"
    GLOBAL = "global"


def _address_key(bucket: str) -> str:
    return f"{_PREFIX}:ip:{bucket}"


@dataclass
class Attempt:
    """One key entry, counted before its check; tell it how the check went."""

    ip: str | None
    bucket: str
    refused: Refusal | None = None
    counted: tuple[str, ...] = ()  # the counters that hold this attempt
    only_session: int | None = None  # let past a block by a lift: only this session's key
    help_code: str | None = None

    def succeeded(self) -> None:
        """The key opened its session: it is not a wrong key."""
        self.not_tried()
        if self.only_session is not None:
            cache.delete(_lift_key(self.help_code))
            forget(_lift_tries_key(self.help_code))

    def not_tried(self) -> None:
        """The key was not checked (outside opening hours): give the count back."""
        for key in self.counted:
            uncount(key)
        self.counted = ()

    def failed(self) -> None:
        """A wrong key: it stays counted; past a block (by a lift) it counts all the same."""
        if self.only_session is not None:
            count(_address_key(self.bucket), settings.KEY_FAILURE_WINDOW)
            count_in_window(_GLOBAL, settings.KEY_GLOBAL_WINDOW)
        failures = count_in_window(f"{_PREFIX}:minute", 60).value
        if failures == settings.KEY_FAILURE_ALARM_PER_MINUTE:
            record(
                event_type=EventType.KEY_GUESSING_ALARM, actor=Actor.system("key throttle"),
                ip=self.ip, details={"failures_this_minute": failures,
                                     "threshold": settings.KEY_FAILURE_ALARM_PER_MINUTE},
            )


def claim(ip: str | None, *, help_code: str | None = None) -> Attempt:
    """Count one key entry before it is checked; ``refused`` says which limit stops it."""
    bucket = address_bucket(ip)
    if is_blocked_globally():
        refused = Refusal.GLOBAL
    else:
        refused, counted = _count_against_limits(bucket, ip)
        if refused is None:
            return Attempt(ip, bucket, counted=counted)
    lifted = _lifted_session(help_code)
    if lifted is not None:
        # Counted first as well: a lifted browser gets a few tries, not an open door.
        tries = count(_lift_tries_key(help_code), settings.KEY_BLOCK_LIFT)
        if tries <= KEY_BLOCK_LIFT_TRIES:
            return Attempt(ip, bucket, only_session=lifted, help_code=help_code)
    return Attempt(ip, bucket, refused=refused)


def _count_against_limits(bucket: str, ip: str | None) -> tuple[Refusal | None, tuple[str, ...]]:
    """The address first, and everyone only for keys the address lets through, so that a burst
    from one address is not also counted (and refused) globally."""
    address = _address_key(bucket)
    if count(address, settings.KEY_FAILURE_WINDOW) > settings.KEY_FAILURES_PER_IP:
        uncount(address)  # a refused key checks nothing: it is not counted
        return Refusal.ADDRESS, ()
    everyone = count_in_window(_GLOBAL, settings.KEY_GLOBAL_WINDOW)
    if everyone.value > settings.KEY_FAILURES_GLOBAL:
        uncount(address)
        uncount(everyone.key)
        _block_globally(ip, failures=everyone.value - 1)
        return Refusal.GLOBAL, ()
    return None, (address, everyone.key)


def _block_globally(ip: str | None, *, failures: int) -> None:
    # Of all the requests that find the threshold passed, the one that sets the block audits it.
    if count_in_window(_GLOBAL_BLOCK, settings.KEY_GLOBAL_WINDOW).value != 1:
        return
    record(
        event_type=EventType.KEY_ENTRY_BLOCKED_GLOBALLY, actor=Actor.system("key throttle"),
        ip=ip, details={
            "failures_in_window": failures,
            "threshold": settings.KEY_FAILURES_GLOBAL,
            "window_minutes": settings.KEY_GLOBAL_WINDOW // 60,
            "blocked_seconds": seconds_left_in_window(settings.KEY_GLOBAL_WINDOW),
        },
    )


def is_blocked_globally() -> bool:
    return value_in_window(_GLOBAL_BLOCK, settings.KEY_GLOBAL_WINDOW) > 0


def should_audit_refusal(attempt: Attempt) -> bool:
    """At most one ``key.redemption_throttled`` per address and minute: a flood of refused
    guesses must not become a flood of writes to the audit chain."""
    return count_in_window(f"{_PREFIX}:refusal-noted:{attempt.bucket}", 60).value == 1


def wait_minutes(refused: Refusal | None = Refusal.ADDRESS) -> int:
    """How long a refused customer waits at most, for messages."""
    global_block = refused == Refusal.GLOBAL
    seconds = (seconds_left_in_window(settings.KEY_GLOBAL_WINDOW) if global_block
               else settings.KEY_FAILURE_WINDOW)
    return max(1, seconds // 60)


# --- Help codes and lifts ---------------------------------------------------------------------


def _help_key(code: str) -> str:
    return f"{_PREFIX}:help:{code}"


def _lift_key(code: str | None) -> str:
    return f"{_PREFIX}:lift:{code}"


def _lift_tries_key(code: str | None) -> str:
    return f"{_PREFIX}:lift-tries:{code}"


def help_code(current: str | None, ip: str | None) -> str:
    """The refused browser's help code: ``current`` while it is valid, else a new one."""
    if current and cache.get(_help_key(current)) is not None:
        return current
    while True:  # unique among the codes on screens now; a handful of draws at most
        code = f"{secrets.randbelow(10**HELP_CODE_DIGITS):0{HELP_CODE_DIGITS}d}"
        if cache.add(_help_key(code), ip or "", timeout=HELP_CODE_LIFETIME):
            return code


def grouped_help_code(code: str) -> str:
    return f"{code[:3]} {code[3:]}"


def normalised_help_code(typed: str) -> str | None:
    digits = re.sub(r"\D", "", typed or "", flags=re.ASCII)
    return digits if len(digits) == HELP_CODE_DIGITS else None


def help_code_address(code: str) -> str | None:
    """The address of the browser a help code was shown to; None if no screen shows it."""
    return cache.get(_help_key(code))


def lift(code: str, *, session_id: int) -> None:
    """Let the browser that shows ``code`` try keys of this session past the blocks."""
    cache.set(_lift_key(code), session_id, timeout=settings.KEY_BLOCK_LIFT)
    forget(_lift_tries_key(code))


def _lifted_session(code: str | None) -> int | None:
    return cache.get(_lift_key(code)) if code else None
