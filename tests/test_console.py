"""The staff console: schedule, issue a key, admit or refuse, cancel and end, from the pages."""

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse

from audit.chain import verify_chain
from audit.event_types import EventType
from sessions_app import keys
from sessions_app.models import (
    ClosedDay,
    EndReason,
    KeyState,
    SessionKey,
    SessionState,
    SupportSession,
    Team,
)
from tests.personas import events, make_staff, sign_in_password_only, sign_in_verified
from tests.sessions import schedule, waiting_customer

pytestmark = pytest.mark.usefixtures("office_open")

CONSOLE = reverse("session-console")
KEY_DIGITS = re.compile(r'<p class="key-digits"[^>]*>(\d{3} \d{4})</p>')


def page(session, name="session-page"):
    return reverse(name, args=[session.reference])


def slot_form(**overrides):
    """The schedule form as a staff member fills it in: Wednesday 2 December, 10:30."""
    data = {
        "customer_name": "Muster GmbH",
        "call_note": "Call 10:02, ticket 4711",
        "day": "2026-12-02",
        "start": "10:30",
        "duration": "30",
    }
    data.update(overrides)
    return data


@pytest.fixture
def alice_in(english, alice):
    sign_in_verified(english, alice)
    return english


# --- Who may use it --------------------------------------------------------------------------


def test_support_staff_see_their_console_in_german_by_default(client, alice):
    sign_in_verified(client, alice)
    response = client.get(CONSOLE)
    assert response.status_code == 200
    assert "Fernwartungssitzungen" in response.text
    assert "Sitzung nach einem Telefonat planen" in response.text


@pytest.mark.parametrize("persona", ["bob", "carol", "dave"])
def test_staff_without_the_support_role_are_refused_and_audited(client, persona, request):
    user = request.getfixturevalue(persona)
    sign_in_verified(client, user)
    assert client.get(CONSOLE).status_code == 403
    denied = events(EventType.ACCESS_DENIED)
    assert denied[-1].actor_label == persona
    assert denied[-1].details["permission"] == "portal.run_sessions"


def test_a_compliance_officer_cannot_issue_a_key(client, alice, bob):
    session = schedule(alice)
    sign_in_verified(client, bob)
    response = client.post(page(session, "session-issue-key"), {"lifetime": 15})
    assert response.status_code == 403
    assert not SessionKey.objects.exists()


def test_password_only_is_sent_to_the_second_factor(client, alice):
    sign_in_password_only(client, alice)
    response = client.get(CONSOLE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff-login-otp"))


# --- Scheduling ------------------------------------------------------------------------------


def test_it_schedules_a_session_and_shows_its_page(alice_in, alice):
    response = alice_in.post(CONSOLE, slot_form())
    session = SupportSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == page(session)
    assert session.assigned_to == alice
    assert session.slot_start.isoformat() == "2026-12-02T09:30:00+00:00"
    assert session.slot_end - session.slot_start == timedelta(minutes=30)
    shown = alice_in.get(page(session)).text
    assert session.reference in shown and "Muster GmbH" in shown and "Issue key" in shown
    assert events(EventType.SESSION_SCHEDULED)[0].details["call_note"] == "Call 10:02, ticket 4711"


def test_it_schedules_for_a_colleague(alice_in, db):
    erik = make_staff("erik", "Support staff")
    alice_in.post(CONSOLE, slot_form(assigned_to=erik.pk))
    assert SupportSession.objects.get().assigned_to == erik


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"day": "2026-12-03", "start": "07:00"}, "Outside opening hours. The service opens "
                                                  "next on Thursday, 3. December 2026, 08:00."),
        ({"start": "17:45"}, "The slot runs past closing time: it must end by 18:00. The "
                             "service opens next on Thursday, 3. December 2026, 08:00."),
        ({"day": "2026-12-25"}, "Outside opening hours. The service opens next on Monday, "
                                "28. December 2026, 08:00."),
        ({"day": "2026-12-01"}, "The slot lies in the past."),
        ({"call_note": "   "}, "This field is required."),
        ({"customer_name": ""}, "This field is required."),
        ({"day": "2.12.2026x"}, "Enter a valid date."),
        ({"duration": "600"}, "Select a valid choice."),
    ],
)
def test_a_bad_slot_gets_a_clear_error_and_nothing_is_saved(alice_in, fields, message):
    response = alice_in.post(CONSOLE, slot_form(**fields))
    assert response.status_code == 400
    assert message in response.text
    assert not SupportSession.objects.exists()
    assert not events(EventType.SESSION_SCHEDULED)


def test_a_closed_day_entered_by_an_administrator_is_refused(alice_in):
    ClosedDay.objects.create(date=date(2026, 12, 3), reason="Betriebsversammlung")
    response = alice_in.post(CONSOLE, slot_form(day="2026-12-03"))
    assert response.status_code == 400
    assert "Friday, 4. December 2026, 08:00" in response.text


def test_overlapping_slots_are_refused(alice_in):
    assert alice_in.post(CONSOLE, slot_form()).status_code == 302
    response = alice_in.post(CONSOLE, slot_form(start="10:45", customer_name="Other AG"))
    assert response.status_code == 400
    assert "This overlaps session FW-2026-" in response.text
    assert SupportSession.objects.count() == 1


def test_the_console_lists_mine_and_the_teams_sessions(alice_in, alice):
    erik = make_staff("erik", "Support staff")
    mine = schedule(alice, customer_name="Mine GmbH")
    theirs = schedule(erik, customer_name="Theirs AG")
    response = alice_in.get(CONSOLE)
    mine_part, team_part = response.text.split("The team's sessions")
    assert mine.reference in mine_part and theirs.reference not in mine_part
    assert theirs.reference in team_part
    assert alice_in.get(reverse("session-console-list")).text.count('<tr class="state-') == 2


# --- Keys ------------------------------------------------------------------------------------


def test_issuing_shows_the_key_once_in_large_digits(alice_in, alice):
    session = schedule(alice)
    response = alice_in.post(page(session, "session-issue-key"), {"lifetime": 10})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = KEY_DIGITS.search(response.text).group(1)
    key = SessionKey.objects.get()
    assert key.key_hmac == keys.key_hmac(shown.replace(" ", ""))
    assert key.lifetime_minutes == 10
    # Nowhere else: not on the page, not in the live panel.
    for url in (page(session), page(session, "session-panel")):
        assert shown not in alice_in.get(url).text
        assert shown.replace(" ", "") not in alice_in.get(url).text


def test_a_double_clicked_issue_leaves_one_live_key_the_one_shown_last(alice_in, alice):
    session = schedule(alice)
    first = alice_in.post(page(session, "session-issue-key"), {"lifetime": 15})
    second = alice_in.post(page(session, "session-issue-key"), {"lifetime": 15})
    live = SessionKey.objects.get(state=KeyState.LIVE)
    assert live.key_hmac == keys.key_hmac(KEY_DIGITS.search(second.text).group(1).replace(" ", ""))
    assert SessionKey.objects.get(state=KeyState.REVOKED).key_hmac == keys.key_hmac(
        KEY_DIGITS.search(first.text).group(1).replace(" ", "")
    )


@pytest.mark.parametrize("lifetime", ["0", "61", "abc", ""])
def test_a_bad_lifetime_is_refused(alice_in, alice, lifetime):
    session = schedule(alice)
    response = alice_in.post(page(session, "session-issue-key"), {"lifetime": lifetime})
    assert response.status_code == 400
    assert not SessionKey.objects.exists()
    assert 'class="key-digits"' not in response.text


def test_no_key_for_a_cancelled_session(alice_in, alice):
    session = schedule(alice)
    alice_in.post(page(session, "session-cancel"))
    response = alice_in.post(page(session, "session-issue-key"), {"lifetime": 15})
    assert response.status_code == 400
    assert "is “Cancelled” and cannot become “Key issued”" in response.text
    assert not SessionKey.objects.exists()


def test_cancelling_kills_the_key(alice_in, alice):
    session = schedule(alice)
    alice_in.post(page(session, "session-issue-key"), {"lifetime": 15})
    response = alice_in.post(page(session, "session-cancel"), follow=True)
    assert "The session is cancelled; its key no longer works." in response.text
    assert SessionKey.objects.get().state == KeyState.REVOKED
    session.refresh_from_db()
    assert session.state == SessionState.CANCELLED


# --- Other staff's sessions and forged references --------------------------------------------


def test_another_teams_session_is_a_404_and_audited(alice_in, alice):
    erik = make_staff("erik", "Support staff")
    Team.objects.create(name="Firmenkunden").members.add(alice)
    Team.objects.create(name="Privatkunden").members.add(erik)
    theirs = schedule(erik)
    for url in (page(theirs), page(theirs, "session-panel")):
        assert alice_in.get(url).status_code == 404
    assert alice_in.post(page(theirs, "session-issue-key"), {"lifetime": 15}).status_code == 404
    assert theirs.reference not in alice_in.get(CONSOLE).text
    denied = events(EventType.SESSION_ACCESS_DENIED)
    assert len(denied) == 3 and denied[0].session_ref == theirs.reference
    assert not SessionKey.objects.exists()


def test_a_forged_reference_is_a_404_and_audited(alice_in):
    assert alice_in.get("/staff/sessions/FW-2026-999999/").status_code == 404
    assert alice_in.post("/staff/sessions/1%20OR%201=1/admit").status_code == 404
    assert [e.session_ref for e in events(EventType.SESSION_ACCESS_DENIED)] == [
        "FW-2026-999999", "1 OR 1=1",
    ]


def test_a_teammate_sees_the_session_but_cannot_run_it(alice_in, alice):
    erik = make_staff("erik", "Support staff")
    theirs = waiting_customer(erik)
    response = alice_in.get(page(theirs))
    assert response.status_code == 200
    assert "Admit customer" not in response.text
    assert "Only erik, who is assigned to this session, can run it." in response.text
    assert alice_in.post(page(theirs, "session-admit")).status_code == 403
    assert alice_in.post(page(theirs, "session-issue-key"), {"lifetime": 5}).status_code == 403
    theirs.refresh_from_db()
    assert theirs.state == SessionState.CUSTOMER_WAITING
    assert events(EventType.SESSION_ACCESS_DENIED)[-1].details["reason"] == (
        "not the assigned staff member"
    )


def test_changes_need_a_post(alice_in, alice):
    session = waiting_customer(alice)
    assert alice_in.get(page(session, "session-admit")).status_code == 405
    session.refresh_from_db()
    assert session.state == SessionState.CUSTOMER_WAITING


# --- Admission -------------------------------------------------------------------------------


def test_the_panel_shows_who_entered_the_key_and_from_where(alice_in, alice):
    session = waiting_customer(alice)
    panel = alice_in.get(page(session, "session-panel")).text
    assert 'data-state="customer_waiting"' in panel
    assert "Erika Muster" in panel and "203.0.113.5" in panel and "Firefox" in panel
    assert "Admit customer" in panel and "Refuse" in panel


def test_admitting_makes_the_session_active(alice_in, alice):
    session = waiting_customer(alice)
    response = alice_in.post(page(session, "session-admit"), follow=True)
    assert "The customer is admitted." in response.text
    session.refresh_from_db()
    assert session.state == SessionState.ACTIVE
    assert events(EventType.CUSTOMER_ADMITTED)[0].actor_label == "alice"


def test_admitting_twice_says_why_not(alice_in, alice):
    session = waiting_customer(alice)
    alice_in.post(page(session, "session-admit"))
    response = alice_in.post(page(session, "session-admit"), follow=True)
    assert "is “Active” and cannot become “Active”" in response.text
    assert len(events(EventType.CUSTOMER_ADMITTED)) == 1


def test_refusing_turns_the_customer_away(alice_in, alice):
    session = waiting_customer(alice)
    alice_in.post(page(session, "session-refuse"))
    session.refresh_from_db()
    assert (session.state, session.end_reason) == (SessionState.REFUSED, EndReason.REFUSED)


def test_the_staff_member_ends_an_active_session(alice_in, alice):
    session = waiting_customer(alice)
    alice_in.post(page(session, "session-admit"))
    response = alice_in.post(page(session, "session-end"), follow=True)
    assert "The session has ended." in response.text
    session.refresh_from_db()
    assert (session.state, session.end_reason) == (SessionState.ENDED, EndReason.STAFF_ENDED)
    assert "Staff member ended the session" in response.text


def test_the_whole_story_from_the_pages_is_in_the_history_and_the_chain(alice_in, alice):
    alice_in.post(CONSOLE, slot_form())
    session = SupportSession.objects.get()
    alice_in.post(page(session, "session-issue-key"), {"lifetime": 15})
    history = alice_in.get(page(session)).text
    assert "Session scheduled" in history and "Session key issued" in history
    assert verify_chain().intact
