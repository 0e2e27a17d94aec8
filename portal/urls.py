from django.contrib import admin
from django.urls import include, path

from portal import signin, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("staff/", views.staff_home, name="staff-home"),
    path("staff/", include(signin.urlpatterns)),
    path("staff/sessions/", include("sessions_app.urls")),
    path("admin/", admin.site.urls),
    path("", include("consent.urls")),
]
