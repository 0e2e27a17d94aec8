"""Staff sign-in views: password, then second factor (placeholder until implemented)."""

from django.urls import path

urlpatterns: list = [
    path("login/", lambda r: None, name="staff-login"),
    path("login/code/", lambda r: None, name="staff-login-otp"),
    path("logout/", lambda r: None, name="staff-logout"),
]
