"""Staff sign-in in a real browser: German first, English by the switch, accessible throughout."""

import pytest
from playwright.sync_api import expect

from tests.browser import axe_violations, live_password
from tests.personas import totp_code, totp_device

pytestmark = pytest.mark.browser


def test_sign_in_is_german_then_english_by_the_switch_and_accessible_in_both(live_portal, page):
    # The browser asks for English (Accept-Language: en-US); the portal answers in German.
    response = page.goto(live_portal("/staff/login/"))
    assert response.status == 200
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Anmeldung für Mitarbeitende")
    expect(page.get_by_role("button", name="Deutsch")).to_have_attribute("aria-current", "true")
    # The stylesheet came from the daphne process (WhiteNoise), so axe judges the styled page.
    assert page.evaluate("document.styleSheets[0].cssRules.length") > 0
    assert axe_violations(page) == []

    page.get_by_role("navigation", name="Sprache").get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(live_portal("/staff/login/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff sign-in")
    expect(page.get_by_role("button", name="English")).to_have_attribute("aria-current", "true")
    assert axe_violations(page) == []

    # The choice sticks.
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff sign-in")


def test_a_support_user_signs_in_with_password_and_code(live_portal, page, alice):
    page.goto(live_portal("/staff/login/"))
    page.get_by_label("Benutzername").fill("alice")
    page.get_by_label("Passwort").fill("not the password")
    page.get_by_role("button", name="Weiter").click()
    expect(page.get_by_text("Benutzername oder Passwort ist falsch.")).to_be_visible()
    assert axe_violations(page) == []

    # The test may use the ORM while the browser is open.
    password = live_password(alice)
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Weiter").click()
    expect(page).to_have_url(live_portal("/staff/login/code/"))
    assert axe_violations(page) == []

    page.get_by_role("textbox").fill(totp_code(totp_device(alice)))
    page.get_by_role("button", name="Anmelden").click()
    expect(page).to_have_url(live_portal("/staff/"))
    expect(page.get_by_text("Angemeldet als alice")).to_be_visible()
    assert axe_violations(page) == []
