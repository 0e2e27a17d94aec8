"""Security headers: a strict Content-Security-Policy everywhere, and a Permissions-Policy that
allows screen capture only on the customer's waiting room, where they share their screen."""

import pytest
from django.urls import reverse

from tests.test_customer_journey import consent, customer, enter, keyed  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("office_open")

STRICT = [
    "default-src 'self'", "script-src 'self'", "style-src 'self'",
    "img-src 'self' data: blob:", "connect-src 'self'", "frame-ancestors 'none'",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'",
]
PAGES = ["/", "/staff/login/", "/admin/login/", "/healthz"]


def directives(response) -> set[str]:
    return {part.strip() for part in response["Content-Security-Policy"].split(";")}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_the_strict_content_security_policy(client, db, path):
    response = client.get(path)
    assert set(STRICT) <= directives(response)
    assert "unsafe" not in response["Content-Security-Policy"]


@pytest.mark.parametrize("path", PAGES)
def test_every_other_page_denies_screen_capture_and_devices(client, db, path):
    policy = client.get(path)["Permissions-Policy"]
    for feature in ("display-capture", "camera", "microphone", "geolocation", "usb"):
        assert f"{feature}=()" in policy


def test_the_waiting_room_may_capture_the_screen_and_nothing_else(customer, keyed):  # noqa: F811
    enter(customer, keyed[1])
    consent(customer)
    response = customer.get(reverse("customer-wait"))
    assert response.status_code == 200
    policy = response["Permissions-Policy"]
    assert "display-capture=(self)" in policy
    assert "camera=()" in policy and "microphone=()" in policy
    assert set(STRICT) <= directives(response)


def test_no_template_has_inline_scripts_styles_or_handlers():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:")
    found = [f"{path.relative_to(root)}: {match.group()}"
             for app in ("portal", "consent", "sessions_app", "recordings", "audit")
             for path in (root / app).rglob("*.html")
             for match in inline.finditer(path.read_text())]
    assert found == []


@pytest.mark.browser
def test_an_injected_inline_script_is_blocked_in_a_real_browser(live_portal, browser_context):
    page = browser_context.new_page()
    page.goto(live_portal("/"))
    violations = browser_context.csp_violations  # what the fixture collects
    with pytest.raises(Exception, match="Content Security Policy|Refused"):
        page.add_script_tag(content="window.injected = 1;")
    page.evaluate("() => document.body.setAttribute('onclick', 'window.injected = 2')")
    page.locator("body").click(position={"x": 1, "y": 1})
    page.wait_for_timeout(200)
    assert page.evaluate("window.injected") is None
    assert violations  # the browser reported the refusals
    violations.clear()  # expected here: the fixture checks that no page broke the policy
