"""Open staff sockets follow their sign-in: closed (4401) on sign-out, after the idle timeout,
when the account is deactivated, or when the browser session is gone.

Sign-out and the idle timeout tell the browser session's sockets at once (``staff.signed_out``
to ``staff_access.signin_group``), and ``staff_access.close_user_sockets`` all of a user's
sockets (for an action that deactivates a user or changes their roles). Every socket also
re-checks its sign-in on a timer (``STAFF_SOCKET_RECHECK_SECONDS``) and, at most once a second,
on each message it receives: that covers an account deactivated in the admin and sessions
deleted elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import import_module
from types import SimpleNamespace

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import auth
from django.contrib.sessions.backends.base import UpdateError

from portal.staff_access import (
    LAST_SEEN_SESSION_KEY,
    refusal_reason,
    signin_group,
    signin_user_group,
)

logger = logging.getLogger(__name__)

RECHECK_ON_MESSAGE_SECONDS = 1.0  # messages re-check the sign-in at most this often
TOUCH_SECONDS = 60  # a staff member's actions on a socket keep the sign-in alive, this often


def _sign_in_lapsed(session_key: str, user_id: int, permission: str | None,
                    touch: bool) -> str | None:
    """Why this browser session's sign-in no longer holds for ``user_id``; None while it does.

    Reads the session afresh: the socket's copy is from when it connected.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if str(store.get(auth.SESSION_KEY)) != str(user_id):
        return "signed out"
    user = auth.get_user(SimpleNamespace(session=store))  # None if inactive: anonymous
    if not user.is_authenticated or user.pk != user_id:
        return "account deactivated or password changed"
    reason = refusal_reason(user, store, permission)
    touch_after = min(TOUCH_SECONDS, settings.STAFF_IDLE_TIMEOUT / 4)
    if reason is None and touch and time.time() - store.get(LAST_SEEN_SESSION_KEY, 0) > (
        touch_after
    ):
        store[LAST_SEEN_SESSION_KEY] = time.time()
        try:
            store.save()
        except UpdateError:  # signed out in the meantime
            return "signed out"
    return reason


sign_in_lapsed = database_sync_to_async(_sign_in_lapsed)


class SignInWatch:
    """For a staff consumer: close the socket once its sign-in no longer holds.

    The consumer calls ``watch_sign_in`` once verified, ``stop_watching_sign_in`` in
    ``disconnect``, ``sign_in_holds`` before acting on a message, and implements
    ``sign_in_ended(reason)`` (audit and close with 4401).
    """

    permission: str | None = None

    async def watch_sign_in(self, user) -> None:
        self.watched_user_id = user.pk
        self.sign_in_checked = time.monotonic()
        self.sign_in_touch_due = False
        self.sign_in_groups = [signin_group(self.scope["session"].session_key or ""),
                               signin_user_group(user.pk)]
        for group in self.sign_in_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.sign_in_watch = asyncio.ensure_future(self._recheck_periodically())

    async def stop_watching_sign_in(self) -> None:
        watch = getattr(self, "sign_in_watch", None)
        if watch is not None:
            watch.cancel()
        for group in getattr(self, "sign_in_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def sign_in_holds(self, *, touch: bool = False) -> bool:
        """Re-check the sign-in if the last check is older than a second; False if it ended
        (the socket is closing then). ``touch``: the staff member did something here."""
        self.sign_in_touch_due = self.sign_in_touch_due or touch
        if time.monotonic() - self.sign_in_checked < RECHECK_ON_MESSAGE_SECONDS:
            return True
        return await self._recheck()

    async def _recheck(self) -> bool:
        self.sign_in_checked = time.monotonic()
        touch, self.sign_in_touch_due = self.sign_in_touch_due, False
        reason = await sign_in_lapsed(self.scope["session"].session_key or "",
                                      self.watched_user_id, self.permission, touch)
        if reason is None:
            return True
        await self.sign_in_ended(reason)
        return False

    async def _recheck_periodically(self) -> None:
        try:
            while True:
                await asyncio.sleep(settings.STAFF_SOCKET_RECHECK_SECONDS)
                if not await self._recheck():
                    return
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("staff socket: re-checking the sign-in failed")
            await self.sign_in_ended("sign-in check failed")

    async def staff_signed_out(self, event: dict) -> None:
        """From staff_access.close_staff_sockets: signed out or idle in this browser."""
        await self.sign_in_ended(event.get("reason", "signed out"))

    async def sign_in_ended(self, reason: str) -> None:
        raise NotImplementedError
