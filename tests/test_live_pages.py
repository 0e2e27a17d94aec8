"""The pages around the live session: the customer's token, the staff viewer, observing."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.event_types import EventType
from consent.models import TermsVersion
from sessions_app import actions
from sessions_app.models import LiveToken
from tests.personas import events, make_staff, sign_in_verified
from tests.sessions import schedule

pytestmark = pytest.mark.usefixtures("office_open", "english_messages")


def bound_customer(user, *, admit=True):
    """A customer browser that redeemed the key and consented; the session admitted."""
    session = schedule(user)
    key, _ = actions.issue_key(session=session, by_user=user)
    browser = Client(REMOTE_ADDR="203.0.113.7")
    browser.cookies["django_language"] = "en"
    browser.post(reverse("customer-landing"), {"key": key, "name": "Erika"})
    browser.post(reverse("customer-terms"), {
        "terms_id": TermsVersion.objects.current("en").pk, "accepted_terms": "on",
        "it_permission": "on", "share_screen": "on",
    })
    session.refresh_from_db()
    if admit:
        actions.admit_customer(session=session, by_user=user)
        session.refresh_from_db()
    return session, browser


def test_the_admitted_customer_gets_a_single_use_token(alice):
    session, browser = bound_customer(alice)
    response = browser.post(reverse("customer-live-token"))
    assert response.status_code == 200
    token = response.json()["token"]
    assert len(token) >= 32 and response.json()["socket"] == "/ws/live/customer/"
    stored = LiveToken.objects.get()
    assert stored.session == session and token not in stored.token_hmac
    assert events(EventType.LIVE_TOKEN_ISSUED)[0].session_ref == session.reference


def test_no_token_before_admission_or_for_a_stranger(alice):
    session, browser = bound_customer(alice, admit=False)
    assert browser.post(reverse("customer-live-token")).status_code == 409
    stranger = Client()
    assert stranger.post(reverse("customer-live-token")).status_code == 302
    assert not LiveToken.objects.exists()


def test_the_assigned_staff_member_opens_the_live_view(client, alice):
    session, _browser = bound_customer(alice)
    sign_in_verified(client, alice)
    page = client.get(reverse("session-live", args=[session.reference]))
    assert page.status_code == 200
    assert f'data-socket="/ws/live/staff/{session.reference}/"' in page.text


def test_the_live_view_waits_for_admission(english, alice):
    session, _browser = bound_customer(alice, admit=False)
    sign_in_verified(english, alice)
    response = english.get(reverse("session-live", args=[session.reference]), follow=True)
    assert "The live view opens once the customer is admitted." in response.text


def test_a_teammate_cannot_open_the_live_view(client, alice):
    session, _browser = bound_customer(alice)
    erik = make_staff("erik", "Support staff")
    sign_in_verified(client, erik)
    assert client.get(reverse("session-live", args=[session.reference])).status_code == 403


def test_a_compliance_officer_finds_and_observes_active_sessions(client, alice, bob):
    session, _browser = bound_customer(alice)
    sign_in_verified(client, bob)
    listing = client.get(reverse("observe-list")).text
    assert session.reference in listing
    page = client.get(reverse("observe", args=[session.reference]))
    assert f'data-socket="/ws/live/observe/{session.reference}/"' in page.text
    assert client.get(reverse("observe", args=["FW-2026-999999"])).status_code == 404


def test_support_staff_cannot_observe(client, alice):
    session, _browser = bound_customer(alice)
    sign_in_verified(client, alice)
    assert client.get(reverse("observe-list")).status_code == 403
