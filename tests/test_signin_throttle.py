"""Too many failed passwords or codes block sign-in, per user name and per address."""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from audit.event_types import EventType
from tests.personas import PASSWORD, events, totp_code, totp_device

pytestmark = pytest.mark.usefixtures("english")

LOGIN = "/staff/login/"
CODE = "/staff/login/code/"
THROTTLED_EN = "Too many failed attempts. Please wait 15 minutes or ask an administrator."



@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.SIGNIN_FAILURES_PER_USER = 3
    settings.SIGNIN_FAILURES_PER_IP = 5
    settings.SIGNIN_FAILURE_WINDOW = 15 * 60
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # only our own throttle in these tests
    return settings



def enter_password(client, username, password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def fail_passwords(client, username, times, **extra):
    for _ in range(times):
        response = enter_password(client, username, "not-the-password", **extra)
        assert "Wrong user name or password." in response.content.decode()


def wrong_code(device) -> str:
    current = {totp_code(device, steps=steps) for steps in range(-3, 4)}
    return next(code for code in ("123456", "654321", "111111") if code not in current)


def test_it_refuses_even_the_right_password_after_too_many_failures(client, alice):
    fail_passwords(client, "alice", 3)

    response = enter_password(client, "alice")
    assert response.status_code == 200
    assert THROTTLED_EN in response.content.decode()
    assert client.get(CODE)["Location"] == LOGIN

    [throttled] = events(EventType.SIGNIN_THROTTLED)
    assert throttled.details == {"username": "alice", "step": "password", "limit": "user"}
    assert len(events(EventType.PASSWORD_FAILED)) == 3


def test_it_writes_one_event_per_refused_attempt(client, alice):
    fail_passwords(client, "alice", 3)
    for _ in range(2):
        enter_password(client, "alice")
    assert len(events(EventType.SIGNIN_THROTTLED)) == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_passwords_check_at_most_the_limit(alice):
    attempts = 40
    start = threading.Barrier(attempts)
    answers: list[str] = []

    def attempt() -> None:
        try:
            browser = Client()
            browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
            start.wait()
            answers.append(enter_password(browser, "alice", "not-the-password").content.decode())
        except Exception as error:  # pragma: no cover - shown in the assertion
            answers.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    wrong = [a for a in answers if "Wrong user name or password." in a]
    throttled = [a for a in answers if THROTTLED_EN in a]
    assert (len(wrong), len(throttled)) == (3, attempts - 3)
    # Only the attempts counted within the limit had their password checked.
    assert len(events(EventType.PASSWORD_FAILED)) == 3
    assert len(events(EventType.SIGNIN_THROTTLED)) == attempts - 3


def test_right_passwords_do_not_use_up_the_address(alice, small_limits):
    for _ in range(small_limits.SIGNIN_FAILURES_PER_IP + 2):
        assert enter_password(Client(), "alice")["Location"] == CODE


def test_it_counts_an_ipv6_address_with_its_whole_64(client, alice):
    for n, name in enumerate(("anna", "bert", "cleo", "dora", "emil")):
        fail_passwords(client, name, 1, REMOTE_ADDR=f"2001:db8:5:6::{n + 1:x}")

    response = enter_password(client, "alice", REMOTE_ADDR="2001:db8:5:6:abcd::1")
    assert THROTTLED_EN in response.content.decode()
    assert events(EventType.SIGNIN_THROTTLED)[-1].details["limit"] == "ip"
    assert enter_password(client, "alice", REMOTE_ADDR="2001:db8:5:7::1")["Location"] == CODE


def test_it_blocks_only_the_user_name_that_failed(client, alice, bob):
    fail_passwords(client, "alice", 3)
    response = enter_password(client, "bob")
    assert response["Location"] == CODE


def test_it_blocks_an_address_that_tries_many_user_names(client, alice):
    for name in ("anna", "bert", "cleo", "dora", "emil"):
        fail_passwords(client, name, 1)

    response = enter_password(client, "alice")
    assert THROTTLED_EN in response.content.decode()
    assert events(EventType.SIGNIN_THROTTLED)[-1].details["limit"] == "ip"

    elsewhere = enter_password(client, "alice", REMOTE_ADDR="192.0.2.7")
    assert elsewhere["Location"] == CODE


def test_it_counts_wrong_codes_too(client, alice):
    device = totp_device(alice)
    enter_password(client, "alice")
    for _ in range(3):
        response = client.post(CODE, {"code": wrong_code(device)})
        assert "The code is wrong or has expired." in response.content.decode()

    response = client.post(CODE, {"code": totp_code(device)})
    assert THROTTLED_EN in response.content.decode()
    assert client.get("/staff/").status_code == 302
    assert events(EventType.SIGNIN_THROTTLED)[-1].details["step"] == "code"


def test_it_does_not_forgive_the_address_after_a_successful_sign_in(client, alice, bob):
    fail_passwords(client, "mallory", 2)
    fail_passwords(client, "oscar", 2)
    enter_password(client, "alice")
    assert client.post(CODE, {"code": totp_code(totp_device(alice))})["Location"] == "/staff/"
    client.post("/staff/logout/")

    fail_passwords(client, "bob", 1)
    response = enter_password(client, "bob")
    assert THROTTLED_EN in response.content.decode()


def test_it_forgives_the_user_after_a_successful_sign_in(client, alice):
    fail_passwords(client, "alice", 2)
    enter_password(client, "alice")
    assert client.post(CODE, {"code": totp_code(totp_device(alice))})["Location"] == "/staff/"
    client.post("/staff/logout/")

    fail_passwords(client, "alice", 2)
    assert enter_password(client, "alice")["Location"] == CODE


def test_it_names_the_waiting_time_from_the_settings(client, alice, small_limits):
    small_limits.SIGNIN_FAILURE_WINDOW = 10 * 60
    fail_passwords(client, "alice", 3)
    response = enter_password(client, "alice")
    assert "Please wait 10 minutes or ask an administrator." in response.content.decode()


def test_it_lets_the_user_in_again_after_the_window(client, alice, small_limits):
    small_limits.SIGNIN_FAILURE_WINDOW = 1
    fail_passwords(client, "alice", 3)
    assert "Too many failed attempts." in enter_password(client, "alice").content.decode()
    time.sleep(1.2)
    assert enter_password(client, "alice")["Location"] == CODE


def test_it_says_so_in_german(client, alice):
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
    for _ in range(3):
        enter_password(client, "alice", "falsch")
    response = enter_password(client, "alice")
    assert "Zu viele fehlgeschlagene Versuche." in response.content.decode()
