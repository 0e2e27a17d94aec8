"""Backup codes: issued and shown once, each good for one sign-in, replaced on request."""

import re

import pytest
from django.conf import settings
from django_otp.plugins.otp_static.models import StaticToken

from audit.event_types import EventType
from tests.personas import PASSWORD, events, sign_in_password_only, sign_in_verified

pytestmark = pytest.mark.usefixtures("english")

LOGIN = "/staff/login/"
CODE = "/staff/login/code/"
BACKUP_CODES = "/staff/backup-codes/"
SHOWN_CODE = re.compile(r"<code>([a-z2-7]{4}-[a-z2-7]{4})</code>")




def issue_codes(client, user) -> list[str]:
    """Alice asks for new backup codes on her page and notes them down; then signs out."""
    sign_in_verified(client, user)
    response = client.post(BACKUP_CODES, {"password": PASSWORD}, follow=True)
    codes = SHOWN_CODE.findall(response.content.decode())
    client.post("/staff/logout/")
    return codes


def sign_in_with(client, user, code):
    client.post(LOGIN, {"username": user.username, "password": PASSWORD})
    return client.post(CODE, {"code": code}, follow=True)


def test_it_issues_codes_and_shows_them_once(client, alice):
    sign_in_verified(client, alice)
    response = client.post(BACKUP_CODES, {"password": PASSWORD})
    assert response["Location"] == BACKUP_CODES
    codes = SHOWN_CODE.findall(client.get(BACKUP_CODES).content.decode())
    assert len(set(codes)) == settings.BACKUP_CODE_COUNT
    assert not SHOWN_CODE.findall(client.get(BACKUP_CODES).content.decode())
    [issued] = events(EventType.BACKUP_CODES_ISSUED)
    assert issued.details == {"count": settings.BACKUP_CODE_COUNT}


def test_it_signs_in_with_a_backup_code_once(client, alice):
    code = issue_codes(client, alice)[0]

    response = sign_in_with(client, alice, code)
    assert response.redirect_chain[-1][0] == "/staff/"
    assert "You signed in with a backup code. 9 backup codes are left." in (
        response.content.decode()
    )
    [used] = events(EventType.BACKUP_CODE_USED)
    assert used.details == {"remaining": 9}
    assert events(EventType.SIGNIN_SUCCEEDED)[-1].details["method"] == "backup_code"

    client.post("/staff/logout/")
    response = sign_in_with(client, alice, code)
    assert "This backup code is wrong or was already used." in response.content.decode()
    assert client.get("/staff/").status_code == 302
    assert events(EventType.OTP_FAILED)[-1].details["reason"] == "wrong backup code"


def test_it_accepts_a_backup_code_in_capitals_and_without_the_dash(client, alice):
    code = issue_codes(client, alice)[0]
    response = sign_in_with(client, alice, code.replace("-", "").upper())
    assert response.redirect_chain[-1][0] == "/staff/"


def test_it_warns_when_few_backup_codes_are_left(client, alice):
    codes = issue_codes(client, alice)
    StaticToken.objects.filter(token__in=[c.replace("-", "") for c in codes[4:]]).delete()

    response = sign_in_with(client, alice, codes[0])
    assert (
        "Only 3 backup codes are left – please issue new backup codes soon."
        in response.content.decode()
    )


def test_it_warns_after_the_last_backup_code(client, alice):
    codes = issue_codes(client, alice)
    StaticToken.objects.filter(token__in=[c.replace("-", "") for c in codes[1:]]).delete()
    response = sign_in_with(client, alice, codes[0])
    assert "You used your last backup code." in response.content.decode()


def test_it_replaces_all_earlier_codes_with_new_ones(client, alice):
    old = issue_codes(client, alice)
    new = issue_codes(client, alice)
    assert not set(old) & set(new)
    response = sign_in_with(client, alice, new[0])
    assert response.redirect_chain[-1][0] == "/staff/"
    client.post("/staff/logout/")
    response = sign_in_with(client, alice, old[0])
    assert "This backup code is wrong or was already used." in response.content.decode()


def test_it_keeps_backup_codes_from_a_password_only_session(client, alice):
    sign_in_password_only(client, alice)
    assert client.get(BACKUP_CODES)["Location"].startswith(CODE)
    assert client.post(BACKUP_CODES, {"password": PASSWORD})["Location"].startswith(CODE)
    assert not events(EventType.BACKUP_CODES_ISSUED)


def test_it_does_not_accept_another_users_backup_code(client, alice, bob):
    code = issue_codes(client, alice)[0]
    response = sign_in_with(client, bob, code)
    assert "This backup code is wrong or was already used." in response.content.decode()
    assert client.get("/staff/").status_code == 302


def test_new_backup_codes_need_the_password_again(client, alice):
    """Someone at an unattended, signed-in browser cannot walk away with fresh codes."""
    sign_in_verified(client, alice)
    page = client.get(BACKUP_CODES).content.decode()
    assert 'name="password"' in page and 'autocomplete="current-password"' in page
    for posted in ({}, {"password": "not-her-password"}):
        response = client.post(BACKUP_CODES, posted)
        assert response.status_code == 200
        assert not SHOWN_CODE.findall(response.content.decode())
    assert "The password is wrong." in response.content.decode()
    assert not events(EventType.BACKUP_CODES_ISSUED)
    [failed] = events(EventType.PASSWORD_FAILED)
    assert failed.actor_id == alice.pk
    assert failed.details["step"] == "re-authentication"


def test_wrong_passwords_at_re_authentication_are_throttled(client, alice, settings):
    sign_in_verified(client, alice)
    for _ in range(settings.SIGNIN_FAILURES_PER_USER):
        client.post(BACKUP_CODES, {"password": "not-her-password"})
    response = client.post(BACKUP_CODES, {"password": PASSWORD})
    assert "Too many failed attempts." in response.content.decode()
    assert not events(EventType.BACKUP_CODES_ISSUED)
    assert events(EventType.SIGNIN_THROTTLED)[0].details["step"] == "re-authentication"
