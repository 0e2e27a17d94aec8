from django.urls import path

from live.consumers import CustomerConsumer, ObserverConsumer, StaffConsumer
from sessions_app.console_socket import StaffConsoleConsumer

websocket_urlpatterns = [
    path("ws/staff/console/", StaffConsoleConsumer.as_asgi()),
    path("ws/live/customer/", CustomerConsumer.as_asgi()),
    path("ws/live/staff/<str:reference>/", StaffConsumer.as_asgi()),
    path("ws/live/observe/<str:reference>/", ObserverConsumer.as_asgi()),
]
