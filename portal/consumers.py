"""The staff console socket: live updates for a signed-in, OTP-verified staff member."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portal.staff_access import CLOSE_NOT_VERIFIED, verified_staff_user
from sessions_app.live import staff_group, team_group


@database_sync_to_async
def _groups_of(user) -> list[str]:
    """The staff member's own group and their teams' groups: updates for sessions they see."""
    teams = user.support_teams.values_list("pk", flat=True)
    return [staff_group(user.pk), *(team_group(pk) for pk in teams)]


class StaffConsoleConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = await verified_staff_user(self.scope)
        # Accept, then close with our code, so that the browser can tell the reason.
        await self.accept()
        if user is None:
            await self.close(code=CLOSE_NOT_VERIFIED)
            return
        self.user = user
        self.joined = await _groups_of(user)
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"type": "welcome", "user": user.get_username()})

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The console socket only listens; nothing a client sends changes state here.
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def console_update(self, event):
        await self.send_json({"type": "update", "data": event.get("data", {})})
