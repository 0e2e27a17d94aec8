"""The live session in real browsers: the customer shares a tab, the adviser watches, chats and
controls, a compliance officer looks on; pause, resume and the end reach every page.

Three Playwright contexts on one daphne process: the customer (German, through key, adviser
check, consent and admission), the assigned staff member and a compliance officer (both signed
in with two factors by a session made in the test, in English). Chromium shares its own tab
(``--auto-accept-this-tab-capture``; the page asks with ``preferCurrentTab``).
"""

import re
import time

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from audit.chain import verify_chain
from audit.event_types import EventType
from consent.models import ConsentEvent, ConsentEventKind
from sessions_app import actions
from sessions_app.models import ChatMessage, EndReason, SessionState
from tests.browser import TIMEOUT_MS, axe_violations, in_sync_thread, wait_for
from tests.personas import PERSONAS, events, make_staff, sign_in_verified
from tests.test_browser_customer import keyed_session, open_portal  # noqa: F401 - a fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FROM_CUSTOMER = "Guten Tag, ich sehe eine Fehlermeldung."
FROM_STAFF = "Thank you, I can see it. May I take over for a moment?"


def accessible(page):
    assert axe_violations(page) == [], page.url


def signed_in_session(user) -> str:
    """The session cookie of a browser signed in with password and second factor."""
    client = Client()
    sign_in_verified(client, user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def staff_page(browser, portal, user):
    """A page of a new context signed in as ``user`` (both factors), in English."""
    cookie = in_sync_thread(signed_in_session, user)
    context = browser.new_context(locale="en-US", timezone_id="Europe/Berlin")
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies([
        {"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": portal.url},
        {"name": settings.LANGUAGE_COOKIE_NAME, "value": "en", "url": portal.url},
    ])
    return context.new_page()


def admitted_customer(page, portal, session, key, adviser):
    """The customer's steps from the key to the admitted waiting room, in German."""
    page.goto(portal("/"))
    page.locator("#id_key").fill(key)
    page.locator("#id_name").fill("Erika Muster")
    page.locator("#id_name").press("Enter")
    page.locator("main a.button").click()
    for box in ("accepted_terms", "it_permission", "share_screen"):
        page.locator(f"#id_{box}").check()
    page.locator("form.consent button[type=submit]").click()
    expect(page.locator("#session-state")).to_have_attribute("data-state", "customer_waiting")
    in_sync_thread(actions.admit_customer, session=session, by_user=adviser)
    expect(page.locator("#session-state")).to_have_attribute("data-state", "active")


def test_the_customer_shares_and_the_adviser_watches_chats_and_controls(
    open_portal, browser, page, alice  # noqa: F811 - open_portal is the imported fixture
):
    alice.first_name, alice.last_name = "Alice", "Adler"
    alice.save(update_fields=["first_name", "last_name"])
    bob = make_staff("bob", PERSONAS["bob"])
    session, key = in_sync_thread(keyed_session, alice)
    started = time.monotonic()

    # The customer: admitted, then one button and the browser shares this tab.
    admitted_customer(page, open_portal, session, key, alice)
    share = page.locator("#share")
    expect(share).to_have_attribute("data-state", "idle")
    page.locator("#share-start").click()
    expect(share).to_have_attribute("data-state", "sharing")
    expect(page.locator("#share-banner")).to_be_visible()
    expect(page.locator("#share-end")).to_be_visible()

    # The adviser opens the live view and sees the screen arrive.
    staff = staff_page(browser, open_portal, alice)
    staff.goto(open_portal(f"/staff/sessions/{session.reference}/live"))
    live = staff.locator("#live")
    expect(live).to_have_attribute("data-connection", "open")
    expect(live).to_have_attribute("data-customer", "sharing")
    wait_for(staff, "document.getElementById('screen').width > 0")
    expect(staff.locator("#screen-empty")).to_be_hidden()
    expect(live).not_to_have_attribute("data-tiles", "0")
    expect(staff.locator("#fig-size")).to_have_text(re.compile(r"^\d+ × \d+$"))
    expect(staff.locator("#fig-keyframes")).not_to_have_text("0")
    expect(page.locator("#adviser-present")).to_be_visible()

    # A compliance officer looks on, read-only; the customer is told by name.
    observer = staff_page(browser, open_portal, bob)
    observer.goto(open_portal(f"/staff/observe/{session.reference}/"))
    watching = observer.locator("#live")
    expect(watching).to_have_attribute("data-connection", "open")
    wait_for(observer, "document.getElementById('screen').width > 0")
    for absent in ("#chat-form", "#control-request", "#end-form"):
        expect(observer.locator(absent)).to_have_count(0)
    expect(page.locator("#observer-notice")).to_be_visible()
    expect(page.locator("#observer-names")).to_have_text("bob")
    expect(staff.locator("#observer-names")).to_have_text("bob")
    accessible(observer)

    # Chat, both ways.
    page.locator("#chat-text").fill(FROM_CUSTOMER)
    page.locator("#chat-text").press("Enter")
    expect(staff.locator("#chat-lines")).to_contain_text(FROM_CUSTOMER)
    expect(observer.locator("#chat-lines")).to_contain_text(FROM_CUSTOMER)
    staff.locator("#chat-text").fill(FROM_STAFF)
    staff.locator("#chat-form button[type=submit]").click()
    expect(page.locator("#chat-lines")).to_contain_text(FROM_STAFF)

    # Control: asked, shown to the customer, granted.
    staff.locator("#control-request").click()
    expect(live).to_have_attribute("data-control", "waiting")
    prompt = page.get_by_role("alertdialog")
    expect(prompt).to_be_visible()
    expect(prompt).to_be_focused()
    accessible(page)  # the sharing page, with the banner, the chat and the prompt
    page.locator("#control-allow").click()
    expect(live).to_have_attribute("data-control", "granted")
    expect(page.locator("#control-granted")).to_be_visible()

    # Mouse and keyboard on the screen reach the customer's page.
    canvas = staff.locator("#screen")
    canvas.click(position={"x": 40, "y": 30})
    activity = page.locator("#control-activity")
    expect(activity).to_have_attribute("data-last-input", re.compile(r"^pointer"))
    canvas.press("a")
    expect(activity).to_have_attribute("data-last-input", re.compile(r"^key"))
    accessible(staff)

    # The customer takes control back.
    page.locator("#control-revoke").click()
    expect(live).to_have_attribute("data-control", "revoked")
    expect(page.locator("#control-granted")).to_be_hidden()

    # Pause and resume: the adviser sees both, and a fresh keyframe after the pause.
    keyframes = int(live.get_attribute("data-keyframes"))
    page.locator("#share-pause").click()
    expect(live).to_have_attribute("data-customer", "paused")
    expect(share).to_have_attribute("data-state", "paused")
    page.locator("#share-resume").click()
    expect(live).to_have_attribute("data-customer", "sharing")
    wait_for(staff,
        f"Number(document.getElementById('live').dataset.keyframes) > {keyframes}"
    )

    # The customer ends from the banner: every page says so.
    page.locator("#share-end").click()
    expect(live).to_have_attribute("data-connection", "ended")
    expect(staff.locator("#ended-box")).to_be_visible()
    expect(watching).to_have_attribute("data-connection", "ended")
    expect(page.locator("#session-state")).to_have_attribute("data-state", "ended")
    elapsed = time.monotonic() - started

    session.refresh_from_db()
    assert (session.state, session.end_reason) == (SessionState.ENDED, EndReason.CUSTOMER_ENDED)
    assert list(
        ConsentEvent.objects.filter(session=session).values_list("kind", flat=True)
    ) == [
        ConsentEventKind.CONTROL_REQUESTED, ConsentEventKind.CONTROL_GRANTED,
        ConsentEventKind.CONTROL_REVOKED, ConsentEventKind.CONSENT_WITHDRAWN,
    ]
    assert list(
        ChatMessage.objects.filter(session=session).values_list("sender", "text")
    ) == [("customer", FROM_CUSTOMER), ("staff", FROM_STAFF)]
    assert len(events(EventType.SHARING_PAUSED)) == len(events(EventType.SHARING_RESUMED)) == 1
    assert len(events(EventType.LIVE_CONNECTED)) == 3  # customer, staff member, observer
    assert events(EventType.LIVE_REFUSED) == []  # no socket or message was refused
    assert verify_chain().intact
    print(f"admission to the end of the live session in {elapsed:.1f} s")


@pytest.fixture
def rechecking_portal(request, monkeypatch):
    """The portal's daphne re-reading live sessions every second (the default is 2)."""
    monkeypatch.setenv("PORTAL_LIVE_STATE_RECHECK_SECONDS", "1")
    return request.getfixturevalue("open_portal")


def test_the_adviser_sees_the_grace_countdown_and_the_end_made_by_another_process(
    rechecking_portal, browser, alice
):
    """The customer's connection and the session's end come from outside the page's daphne
    (another process, a Celery worker): the page learns both from the database, in German."""
    portal = rechecking_portal
    session = in_sync_thread(_active_with_a_customer_elsewhere, alice)

    cookie = in_sync_thread(signed_in_session, alice)
    context = browser.new_context(locale="de-DE", timezone_id="Europe/Berlin")
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies([
        {"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": portal.url},
        {"name": settings.LANGUAGE_COOKIE_NAME, "value": "de", "url": portal.url},
    ])
    staff = context.new_page()
    staff.goto(portal(f"/staff/sessions/{session.reference}/live"))
    live = staff.locator("#live")
    expect(live).to_have_attribute("data-connection", "open")
    expect(live).to_have_attribute("data-customer", "sharing")

    in_sync_thread(actions.disconnect_customer, session=session, channel="elsewhere")
    expect(live).to_have_attribute("data-customer", "lost")
    status = staff.locator("#status-customer")
    expect(status).to_have_text(re.compile(r"^Kunde getrennt – die Sitzung endet in \d+ s$"))
    first = int(live.get_attribute("data-grace-seconds"))
    assert settings.LIVE_GRACE_SECONDS - 3 <= first <= settings.LIVE_GRACE_SECONDS
    wait_for(staff, f"Number(document.getElementById('live').dataset.graceSeconds) < {first}")

    session.refresh_from_db()
    assert in_sync_thread(actions.end_if_still_lost, session.pk, lost_at=session.customer_lost_at)
    expect(live).to_have_attribute("data-connection", "ended")
    expect(staff.locator("#ended-box")).to_be_visible()
    expect(status).not_to_contain_text("Kunde getrennt")
    for control in ("#chat-text", "#control-request", "#end-form button"):
        expect(staff.locator(control)).to_be_disabled()


def _active_with_a_customer_elsewhere(adviser):
    """An admitted customer whose connection another daphne process holds."""
    from consent import actions as consent_actions
    from consent.models import TermsVersion
    from tests.sessions import wait_for_a_whole_slot, waiting_customer

    session = waiting_customer(adviser, minutes=wait_for_a_whole_slot())
    consent_actions.give_consent(
        session=session, terms_id=TermsVersion.objects.current("de").pk, language="de",
        answers=consent_actions.Answers(True, True, True, False), ip=None,
    )
    actions.admit_customer(session=session, by_user=adviser)
    session.refresh_from_db()
    actions.connect_customer(token=actions.issue_live_token(session=session), channel="elsewhere")
    return session
