from django.urls import path

from sessions_app import views

urlpatterns = [
    path("", views.console, name="session-console"),
    path("list", views.console_list, name="session-console-list"),
    path("<str:reference>/", views.session_page, name="session-page"),
    path("<str:reference>/panel", views.session_page, {"template": views.PANEL},
         name="session-panel"),
    path("<str:reference>/key", views.issue_key, name="session-issue-key"),
    path("<str:reference>/live", views.live_viewer, name="session-live"),
    path("<str:reference>/lift-block", views.lift_key_block, name="session-lift-block"),
    *(
        path(f"<str:reference>/{name}", views.step, {"step": name}, name=f"session-{name}")
        for name in views.STEPS
    ),
]
