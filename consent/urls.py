from django.urls import path

from consent import views

urlpatterns = [
    path("", views.landing, name="customer-landing"),
    path("session/", views.adviser, name="customer-adviser"),
    path("session/terms", views.terms, name="customer-terms"),
    path("session/wait", views.wait, name="customer-wait"),
    path("session/status", views.status, name="customer-status"),
    path("session/live-token", views.live_token, name="customer-live-token"),
    path("session/end", views.end, name="customer-end"),
    path("session/ended", views.ended, name="customer-ended"),
    path("session/receipt", views.receipt, name="customer-receipt"),
]
