"""The customer's journey in a real browser, in German and in English, checked with axe-core:
landing → key → adviser check → terms → consent → waiting → admitted → End session → receipt."""

import time
from datetime import time as clock
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit.chain import verify_chain
from audit.event_types import EventType
from consent.models import ConsentAcceptance, TermsVersion
from sessions_app import actions
from sessions_app.models import EndReason, SessionState
from tests.browser import axe_violations, in_sync_thread
from tests.personas import events
from tests.sessions import wait_for_a_whole_slot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALWAYS_OPEN = "mon-sun 00:00-23:59:59"
TERMS_DIR = Path(__file__).resolve().parent.parent / "consent/terms"
TEXTS = {
    "de": {
        "landing": "Fernwartung durch Ihre Bank",
        "adviser": "Ist das die Person, mit der Sie gerade telefonieren?",
        "terms": "Nutzungsbedingungen und Ihre Einwilligung",
        "waiting": "Bitte warten Sie einen Moment",
        "admitted": "Ihre Beraterin oder Ihr Berater hat Sie zugelassen",
        "ended": "Die Sitzung ist beendet",
        "end": "Sitzung beenden",
    },
    "en": {
        "landing": "Remote support from your bank",
        "adviser": "Is this the person you are speaking to?",
        "terms": "Terms and your consent",
        "waiting": "Please wait a moment",
        "admitted": "Your adviser has let you in",
        "ended": "The session has ended",
        "end": "End session",
    },
}


@pytest.fixture
def open_portal(request, monkeypatch, settings):
    """The portal open around the clock, in this process and in its daphne process."""
    monkeypatch.setenv("PORTAL_OPENING_HOURS", ALWAYS_OPEN)
    monkeypatch.setenv("PORTAL_HOLIDAY_STATE", "none")
    settings.OPENING_HOURS = {day: (clock(0, 0), clock(23, 59, 59)) for day in range(7)}
    settings.HOLIDAY_STATE = "none"
    shipped_terms()  # a transactional test before this one flushed the migration's rows
    return request.getfixturevalue("live_portal")


def shipped_terms():
    """The first terms as the migration publishes them, if they are missing."""
    for language in ("de", "en"):
        text = (TERMS_DIR / f"1.{language}.txt").read_text(encoding="utf-8")
        TermsVersion.objects.get_or_create(
            version=1, language=language, defaults={"text": text, "published_at": timezone.now()}
        )


def keyed_session(user):
    minutes = wait_for_a_whole_slot()
    now = timezone.now()
    session = actions.schedule_session(
        by_user=user, customer_name="Muster GmbH", call_note="Call, ticket 4711",
        slot_start=now, slot_end=now + timedelta(minutes=minutes),
    )
    key, _ = actions.issue_key(session=session, by_user=user)
    return session, f"{key[:3]} {key[3:]}"


def accessible(page):
    assert axe_violations(page) == [], page.url


@pytest.mark.parametrize("language", ["de", "en"])
def test_a_customer_goes_from_the_key_to_admission_and_ends(open_portal, page, alice, language):
    alice.first_name, alice.last_name = "Alice", "Adler"
    alice.save(update_fields=["first_name", "last_name"])
    session, key = in_sync_thread(keyed_session, alice)
    text = TEXTS[language]
    started = time.monotonic()

    page.goto(open_portal("/"))
    expect(page.locator("html")).to_have_attribute("lang", "de")
    if language == "en":
        page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_have_text(text["landing"])
    accessible(page)

    page.locator("#id_key").fill(key)
    page.locator("#id_name").fill("Erika Muster")
    page.locator("#id_name").press("Enter")  # keyboard only

    expect(page.get_by_role("heading", level=1)).to_have_text(text["adviser"])
    expect(page.locator(".adviser-name")).to_have_text("Alice Adler")
    expect(page.locator(".reference")).to_have_text(session.reference)
    header_end = page.get_by_role("banner").get_by_role("button", name=text["end"], exact=True)
    expect(header_end).to_be_visible()
    accessible(page)
    page.locator("main a.button").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(text["terms"])
    terms = TermsVersion.objects.current(language)
    expect(page.locator("#terms-title")).to_have_text(terms.title)
    accessible(page)
    # Nothing is ticked at first; the three required boxes by keyboard.
    for box in ("accepted_terms", "it_permission", "share_screen", "full_control"):
        expect(page.locator(f"#id_{box}")).not_to_be_checked()
    for box in ("accepted_terms", "it_permission", "share_screen"):
        page.locator(f"#id_{box}").focus()
        page.keyboard.press("Space")
    page.locator("form.consent button[type=submit]").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(text["waiting"])
    accessible(page)
    session.refresh_from_db()
    assert session.state == SessionState.CUSTOMER_WAITING
    in_sync_thread(actions.admit_customer, session=session, by_user=alice)
    # The waiting room notices by itself.
    expect(page.get_by_role("heading", level=1)).to_have_text(text["admitted"])
    to_admitted = time.monotonic() - started
    accessible(page)

    header_end.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text["ended"])
    accessible(page)
    session.refresh_from_db()
    assert (session.state, session.end_reason) == (SessionState.ENDED, EndReason.CUSTOMER_ENDED)

    page.locator("main a[href='/session/receipt']").click()
    consent = ConsentAcceptance.objects.get(session=session)
    assert consent.language == language and consent.terms == terms
    expect(page.locator(".receipt .hash")).to_have_text(terms.sha256)
    accessible(page)
    assert events(EventType.CONSENT_WITHDRAWN)
    assert verify_chain().intact
    print(f"landing to admitted in {to_admitted:.1f} s ({language})")


def test_a_wrong_key_and_a_missing_box_are_told_clearly(open_portal, page, alice):
    session, key = in_sync_thread(keyed_session, alice)
    page.goto(open_portal("/"))
    page.locator("#id_key").fill("12-34 567")
    page.locator("#id_name").fill("Erika Muster")
    page.locator("main form button[type=submit]").click()
    expect(page.locator("[role=alert]")).to_contain_text(
        "Mit diesem Schlüssel lässt sich keine Sitzung öffnen."
    )
    accessible(page)

    page.locator("#id_key").fill(key.replace(" ", "-"))
    page.locator("#id_name").fill("Erika Muster")
    page.locator("main form button[type=submit]").click()
    page.locator("main a.button").click()
    page.locator("#id_accepted_terms").check()
    page.locator("form.consent button[type=submit]").click()
    expect(page.locator(".check.invalid")).to_have_count(2)
    accessible(page)
    assert not ConsentAcceptance.objects.exists()
