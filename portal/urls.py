from django.contrib import admin
from django.urls import include, path

from portal import signin, views
from sessions_app import views as sessions_views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("staff/", views.staff_home, name="staff-home"),
    path("staff/", include(signin.urlpatterns)),
    path("staff/sessions/", include("sessions_app.urls")),
    path("staff/observe/", sessions_views.observe_list, name="observe-list"),
    path("staff/observe/<str:reference>/", sessions_views.observe, name="observe"),
    path("admin/", admin.site.urls),
    path("", include("consent.urls")),
]
