"""Who may see a staff page: both factors, not idle, and the permission the page needs."""

import time

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path

from audit.event_types import EventType
from portal import urls as portal_urls
from portal.staff_access import LAST_SEEN_SESSION_KEY, staff_required
from tests.personas import events, sign_in_verified

pytestmark = pytest.mark.usefixtures("english")


@staff_required(permission="portal.run_sessions")
def sessions_page(request):
    return HttpResponse("session planner")


# A test-only URL configuration: the portal plus one page that needs a permission.
urlpatterns = [path("test/sessions/", sessions_page), *portal_urls.urlpatterns]




def test_it_sends_a_visitor_to_the_login_page(client, db):
    response = client.get("/staff/")
    assert response["Location"] == "/staff/login/?next=%2Fstaff%2F"


def test_it_signs_out_after_the_idle_time(client, alice):
    sign_in_verified(client, alice)
    assert client.get("/staff/").status_code == 200
    session = client.session
    session[LAST_SEEN_SESSION_KEY] = time.time() - settings.STAFF_IDLE_TIMEOUT - 10
    session.save()

    response = client.get("/staff/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/staff/login/")
    assert "Your session ended after 15 minutes without activity." in response.content.decode()
    [expired] = events(EventType.STAFF_SESSION_EXPIRED)
    assert expired.actor_id == alice.pk
    assert client.get("/staff/")["Location"].startswith("/staff/login/")


def test_it_keeps_an_active_session(client, alice):
    sign_in_verified(client, alice)
    session = client.session
    session[LAST_SEEN_SESSION_KEY] = time.time() - settings.STAFF_IDLE_TIMEOUT + 60
    session.save()
    assert client.get("/staff/").status_code == 200
    assert not events(EventType.STAFF_SESSION_EXPIRED)


@override_settings(ROOT_URLCONF=__name__)
def test_it_refuses_a_page_without_the_permission(client, dave):
    sign_in_verified(client, dave)
    response = client.get("/test/sessions/")
    assert response.status_code == 403
    assert "session planner" not in response.content.decode()
    [denied] = events(EventType.ACCESS_DENIED)
    assert denied.actor_id == dave.pk
    assert denied.details == {"path": "/test/sessions/", "permission": "portal.run_sessions"}


@override_settings(ROOT_URLCONF=__name__)
def test_it_shows_the_page_with_the_permission(client, alice):
    sign_in_verified(client, alice)
    response = client.get("/test/sessions/")
    assert response.status_code == 200
    assert not events(EventType.ACCESS_DENIED)
