"""The staff console socket: live updates for a signed-in, OTP-verified staff member."""

import json
import logging

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portal.staff_access import CLOSE_NOT_VERIFIED, audit_socket_refusal, verified_staff_user
from portal.staff_sockets import SignInWatch
from sessions_app.live import staff_group, team_group

CLOSE_BAD_MESSAGE = 4422  # as on the live sockets (sessions_app.protocol)
MAX_MESSAGE_CHARS = 1000  # the console socket only ever hears a ping

logger = logging.getLogger(__name__)


@database_sync_to_async
def _groups_of(user) -> list[str]:
    """The staff member's own group and their teams' groups: updates for sessions they see."""
    teams = user.support_teams.values_list("pk", flat=True)
    return [staff_group(user.pk), *(team_group(pk) for pk in teams)]


class StaffConsoleConsumer(SignInWatch, AsyncJsonWebsocketConsumer):
    closing = False
    user = None

    async def dispatch(self, message):
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception as error:
            # Nothing may escape (Channels would close with 1011 and skip ``disconnect``).
            logger.error("console socket: %s while handling %s", type(error).__name__,
                         message.get("type"), exc_info=error)
            if message.get("type") == "websocket.disconnect":
                raise StopConsumer() from None
            await self.close_with(CLOSE_BAD_MESSAGE, f"unexpected {type(error).__name__}")

    async def connect(self):
        user = await verified_staff_user(self.scope)
        # Accept, then close with our code, so that the browser can tell the reason.
        await self.accept()
        if user is None:
            self.closing = True
            await self.close(code=CLOSE_NOT_VERIFIED)
            return
        self.user = user
        self.joined = await _groups_of(user)
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.watch_sign_in(user)
        await self.send_json({"type": "welcome", "user": user.get_username()})

    async def disconnect(self, code):
        await self.stop_watching_sign_in()
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.closing or self.user is None:
            return
        try:
            content = json.loads(text_data) if text_data and len(text_data) <= (
                MAX_MESSAGE_CHARS) else None
        except (ValueError, RecursionError):
            content = None
        if not isinstance(content, dict):
            await self.close_with(CLOSE_BAD_MESSAGE, "bad message")
            return
        if await self.sign_in_holds():
            await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        # The console socket only listens; nothing a client sends changes state here.
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def console_update(self, event):
        if not self.closing:
            await self.send_json({"type": "update", "data": event.get("data", {})})

    async def sign_in_ended(self, reason: str) -> None:
        await self.close_with(CLOSE_NOT_VERIFIED, f"sign-in ended: {reason}")

    async def close_with(self, code: int, reason: str) -> None:
        """Close with ``code``, audited; nothing more goes out on this socket."""
        if self.closing:
            return
        self.closing = True
        try:
            await database_sync_to_async(audit_socket_refusal)(self.scope, self.user, reason)
        finally:
            await self.close(code=code)
