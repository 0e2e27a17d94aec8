"""Setting up the authenticator app: only with a one-time code from an administrator.

The secret is new on every start and lives in that one browser session; another sign-in with
the same password sees nothing, and backup codes are shown once at the end.
"""

import re
import threading
from base64 import b32encode
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.event_types import EventType
from audit.events import Actor
from portal import enrolment
from portal.models import EnrolmentCode
from portal.tasks import expire_enrolment_codes_and_role_requests
from portal.two_factor import ENROLMENT_SESSION_KEY
from tests.personas import (
    PASSWORD,
    events,
    make_staff,
    sign_in_password_only,
    sign_in_verified,
    totp_code,
)

pytestmark = pytest.mark.usefixtures("english")

LOGIN = "/staff/login/"
ENROL = "/staff/enrol/"
BACKUP_CODES = "/staff/backup-codes/"
SHOWN_CODE = re.compile(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>")
SHOWN_KEY = re.compile(r'<p class="secret" translate="no">([A-Z2-7 ]+)</p>')


@pytest.fixture
def erin(db):
    """A new support employee: a password from the administrator, no authenticator app yet."""
    return make_staff("erin", None, with_device=False)


def browser() -> Client:
    """Another browser, set to English like the test's own client."""
    other = Client()
    other.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return other


def code_for(user, by=None) -> str:
    """An administrator starts the enrolment and reads the code to the person on the phone."""
    actor = Actor.staff(by) if by is not None else Actor.system("test")
    return enrolment.issue_code(user=user, by=actor).code


def shown_key(page: str) -> str | None:
    found = SHOWN_KEY.search(page)
    return found.group(1) if found else None


def app_code(key: str, *, steps: int = 0) -> str:
    """What an authenticator app holding the shown key displays now."""
    device = TOTPDevice(key=_hex(key))
    return totp_code(device, steps=steps)


def _hex(grouped_key: str) -> str:
    from base64 import b32decode

    raw = grouped_key.replace(" ", "")
    return b32decode(raw + "=" * (-len(raw) % 8)).hex()


def start(client, user, code: str) -> str:
    """Sign in with the password, enter the enrolment code: the page with the secret."""
    client.post(LOGIN, {"username": user.username, "password": PASSWORD})
    response = client.post(ENROL, {"enrolment_code": code}, follow=True)
    return response.content.decode()


def test_it_sends_a_user_without_an_app_to_enrolment(client, erin):
    response = client.post(LOGIN, {"username": "erin", "password": PASSWORD, "next": "/admin/"})
    assert response["Location"] == f"{ENROL}?next=%2Fadmin%2F"


def test_the_password_alone_shows_no_secret(client, erin):
    code_for(erin)  # even while a code is out
    sign_in_password_only(client, erin)
    page = client.get(ENROL).content.decode()
    assert "Enrolment code from your administrator" in page
    assert "<svg" not in page and shown_key(page) is None
    assert not TOTPDevice.objects.filter(user=erin).exists()
    assert ENROLMENT_SESSION_KEY not in client.session


def test_it_shows_a_qr_code_and_a_new_key_after_the_code_and_keeps_them_on_reload(client, erin):
    page = start(client, erin, code_for(erin))
    key = shown_key(page)
    assert key and '<div class="qr"' in page and "<svg" in page
    assert shown_key(client.get(ENROL).content.decode()) == key
    # Nothing in the database that another sign-in could read.
    assert not TOTPDevice.objects.filter(user=erin).exists()
    [used] = events(EventType.ENROLMENT_CODE_USED)
    assert used.actor_id == erin.pk


def test_two_sign_ins_with_the_password_never_share_a_secret(erin):
    """The old hijack: whoever knew the password saw the same pending secret as the employee."""
    employee, intruder = browser(), browser()
    code = code_for(erin)
    key = shown_key(start(employee, erin, code))

    page = start(intruder, erin, code)  # the same password, even the same (used) code
    assert shown_key(page) is None and "<svg" not in page
    assert "already used or replaced" in page
    assert key not in intruder.get(ENROL).content.decode()

    # Codes from the employee's app do not enrol the intruder's browser.
    response = intruder.post(ENROL, {"code": app_code(key)})
    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(user=erin).exists()

    # A code of its own gives the intruder's browser a different secret, never the employee's.
    other_key = shown_key(start(intruder, erin, code_for(erin)))
    assert other_key and other_key != key
    # ...and the newer code voids the employee's half-finished enrolment.
    assert shown_key(employee.get(ENROL).content.decode()) is None
    employee.post(ENROL, {"code": app_code(key)})
    assert not TOTPDevice.objects.filter(user=erin).exists()


def test_every_start_makes_a_new_secret(client, erin):
    first = shown_key(start(client, erin, code_for(erin)))
    client.post("/staff/logout/")
    second = shown_key(start(client, erin, code_for(erin)))
    assert first and second and first != second


def test_it_refuses_a_wrong_code_and_keeps_the_app_unconfirmed(client, erin):
    key = shown_key(start(client, erin, code_for(erin)))
    current = {app_code(key, steps=steps) for steps in range(-3, 4)}
    wrong = next(code for code in ("123456", "654321", "111111") if code not in current)

    response = client.post(ENROL, {"code": wrong})
    assert response.status_code == 200
    assert "The code is wrong or has expired." in response.content.decode()
    assert shown_key(response.content.decode()) == key
    assert not TOTPDevice.objects.filter(user=erin).exists()
    assert client.get("/staff/").status_code == 302
    assert events(EventType.OTP_FAILED)[0].details["step"] == "enrolment"
    assert not events(EventType.DEVICE_ENROLLED)


def test_it_enrols_the_app_and_shows_backup_codes_once(client, erin):
    key = shown_key(start(client, erin, code_for(erin)))

    response = client.post(ENROL, {"code": app_code(key)})
    assert response["Location"] == BACKUP_CODES
    device = TOTPDevice.objects.get(user=erin)
    assert device.confirmed
    assert b32encode(device.bin_key).decode().rstrip("=") == key.replace(" ", "")
    assert ENROLMENT_SESSION_KEY not in client.session

    page = client.get(BACKUP_CODES).content.decode()
    codes = SHOWN_CODE.findall(page)
    assert len(codes) == settings.BACKUP_CODE_COUNT
    assert "I have stored them safely – continue" in page
    assert 'href="/staff/"' in page

    reloaded = client.get(BACKUP_CODES).content.decode()
    assert not SHOWN_CODE.findall(reloaded)
    assert f"You have {settings.BACKUP_CODE_COUNT} unused backup codes." in reloaded

    assert client.get("/staff/").status_code == 200
    [enrolled] = events(EventType.DEVICE_ENROLLED)
    assert enrolled.actor_id == erin.pk
    [issued] = events(EventType.BACKUP_CODES_ISSUED)
    assert issued.details == {"count": settings.BACKUP_CODE_COUNT}
    assert not any(code.replace("-", "") in str(issued.details) for code in codes)
    [signed_in] = events(EventType.SIGNIN_SUCCEEDED)
    assert signed_in.details["enrolment"] is True


def test_the_code_that_confirmed_the_app_does_not_sign_in_again(client, erin):
    key = shown_key(start(client, erin, code_for(erin)))
    confirming = app_code(key)
    client.post(ENROL, {"code": confirming})
    client.post("/staff/logout/")
    client.post(LOGIN, {"username": "erin", "password": PASSWORD})
    response = client.post("/staff/login/code/", {"code": confirming})
    assert "already used" in response.content.decode()


def test_it_continues_to_the_page_asked_for_after_enrolment(client, erin):
    client.post(LOGIN, {"username": "erin", "password": PASSWORD})
    client.post(f"{ENROL}?next=/admin/", {"enrolment_code": code_for(erin)})
    key = shown_key(client.get(f"{ENROL}?next=/admin/").content.decode())
    response = client.post(f"{ENROL}?next=/admin/", {"code": app_code(key)})
    assert response["Location"] == f"{BACKUP_CODES}?next=%2Fadmin%2F"
    page = client.get(response["Location"]).content.decode()
    assert 'href="/admin/"' in page


def test_it_does_not_enrol_a_second_app_for_an_enrolled_user(client, alice):
    sign_in_password_only(client, alice)
    response = client.get(ENROL)
    assert response["Location"] == "/staff/login/code/"
    response = client.post(ENROL, {"code": "123456"})
    assert response["Location"] == "/staff/login/code/"
    assert TOTPDevice.objects.filter(user=alice).count() == 1
    with pytest.raises(enrolment.EnrolmentRefused):
        code_for(alice)


def test_it_asks_for_the_password_before_enrolment(client, erin):
    assert client.get(ENROL)["Location"] == LOGIN
    assert not TOTPDevice.objects.filter(user=erin).exists()


def test_it_answers_malformed_codes_with_a_form_error(client, erin):
    sign_in_password_only(client, erin)
    for code in ("", "abcdefgh", "9" * 500):
        response = client.post(ENROL, {"enrolment_code": code})
        assert response.status_code == 200
        assert 'class="errorlist' in response.content.decode()
    start(client, erin, code_for(erin))
    for code in ("", "abcdefgh", "9" * 500):
        response = client.post(ENROL, {"code": code})
        assert response.status_code == 200
        assert 'class="errorlist' in response.content.decode()
    assert not TOTPDevice.objects.filter(user=erin).exists()


def test_a_wrong_enrolment_code_is_refused_and_audited(client, erin):
    code_for(erin)
    page = start(client, erin, "abcd-efgh-ijkl-mnop")
    assert "This enrolment code is wrong." in page and shown_key(page) is None
    [failed] = events(EventType.OTP_FAILED)
    assert failed.details["reason"] == "wrong enrolment code"
    assert failed.details["step"] == "enrolment-code"


def test_an_enrolment_code_expires(client, erin, settings):
    code = code_for(erin)
    later = timezone.now() + timedelta(hours=settings.ENROLMENT_CODE_HOURS, minutes=1)
    with time_machine.travel(later):
        page = start(client, erin, code)
        assert "This enrolment code has expired." in page and shown_key(page) is None
        assert events(EventType.OTP_FAILED)[-1].details["reason"] == "enrolment code expired"

        assert expire_enrolment_codes_and_role_requests()["enrolment_codes"] == 1
        assert expire_enrolment_codes_and_role_requests()["enrolment_codes"] == 0  # once
    [expired] = events(EventType.ENROLMENT_CODE_EXPIRED)
    assert expired.details["user"] == "erin"
    assert EnrolmentCode.objects.get().expired_at is not None


def test_a_code_is_still_good_just_before_it_expires(client, erin, settings):
    code = code_for(erin)
    later = timezone.now() + timedelta(hours=settings.ENROLMENT_CODE_HOURS, minutes=-1)
    with time_machine.travel(later):
        assert shown_key(start(client, erin, code))


def test_wrong_enrolment_codes_are_throttled_like_sign_in_codes(client, erin, settings):
    good = code_for(erin)
    sign_in_password_only(client, erin)
    for _ in range(settings.SIGNIN_FAILURES_PER_USER):
        client.post(ENROL, {"enrolment_code": "abcd-efgh-ijkl-mnop"})
    page = client.post(ENROL, {"enrolment_code": good}, follow=True).content.decode()
    assert "Too many failed attempts." in page and shown_key(page) is None
    [throttled] = events(EventType.SIGNIN_THROTTLED)
    assert throttled.details["step"] == "enrolment-code"
    assert EnrolmentCode.usable().filter(user=erin).exists()  # the real code is not spent


def test_wrong_app_codes_at_enrolment_are_throttled(client, erin, settings):
    key = shown_key(start(client, erin, code_for(erin)))
    current = {app_code(key, steps=steps) for steps in range(-3, 4)}
    wrong = next(code for code in ("123456", "654321", "111111") if code not in current)
    for _ in range(settings.SIGNIN_FAILURES_PER_USER):
        client.post(ENROL, {"code": wrong})
    response = client.post(ENROL, {"code": app_code(key)})
    assert "Too many failed attempts." in response.content.decode()
    assert not TOTPDevice.objects.filter(user=erin).exists()


BROWSERS = 8


@pytest.mark.django_db(transaction=True)
def test_a_code_starts_one_enrolment_even_from_many_browsers_at_once(erin):
    code = code_for(erin)
    browsers = [browser() for _ in range(BROWSERS)]
    for each in browsers:
        sign_in_password_only(each, erin)
    go = threading.Barrier(BROWSERS)
    keys: list[str | None] = []

    def browser_enters_code(one: Client) -> None:
        try:
            go.wait()
            response = one.post(ENROL, {"enrolment_code": code}, follow=True)
            keys.append(shown_key(response.content.decode()))
        except Exception as error:  # pragma: no cover - shown in the assertion
            keys.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=browser_enters_code, args=(b,)) for b in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    shown = [key for key in keys if key is not None]
    assert len(keys) == BROWSERS and len(shown) == 1, keys
    assert len(events(EventType.ENROLMENT_CODE_USED)) == 1


def test_an_administrator_starts_the_enrolment_and_sees_the_code_once(client, carol, erin):
    sign_in_verified(client, carol)
    url = f"/admin/auth/user/{erin.pk}/enrolment/"
    confirm = client.get(url)
    assert confirm.status_code == 200 and "Start enrolment" in confirm.content.decode()
    page = client.post(url).content.decode()
    [shown] = re.findall(r"<code>([a-z2-7]{4}(?:-[a-z2-7]{4}){3})</code>", page)
    assert "http://testserver/staff/enrol/" in page

    # Stored only as a hash; the audit event names who, for whom, and until when.
    stored = EnrolmentCode.objects.get()
    assert stored.code_sha256 == enrolment.code_digest(shown) and stored.issued_by == carol
    [started] = events(EventType.ENROLMENT_STARTED)
    assert started.actor_id == carol.pk and started.details["user"] == "erin"
    assert "expires_at" in started.details
    assert shown.replace("-", "") not in str(started.details)
    assert shown not in client.get(f"/admin/auth/user/{erin.pk}/change/").content.decode()

    assert shown_key(start(browser(), erin, shown))


def test_support_staff_cannot_start_an_enrolment(client, alice, erin):
    sign_in_verified(client, alice)
    assert client.post(f"/admin/auth/user/{erin.pk}/enrolment/").status_code == 403
    assert not EnrolmentCode.objects.exists()


def test_an_administrator_resets_a_second_factor_and_the_person_needs_a_new_code(
    client, carol, alice
):
    victim_browser = browser()
    sign_in_verified(victim_browser, alice)
    assert victim_browser.get("/staff/").status_code == 200

    sign_in_verified(client, carol)
    response = client.post(f"/admin/auth/user/{alice.pk}/reset-second-factor/")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=alice).exists()
    [reset] = events(EventType.SECOND_FACTOR_RESET)
    assert reset.actor_id == carol.pk and reset.details["authenticators"] == 1

    # The old factor no longer counts, and the password alone shows no secret.
    assert victim_browser.get("/staff/").status_code == 302
    other = browser()
    other.post(LOGIN, {"username": "alice", "password": PASSWORD})
    page = other.get(ENROL).content.decode()
    assert shown_key(page) is None


def test_nobody_resets_or_enrols_their_own_second_factor(client, carol):
    sign_in_verified(client, carol)
    client.post(f"/admin/auth/user/{carol.pk}/reset-second-factor/")
    assert TOTPDevice.objects.filter(user=carol).exists()
    assert not events(EventType.SECOND_FACTOR_RESET)
    with pytest.raises(enrolment.EnrolmentRefused):
        enrolment.reset_second_factor(user=carol, by=Actor.staff(carol))


def test_authenticators_are_not_deleted_in_the_admin_bypassing_the_reset(client, carol, alice):
    sign_in_verified(client, carol)
    device = TOTPDevice.objects.get(user=alice)
    response = client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_newer_code_or_a_reset_voids_an_enrolment_under_way(client, carol, erin):
    key = shown_key(start(client, erin, code_for(erin, by=carol)))
    enrolment.reset_second_factor(user=erin, by=Actor.staff(carol))
    assert shown_key(client.get(ENROL).content.decode()) is None
    client.post(ENROL, {"code": app_code(key)})
    assert not TOTPDevice.objects.filter(user=erin).exists()
