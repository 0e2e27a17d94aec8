"""The customer's way through the public pages: key, adviser check, terms, consent, waiting,
admission, "End session" and the receipt."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.chain import verify_chain
from audit.event_types import EventType
from consent.models import ConsentAcceptance, ConsentEvent, ConsentEventKind, TermsVersion
from sessions_app import actions
from sessions_app.models import EndReason, KeyState, SessionKey, SessionState
from tests.personas import events
from tests.sessions import schedule

pytestmark = pytest.mark.usefixtures("office_open", "english_messages")

LANDING = reverse("customer-landing")
ALL_BOXES = {"accepted_terms": "on", "it_permission": "on", "share_screen": "on"}


def english_browser(ip="203.0.113.7"):
    """A customer's browser, in English so that tests read like the code."""
    browser = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT="Firefox 140")
    browser.cookies["django_language"] = "en"
    return browser


@pytest.fixture
def customer():
    return english_browser()


@pytest.fixture
def keyed(alice):
    """A session with a freshly issued key: (session, key as read out)."""
    session = schedule(alice)
    key, _ = actions.issue_key(session=session, by_user=alice)
    return session, f"{key[:3]} {key[3:]}"


def enter(browser, key, name="Erika Muster"):
    return browser.post(LANDING, {"key": key, "name": name})


def current_terms(language="en"):
    return TermsVersion.objects.current(language)


def consent(browser, **boxes):
    data = {"terms_id": current_terms().pk, **(boxes or ALL_BOXES)}
    return browser.post(reverse("customer-terms"), data)


# --- Landing and key --------------------------------------------------------------------------


def test_the_landing_page_explains_and_shows_the_hours_in_german_by_default(db):
    page = Client().get(LANDING).text
    assert '<html lang="de">' in page
    assert "Fernwartung" in page and "Montag–Freitag: 08:00–18:00" in page
    assert "Sitzungsschlüssel" in page


def test_the_landing_page_in_english_says_whether_it_is_open(customer, db):
    page = customer.get(LANDING).text
    assert "Monday–Friday: 08:00–18:00" in page
    assert "Remote support is available now." in page


def test_a_correct_key_shows_the_adviser_and_the_reference(customer, keyed, alice):
    session, key = keyed
    response = enter(customer, key)
    assert response.status_code == 302 and response["Location"] == reverse("customer-adviser")
    page = customer.get(reverse("customer-adviser")).text
    assert session.reference in page
    assert "Is this the person you are speaking to?" in page
    session.refresh_from_db()
    assert session.state == SessionState.CUSTOMER_WAITING
    assert session.customer_entered_name == "Erika Muster"
    assert session.customer_ip == "203.0.113.7"


@pytest.mark.parametrize(
    "grouping",
    [
        lambda d: d,  # 1177623
        lambda d: f"{d[:3]} {d[3:]}",  # 117 7623, as read out
        lambda d: f"{d[:3]}-{d[3:]}",
        lambda d: f" {d[:3]} {d[3:]} ",
        lambda d: f"{d[:3]} {d[3:5]} {d[5:]}",  # 117 76 23
        lambda d: f"{d[:2]} {d[2:4]} {d[4:]}",  # 11 77 623
        lambda d: f"{d[:2]}.{d[2:4]}.{d[4:]}",
        lambda d: f"{d[:3]}\u00a0{d[3:]}",  # a non-breaking space, as pasted from a message
        lambda d: f"{d[:3]}\u2013{d[3:]}",  # an en dash
        lambda d: " ".join(d),  # 1 1 7 7 6 2 3
        lambda d: d.translate(str.maketrans("0123456789", "０１２３４５６７８９")),  # full width
    ],
)
def test_any_grouping_of_the_seven_digits_is_the_key(customer, keyed, grouping):
    _session, key = keyed
    assert enter(customer, grouping(key.replace(" ", ""))).status_code == 302


@pytest.mark.parametrize(
    "typed", ["abc defg", "123 456", "123 45678", "12a 4567", "", "123+4567", "1234567 8"]
)
def test_malformed_keys_are_refused_with_one_message(customer, keyed, typed):
    response = enter(customer, typed)
    assert response.status_code == 400
    assert reverse("customer-adviser") not in response.get("Location", "")
    assert keyed[0].keys.get().state == KeyState.LIVE


def test_a_wrong_key_gets_one_generic_message_and_is_audited(customer, keyed):
    session, key = keyed
    wrong = "000 0000" if key != "000 0000" else "000 0001"
    response = enter(customer, wrong)
    assert response.status_code == 400
    assert "This key does not open a session." in response.text
    [failure] = events(EventType.KEY_REDEMPTION_FAILED)
    assert failure.client_ip == "203.0.113.7"


def test_a_used_key_from_a_second_browser_gets_the_same_message(customer, keyed):
    session, key = keyed
    enter(customer, key)
    other = english_browser("198.51.100.9")
    response = enter(other, key, name="Mallory")
    assert "This key does not open a session." in response.text
    assert other.get(reverse("customer-adviser")).status_code == 302  # not bound


def test_a_second_tab_of_the_same_customer_sees_the_same_session(customer, keyed):
    session, key = keyed
    enter(customer, key)
    assert session.reference in customer.get(reverse("customer-adviser")).text
    assert session.reference in customer.get(reverse("customer-adviser")).text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 101, "Please enter at most 100 characters."),
        ("Erika\x00Muster", "Null characters are not allowed."),
        ("Erika\x07Muster", "The name contains characters that cannot be used."),
        ("Erika\u202eMuster", "The name contains characters that cannot be used."),
        ("", "This field is required."),
    ],
)
def test_a_bad_name_is_refused_and_the_key_stays_unused(customer, keyed, name, message):
    session, key = keyed
    response = enter(customer, key, name=name)
    assert response.status_code == 400
    assert message in response.text
    assert session.keys.get().state == KeyState.LIVE


def test_five_wrong_keys_block_the_address_and_are_audited(customer, keyed, settings):
    session, key = keyed
    for n in range(settings.KEY_FAILURES_PER_IP):
        enter(customer, f"999 000{n}")
    response = enter(customer, key)  # even the right key now
    assert response.status_code == 429
    assert "Too many wrong keys from your network." in response.text
    assert session.keys.get().state == KeyState.LIVE
    assert events(EventType.KEY_REDEMPTION_THROTTLED)[0].client_ip == "203.0.113.7"
    # Another address is not blocked.
    assert enter(Client(REMOTE_ADDR="198.51.100.20"), key).status_code == 302


def test_many_wrong_keys_from_everywhere_raise_one_alarm(db, settings):
    settings.KEY_FAILURE_ALARM_PER_MINUTE = 6
    for n in range(8):
        enter(Client(REMOTE_ADDR=f"198.51.100.{n + 1}"), "999 1111")
    [alarm] = events(EventType.KEY_GUESSING_ALARM)
    assert alarm.details["failures_this_minute"] == 6


def test_no_key_is_taken_outside_opening_hours(customer, keyed, office_open):
    session, key = keyed
    office_open.shift(9 * 3600)  # 19:00
    response = enter(customer, key)
    assert response.status_code == 400
    assert "Outside opening hours. The service opens next on Thursday" in response.text
    assert session.keys.get().state == KeyState.LIVE


def test_pages_after_the_key_need_the_bound_browser(customer, db):
    for name in ("customer-adviser", "customer-terms", "customer-wait", "customer-receipt"):
        response = customer.get(reverse(name))
        assert response.status_code == 302 and response["Location"] == LANDING


# --- Adviser check, terms and consent -------------------------------------------------------


def test_the_terms_are_shown_in_the_readers_language_with_their_hash(customer, keyed):
    enter(customer, keyed[1])
    page = customer.get(reverse("customer-terms")).text
    terms = current_terms("en")
    assert terms.language == "en" and terms.title in page and terms.sha256 in page
    german = Client()
    enter(german, keyed[1])  # the key is used; a fresh session for the German reader:
    assert current_terms("de").title.startswith("Nutzungsbedingungen")


def test_consent_needs_the_first_three_boxes(customer, keyed):
    session, key = keyed
    enter(customer, key)
    for missing in ALL_BOXES:
        boxes = {k: v for k, v in ALL_BOXES.items() if k != missing}
        response = consent(customer, **boxes) if boxes else None
        assert response.status_code == 400
        assert "Please tick this box to continue." in response.text
    assert not ConsentAcceptance.objects.exists()
    assert not events(EventType.CONSENT_GIVEN)


def test_the_boxes_start_unticked(customer, keyed):
    enter(customer, keyed[1])
    page = customer.get(reverse("customer-terms")).text
    assert page.count('type="checkbox"') == 4
    assert "checked" not in page


def test_consent_is_stored_with_the_exact_terms_and_audited(customer, keyed):
    session, key = keyed
    enter(customer, key)
    response = consent(customer, **ALL_BOXES, full_control="on")
    assert response.status_code == 302 and response["Location"] == reverse("customer-wait")
    accepted = ConsentAcceptance.objects.get()
    terms = current_terms("en")
    assert (accepted.session, accepted.terms) == (session, terms)
    assert accepted.terms_sha256 == terms.sha256
    assert accepted.language == "en" and accepted.ip == "203.0.113.7"
    assert accepted.user_agent == "Firefox 140"
    assert (accepted.accepted_terms, accepted.it_permission, accepted.share_screen,
            accepted.full_control) == (True, True, True, True)
    assert [e.kind for e in ConsentEvent.objects.all()] == [ConsentEventKind.CONTROL_GRANTED]
    [given] = events(EventType.CONSENT_GIVEN)
    assert given.details["terms_sha256"] == terms.sha256 and given.session_ref == session.reference


def test_view_only_consent_grants_no_control(customer, keyed):
    enter(customer, keyed[1])
    consent(customer)
    assert ConsentAcceptance.objects.get().full_control is False
    assert not ConsentEvent.objects.exists()


def test_terms_replaced_while_reading_are_shown_again(customer, keyed, carol):
    from consent.actions import publish_terms

    enter(customer, keyed[1])
    read = current_terms("en")
    newer = TermsVersion.objects.create(version=2, language="en",
                                        text="Terms v2\n\nNew text. Kept {retention}.")
    publish_terms(terms=newer, by_user=carol)
    response = customer.post(reverse("customer-terms"), {"terms_id": read.pk, **ALL_BOXES})
    assert response.status_code == 400
    assert "The terms were updated while you were reading." in response.text
    assert "New text." in response.text
    assert not ConsentAcceptance.objects.exists()


def test_a_replayed_consent_post_changes_nothing(customer, keyed):
    enter(customer, keyed[1])
    consent(customer)
    response = consent(customer, **ALL_BOXES, full_control="on")
    assert response.status_code == 302  # to the waiting room
    assert ConsentAcceptance.objects.get().full_control is False
    assert len(events(EventType.CONSENT_GIVEN)) == 1


def test_a_post_without_csrf_token_is_refused_clearly_and_audited(keyed):
    browser = Client(enforce_csrf_checks=True)
    browser.cookies["django_language"] = "en"
    response = browser.post(LANDING, {"key": keyed[1], "name": "Erika"})
    assert response.status_code == 403
    assert "The form could not be sent" in response.text
    assert events(EventType.CSRF_FAILED)
    assert keyed[0].keys.get().state == KeyState.LIVE


# --- Waiting, admission, end ------------------------------------------------------------------


def test_the_customer_waits_then_is_admitted(customer, keyed, alice):
    session, key = keyed
    enter(customer, key)
    consent(customer)
    page = customer.get(reverse("customer-wait")).text
    assert "Please wait a moment" in page and "End session" in page
    assert customer.get(reverse("customer-status")).json() == {
        "state": "customer_waiting", "open": True,
    }
    session.refresh_from_db()
    actions.admit_customer(session=session, by_user=alice)
    assert customer.get(reverse("customer-status")).json()["state"] == "active"
    page = customer.get(reverse("customer-wait")).text
    assert "Your adviser has let you in" in page
    assert "Your adviser can only look, not control." in page


def test_the_customer_ends_before_admission(customer, keyed):
    session, key = keyed
    enter(customer, key)
    consent(customer)
    response = customer.post(reverse("customer-end"), follow=True)
    assert "The session has ended" in response.text
    session.refresh_from_db()
    assert (session.state, session.end_reason) == (SessionState.ENDED, EndReason.CUSTOMER_ENDED)
    assert ConsentEvent.objects.get().kind == ConsentEventKind.CONSENT_WITHDRAWN
    assert events(EventType.CONSENT_WITHDRAWN)[0].session_ref == session.reference
    assert not SessionKey.objects.filter(state=KeyState.LIVE).exists()
    # The key never works again, and the ended page offers no End button any more.
    assert "This key does not open a session." in enter(english_browser("198.51.100.3"), key).text
    assert 'action="/session/end"' not in customer.get(reverse("customer-ended")).text


def test_ending_works_right_after_the_key_and_on_every_page(customer, keyed):
    session, key = keyed
    enter(customer, key)
    for name in ("customer-adviser", "customer-terms"):
        assert 'action="/session/end"' in customer.get(reverse(name)).text
    customer.post(reverse("customer-end"))
    session.refresh_from_db()
    assert session.state == SessionState.ENDED
    assert not ConsentEvent.objects.exists()  # nothing had been agreed


def test_not_recognising_the_adviser_ends_and_is_flagged(customer, keyed):
    session, key = keyed
    enter(customer, key)
    customer.post(reverse("customer-end"), {"reason": "adviser_not_recognised"})
    [flag] = events(EventType.ADVISER_NOT_RECOGNISED)
    assert flag.session_ref == session.reference and flag.details["adviser"] == "alice"


def test_ending_twice_is_harmless(customer, keyed):
    enter(customer, keyed[1])
    customer.post(reverse("customer-end"))
    response = customer.post(reverse("customer-end"), follow=True)
    assert response.status_code == 200
    assert len(events(EventType.SESSION_ENDED)) == 1


def test_a_refused_customer_is_told_the_session_is_over(customer, keyed, alice):
    session, key = keyed
    enter(customer, key)
    consent(customer)
    actions.refuse_customer(session=session, by_user=alice)
    page = customer.get(reverse("customer-wait")).text
    assert "The session is over" in page and "Refused at admission" in page


# --- Receipt ----------------------------------------------------------------------------------


def test_the_receipt_matches_the_database(customer, keyed, alice):
    session, key = keyed
    enter(customer, key)
    consent(customer, **ALL_BOXES, full_control="on")
    customer.post(reverse("customer-end"))
    page = customer.get(reverse("customer-receipt")).text
    accepted = ConsentAcceptance.objects.get()
    session.refresh_from_db()
    assert session.reference in page and "alice" in page
    assert accepted.terms_sha256 in page and accepted.terms.paragraphs()[0] in page
    assert "Customer ended the session" in page
    assert page.count("<td>Yes</td>") == 4
    assert "Customer granted full control" in page and "Customer withdrew consent" in page


def test_the_whole_journey_is_in_an_intact_audit_chain(customer, keyed, alice):
    session, key = keyed
    enter(customer, key)
    consent(customer)
    actions.admit_customer(session=session, by_user=alice)
    customer.post(reverse("customer-end"))
    kinds = [e.event_type for e in events(EventType.KEY_REDEEMED)] + [
        e.event_type for e in events(EventType.CONSENT_GIVEN)
    ]
    assert len(kinds) == 2
    assert verify_chain().intact
