from django.urls import path

from portal.consumers import StaffConsoleConsumer
from sessions_app.consumers import CustomerConsumer, ObserverConsumer, StaffConsumer

websocket_urlpatterns = [
    path("ws/staff/console/", StaffConsoleConsumer.as_asgi()),
    path("ws/live/customer/", CustomerConsumer.as_asgi()),
    path("ws/live/staff/<str:reference>/", StaffConsumer.as_asgi()),
    path("ws/live/observe/<str:reference>/", ObserverConsumer.as_asgi()),
]
