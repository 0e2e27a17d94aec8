"""The staff console socket: live updates for a signed-in, OTP-verified staff member."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portal.staff_access import CLOSE_NOT_VERIFIED, verified_staff_user

STAFF_CONSOLE_GROUP = "staff-console"


class StaffConsoleConsumer(AsyncJsonWebsocketConsumer):
    groups = []

    async def connect(self):
        user = await verified_staff_user(self.scope)
        # Accept, then close with our code, so that the browser can tell the reason.
        await self.accept()
        if user is None:
            await self.close(code=CLOSE_NOT_VERIFIED)
            return
        self.user = user
        await self.channel_layer.group_add(STAFF_CONSOLE_GROUP, self.channel_name)
        await self.send_json({"type": "welcome", "user": user.get_username()})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(STAFF_CONSOLE_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The console socket only listens; nothing a client sends changes state here.
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def console_update(self, event):
        await self.send_json({"type": "update", "data": event.get("data", {})})
