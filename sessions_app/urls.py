from django.urls import path

from sessions_app import views

urlpatterns = [
    path("", views.console, name="session-console"),
    path("list", views.console_list, name="session-console-list"),
    path("<str:reference>/", views.session_page, name="session-page"),
    path("<str:reference>/panel", views.session_panel, name="session-panel"),
    path("<str:reference>/key", views.issue_key, name="session-issue-key"),
    path("<str:reference>/admit", views.admit, name="session-admit"),
    path("<str:reference>/refuse", views.refuse, name="session-refuse"),
    path("<str:reference>/cancel", views.cancel, name="session-cancel"),
    path("<str:reference>/end", views.end, name="session-end"),
]
