"""Setting up the authenticator app at the first sign-in, with backup codes shown once."""

import re
from base64 import b32encode

import pytest
from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.event_types import EventType
from tests.personas import PASSWORD, events, make_staff, sign_in_password_only, totp_code

pytestmark = pytest.mark.usefixtures("english")

LOGIN = "/staff/login/"
ENROL = "/staff/enrol/"
BACKUP_CODES = "/staff/backup-codes/"
SHOWN_CODE = re.compile(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>")



@pytest.fixture
def erin(db):
    """A new support employee: a password from the administrator, no authenticator app yet."""
    return make_staff("erin", None, with_device=False)



def new_device(user) -> TOTPDevice:
    return TOTPDevice.objects.get(user=user, confirmed=False)


def grouped_key(device: TOTPDevice) -> str:
    key = b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def test_it_sends_a_user_without_an_app_to_enrolment(client, erin):
    response = client.post(LOGIN, {"username": "erin", "password": PASSWORD, "next": "/admin/"})
    assert response["Location"] == f"{ENROL}?next=%2Fadmin%2F"


def test_it_shows_a_qr_code_and_the_key_and_keeps_them_on_reload(client, erin):
    sign_in_password_only(client, erin)
    page = client.get(ENROL).content.decode()
    device = new_device(erin)
    assert '<div class="qr"' in page
    assert "<svg" in page
    assert grouped_key(device) in page

    again = client.get(ENROL).content.decode()
    assert grouped_key(device) in again
    assert TOTPDevice.objects.filter(user=erin).count() == 1


def test_it_refuses_a_wrong_code_and_keeps_the_app_unconfirmed(client, erin):
    sign_in_password_only(client, erin)
    client.get(ENROL)
    device = new_device(erin)
    current = {totp_code(device, steps=steps) for steps in range(-3, 4)}
    wrong = next(code for code in ("123456", "654321", "111111") if code not in current)

    response = client.post(ENROL, {"code": wrong})
    assert response.status_code == 200
    assert "The code is wrong or has expired." in response.content.decode()
    assert grouped_key(device) in response.content.decode()
    assert not new_device(erin).confirmed
    assert client.get("/staff/").status_code == 302
    assert events(EventType.OTP_FAILED)[0].details["step"] == "enrolment"
    assert not events(EventType.DEVICE_ENROLLED)


def test_it_enrols_the_app_and_shows_backup_codes_once(client, erin):
    client.post(LOGIN, {"username": "erin", "password": PASSWORD})
    client.get(ENROL)
    device = new_device(erin)

    response = client.post(ENROL, {"code": totp_code(device)})
    assert response["Location"] == BACKUP_CODES
    device.refresh_from_db()
    assert device.confirmed

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


def test_it_continues_to_the_page_asked_for_after_enrolment(client, erin):
    sign_in_password_only(client, erin)
    client.get(f"{ENROL}?next=/admin/")
    response = client.post(f"{ENROL}?next=/admin/", {"code": totp_code(new_device(erin))})
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


def test_it_asks_for_the_password_before_enrolment(client, erin):
    assert client.get(ENROL)["Location"] == LOGIN
    assert not TOTPDevice.objects.filter(user=erin).exists()


def test_it_answers_a_malformed_enrolment_code_with_a_form_error(client, erin):
    sign_in_password_only(client, erin)
    for code in ("", "abcdefgh", "9" * 500):
        response = client.post(ENROL, {"code": code})
        assert response.status_code == 200
        assert 'class="errorlist' in response.content.decode()
    assert not new_device(erin).confirmed
