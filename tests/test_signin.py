"""Staff sign-in: the password step, the code step, sign-out, redirects and languages."""

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from audit.event_types import EventType
from tests.personas import (
    PASSWORD,
    events,
    sign_in_password_only,
    sign_in_verified,
    totp_code,
    totp_device,
)

pytestmark = pytest.mark.usefixtures("english")

LOGIN = "/staff/login/"
CODE = "/staff/login/code/"
LOGOUT = "/staff/logout/"
WRONG_PASSWORD_EN = "Wrong user name or password."




def enter_password(client, username, password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password, **extra})


def wrong_code(device) -> str:
    current = {totp_code(device, steps=steps) for steps in range(-3, 4)}
    return next(code for code in ("123456", "654321", "111111") if code not in current)


def test_it_signs_in_with_password_and_code(client, alice):
    response = enter_password(client, "alice")
    assert response.status_code == 302
    assert response["Location"] == CODE

    page = client.get(CODE)
    assert "6-digit code" in page.content.decode()

    response = client.post(CODE, {"code": totp_code(totp_device(alice))})
    assert response.status_code == 302
    assert response["Location"] == "/staff/"
    home = client.get("/staff/")
    assert home.status_code == 200
    assert "Signed in as alice" in home.content.decode()

    [event] = events(EventType.SIGNIN_SUCCEEDED)
    assert event.actor_id == alice.pk
    assert event.details["method"] == "totp"
    assert event.client_ip == "127.0.0.1"


def test_it_accepts_a_code_typed_with_a_space(client, alice):
    enter_password(client, "alice")
    code = totp_code(totp_device(alice))
    response = client.post(CODE, {"code": f"{code[:3]} {code[3:]}"})
    assert response["Location"] == "/staff/"


def test_it_keeps_a_password_only_session_out_of_the_staff_pages(client, alice):
    sign_in_password_only(client, alice)
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response["Location"] == f"{CODE}?next=%2Fstaff%2F"


def test_it_keeps_a_password_only_session_out_of_the_admin(client, carol):
    sign_in_password_only(client, carol)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith(CODE)
    assert "Administration and audit" not in response.content.decode()


def test_it_lets_a_verified_administrator_into_the_admin(client, carol):
    sign_in_verified(client, carol)
    response = client.get("/admin/")
    assert response.status_code == 200


def test_it_asks_for_the_password_before_the_code(client, alice):
    response = client.get(CODE)
    assert response["Location"] == LOGIN
    response = client.post(CODE, {"code": totp_code(totp_device(alice))})
    assert response["Location"] == LOGIN
    assert not events(EventType.SIGNIN_SUCCEEDED)


def test_it_refuses_a_wrong_password(client, alice):
    response = enter_password(client, "alice", "not-the-password")
    assert response.status_code == 200
    assert WRONG_PASSWORD_EN in response.content.decode()
    assert client.get(CODE)["Location"] == LOGIN

    [event] = events(EventType.PASSWORD_FAILED)
    assert event.actor_label == "alice"
    assert event.details == {"username": "alice", "reason": "wrong password"}
    assert "not-the-password" not in str(event.details)


def test_it_gives_the_same_answer_for_an_unknown_user(client, alice):
    response = enter_password(client, "mallory")
    assert WRONG_PASSWORD_EN in response.content.decode()
    [event] = events(EventType.PASSWORD_FAILED)
    assert event.details == {"username": "mallory", "reason": "unknown user"}


def test_it_refuses_an_inactive_user_with_the_right_password(client, alice):
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    response = enter_password(client, "alice")
    assert WRONG_PASSWORD_EN in response.content.decode()
    assert client.get(CODE)["Location"] == LOGIN
    [event] = events(EventType.PASSWORD_FAILED)
    assert event.details["reason"] == "inactive user"


def test_it_refuses_a_user_who_is_not_staff(client, db):
    User.objects.create_user("erin", "erin@bank.example", PASSWORD, is_staff=False)
    response = enter_password(client, "erin")
    assert WRONG_PASSWORD_EN in response.content.decode()
    assert client.get(CODE)["Location"] == LOGIN
    [event] = events(EventType.PASSWORD_FAILED)
    assert event.details["reason"] == "not staff"


def test_it_refuses_a_wrong_code(client, alice):
    enter_password(client, "alice")
    response = client.post(CODE, {"code": wrong_code(totp_device(alice))})
    assert response.status_code == 200
    assert "The code is wrong or has expired." in response.content.decode()
    assert client.get("/staff/").status_code == 302

    [event] = events(EventType.OTP_FAILED)
    assert event.actor_id == alice.pk
    assert event.details["reason"] == "wrong or expired code"


def test_it_refuses_a_code_that_was_already_used(client, alice):
    code = totp_code(totp_device(alice))
    enter_password(client, "alice")
    assert client.post(CODE, {"code": code})["Location"] == "/staff/"
    client.post(LOGOUT)

    enter_password(client, "alice")
    response = client.post(CODE, {"code": code})
    assert response.status_code == 200
    assert (
        "This code was already used. Please wait for the next code in your app."
        in response.content.decode()
    )
    assert events(EventType.OTP_FAILED)[-1].details["reason"] == "code already used"


def test_it_refuses_an_expired_code(client, alice):
    enter_password(client, "alice")
    response = client.post(CODE, {"code": totp_code(totp_device(alice), steps=-5)})
    assert "The code is wrong or has expired." in response.content.decode()
    assert client.get("/staff/").status_code == 302


def test_it_says_when_the_app_codes_are_paused_after_wrong_codes(client, alice, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # a pause long enough for a slow test machine
    device = totp_device(alice)
    enter_password(client, "alice")
    client.post(CODE, {"code": wrong_code(device)})
    # django-otp pauses after each wrong code (factor × 1, 2, 4 ... s); even a right one waits.
    response = client.post(CODE, {"code": totp_code(device)})
    assert "Too many wrong codes in a row. Please wait" in response.content.decode()
    assert events(EventType.OTP_FAILED)[-1].details["reason"] == "device paused after failed codes"


def test_it_returns_to_the_page_asked_for(client, alice):
    response = enter_password(client, "alice", next="/admin/")
    assert response["Location"] == f"{CODE}?next=%2Fadmin%2F"
    response = client.post(f"{CODE}?next=%2Fadmin%2F", {"code": totp_code(totp_device(alice))})
    assert response["Location"] == "/admin/"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "https:/evil.example", "javascript:x"]
)
def test_it_ignores_a_next_address_on_another_site(client, alice, target):
    response = enter_password(client, "alice", next=target)
    assert response["Location"] == CODE
    response = client.post(f"{CODE}?next={target}", {"code": totp_code(totp_device(alice))})
    assert response["Location"] == "/staff/"


def test_it_sends_a_signed_in_user_onwards_from_the_login_page(client, alice):
    sign_in_verified(client, alice)
    assert client.get(LOGIN)["Location"] == "/staff/"
    assert client.get(CODE)["Location"] == "/staff/"


def test_it_signs_out(client, alice):
    sign_in_verified(client, alice)
    response = client.post(LOGOUT, follow=True)
    assert response.redirect_chain[-1][0] == LOGIN
    assert "You have signed out." in response.content.decode()
    assert client.get("/staff/")["Location"].startswith(LOGIN)
    [event] = events(EventType.SIGNED_OUT)
    assert event.actor_id == alice.pk


def test_it_signs_out_only_by_post(client, alice):
    sign_in_verified(client, alice)
    assert client.get(LOGOUT).status_code == 405
    assert client.get("/staff/").status_code == 200
    assert not events(EventType.SIGNED_OUT)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"username": "alice"},
        {"password": PASSWORD},
        {"username": "a" * 5000, "password": PASSWORD},
        {"username": "alice", "password": "p" * 5000},
        {"username": "al\x00ice", "password": PASSWORD},
    ],
)
def test_it_answers_bad_password_input_with_a_form_error(client, alice, data):
    response = client.post(LOGIN, data)
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert client.get(CODE)["Location"] == LOGIN


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "abc", "x" * 5000, "١٢٣٤٥٦", "12345\x00", "<script>"]
)
def test_it_answers_a_malformed_code_with_a_form_error(client, alice, code):
    sign_in_password_only(client, alice)
    response = client.post(CODE, {"code": code})
    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert client.get("/staff/").status_code == 302


def test_it_speaks_german_by_default(client, alice):
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
    # German even for a browser set to English: English is chosen with the switch only.
    page = client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert 'lang="de"' in page
    assert "Benutzername" in page
    response = enter_password(client, "alice", "not-the-password")
    assert "Benutzername oder Passwort ist falsch." in response.content.decode()


def test_the_language_switch_works_without_javascript(client, alice):
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
    response = client.post("/i18n/setlang/", {"language": "en", "next": LOGIN}, follow=True)
    assert "User name" in response.content.decode()
    response = client.post("/i18n/setlang/", {"language": "de", "next": LOGIN}, follow=True)
    assert "Benutzername" in response.content.decode()


def test_it_speaks_english_with_the_language_cookie(client, alice):
    page = client.get(LOGIN).content.decode()
    assert 'lang="en"' in page
    assert "User name" in page
    assert "Benutzername" not in page
