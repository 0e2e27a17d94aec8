from django.urls import path

from portal.consumers import StaffConsoleConsumer

websocket_urlpatterns = [
    path("ws/staff/console/", StaffConsoleConsumer.as_asgi()),
]
