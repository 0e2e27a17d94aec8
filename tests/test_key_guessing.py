"""Key guessing: every key is counted before it is checked, per address (IPv6 per /64) and
across all addresses; the adviser on the phone can let their customer in past the blocks."""

import re
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.event_types import EventType
from consent.views import HELP_CODE
from portal.address_buckets import bucket
from portal.roles import SUPPORT_STAFF
from sessions_app import actions
from sessions_app.models import KeyState, SessionState
from tests.personas import events, make_staff, sign_in_verified
from tests.processes import child_env, free_port, http_status, start, stop, wait_until
from tests.sessions import schedule

pytestmark = pytest.mark.usefixtures("office_open", "english_messages")

LANDING = reverse("customer-landing")
GUESSES = 40
WRONG_KEY = "This key does not open a session."
ADDRESS_BLOCKED = "Too many wrong keys from your network."
BLOCKED_FOR_EVERYONE = "key entry is paused for everyone"


def english_browser(ip="203.0.113.7"):
    browser = Client(REMOTE_ADDR=ip, HTTP_USER_AGENT="Firefox 140")
    browser.cookies["django_language"] = "en"
    return browser


def enter(browser, key, name="Erika Muster"):
    return browser.post(LANDING, {"key": key, "name": name})


def issue(user=None):
    """A session with a live key, for ``user`` or for a new colleague (one open slot each)."""
    if user is None:
        user = make_staff(f"colleague{secrets.token_hex(3)}", SUPPORT_STAFF)
    session = schedule(user)
    key, _ = actions.issue_key(session=session, by_user=user)
    return session, key


def wrong_keys(*right: str):
    """Seven-digit keys that open nothing."""
    n = 0
    while True:
        candidate = f"{9_000_000 + n:07d}"
        n += 1
        if candidate not in right:
            yield candidate


def adviser_browser(user):
    browser = Client(REMOTE_ADDR="10.1.2.3")
    browser.cookies["django_language"] = "en"
    sign_in_verified(browser, user)
    return browser


@pytest.fixture
def lift(django_capture_on_commit_callbacks):
    """The adviser enters the help code; the lift takes effect when that commits."""

    def lift(adviser, session, code):
        with django_capture_on_commit_callbacks(execute=True):
            return adviser.post(reverse("session-lift-block", args=[session.reference]),
                                {"help_code": code}, follow=True)

    return lift


# --- Counting before checking -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_keys_from_one_address_check_at_most_the_limit(alice, settings):
    session, key = issue(alice)
    start = threading.Barrier(GUESSES)
    guesses = wrong_keys(key)
    keys_to_try = [next(guesses) for _ in range(GUESSES)]
    statuses: list[int] = []

    def guess(typed: str) -> None:
        try:
            browser = english_browser()
            start.wait()
            statuses.append(enter(browser, typed).status_code)
        except Exception as error:  # pragma: no cover - shown in the assertion
            statuses.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(typed,)) for typed in keys_to_try]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    limit = settings.KEY_FAILURES_PER_IP
    assert sorted(statuses) == [400] * limit + [429] * (GUESSES - limit), statuses
    # Only the keys that were counted within the limit were looked up at all.
    assert len(events(EventType.KEY_REDEMPTION_FAILED)) == limit
    assert events(EventType.KEY_REDEMPTION_THROTTLED)[0].client_ip == "203.0.113.7"
    assert session.keys.get().state == KeyState.LIVE


ALWAYS_OPEN = "mon-sun 00:00-23:59:59"


@pytest.fixture
def daphne(tmp_path, transactional_db):
    """A real daphne process of the portal, open around the clock, on this test's database."""
    port = free_port()
    log = tmp_path / "daphne.log"
    env = child_env(PORTAL_OPENING_HOURS=ALWAYS_OPEN, PORTAL_HOLIDAY_STATE="none")
    process = start(["-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                     "portal.asgi:application"], env, log)
    try:
        wait_until(lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200, timeout=60,
                   what="daphne", log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def browser_with_form(base: str):
    """A browser that has opened the landing page: its cookies and the form's CSRF token."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{base}/", timeout=30) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    return opener, token


def post_key(base: str, opener, token: str, key: str) -> int:
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "key": key, "name": "Mallory"}).encode()
    try:
        with opener.open(f"{base}/", data=body, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.skipif(
    "RedisCache" not in django_settings.CACHES["default"]["BACKEND"],
    reason="the test process reads the daphne process's counters and database only on "
           "PostgreSQL and Redis",
)
def test_concurrent_wrong_keys_over_http_to_daphne_check_at_most_the_limit(daphne):
    browsers = [browser_with_form(daphne) for _ in range(GUESSES)]
    guesses = wrong_keys()
    keys_to_try = [next(guesses) for _ in range(GUESSES)]
    start_line = threading.Barrier(GUESSES)
    statuses: list[int] = []

    def guess(browser, typed: str) -> None:
        try:
            start_line.wait()
            statuses.append(post_key(daphne, *browser, typed))
        except Exception as error:  # pragma: no cover - shown in the assertion
            statuses.append(repr(error))

    threads = [threading.Thread(target=guess, args=pair)
               for pair in zip(browsers, keys_to_try, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    limit = django_settings.KEY_FAILURES_PER_IP
    assert sorted(statuses) == [400] * limit + [429] * (GUESSES - limit), statuses
    assert len(events(EventType.KEY_REDEMPTION_FAILED)) == limit


def test_a_right_key_does_not_count_against_the_address(alice, settings):
    browser = english_browser()
    for _ in range(settings.KEY_FAILURES_PER_IP + 2):
        session, key = issue(alice)
        assert enter(browser, key).status_code == 302
        actions.end_by_staff(session=session, by_user=alice)
    _, key = issue(alice)
    guesses = wrong_keys(key)
    for _ in range(settings.KEY_FAILURES_PER_IP):
        assert enter(browser, next(guesses)).status_code == 400
    assert enter(browser, key).status_code == 429


# --- IPv6 per /64 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:0db8:0001:0002::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_ipv4_counts_per_address_and_ipv6_per_64(address, expected):
    assert bucket(address) == expected


def test_wrong_keys_from_one_ipv6_64_block_the_whole_64(alice, settings):
    _, key = issue(alice)
    guesses = wrong_keys(key)
    for n in range(settings.KEY_FAILURES_PER_IP):
        assert enter(english_browser(f"2001:db8:1:2::{n + 1:x}"), next(guesses)).status_code == 400

    assert enter(english_browser("2001:db8:1:2:ffff:ffff:ffff:ffff"), key).status_code == 429
    assert enter(english_browser("2001:db8:1:3::1"), key).status_code == 302  # another /64


def test_the_customer_page_limit_counts_ipv6_per_64(db, settings):
    settings.CUSTOMER_REQUESTS_PER_MINUTE = 10
    for n in range(10):
        assert english_browser(f"2001:db8:7:7::{n + 1:x}").get(LANDING).status_code == 200
    assert english_browser("2001:db8:7:7::beef").get(LANDING).status_code == 429
    assert english_browser("2001:db8:7:8::1").get(LANDING).status_code == 200


# --- The global limit ----------------------------------------------------------------------


def test_past_the_global_limit_key_entry_stops_for_everyone_until_the_window_ends(
    alice, settings, office_open
):
    settings.KEY_FAILURES_GLOBAL = 4
    settings.KEY_GLOBAL_WINDOW = 10 * 60
    _, key = issue(alice)
    guesses = wrong_keys(key)
    for n in range(4):
        assert enter(english_browser(f"198.51.100.{n + 1}"), next(guesses)).status_code == 400

    for n in range(3):  # the right key from a fresh address: refused without being checked
        response = enter(english_browser(f"192.0.2.{n + 1}"), key)
        assert response.status_code == 429
        assert BLOCKED_FOR_EVERYONE in response.text
        assert "Your help code" in response.text
        assert int(response["Retry-After"]) <= 10 * 60
    [blocked] = events(EventType.KEY_ENTRY_BLOCKED_GLOBALLY)
    assert blocked.details["threshold"] == 4 and blocked.details["failures_in_window"] == 4
    assert len(events(EventType.KEY_REDEMPTION_FAILED)) == 4
    assert [e.details["limit"] for e in events(EventType.KEY_REDEMPTION_THROTTLED)] == [
        "global"] * 3

    office_open.shift(10 * 60)  # the next window
    _, key = issue()
    assert enter(english_browser("192.0.2.1"), key).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_keys_from_many_addresses_check_at_most_the_global_limit(
    alice, settings
):
    settings.KEY_FAILURES_GLOBAL = 7
    _, key = issue(alice)
    guesses = wrong_keys(key)
    keys_to_try = [next(guesses) for _ in range(GUESSES)]
    start = threading.Barrier(GUESSES)
    statuses: list[int] = []

    def guess(n: int, typed: str) -> None:
        try:
            browser = english_browser(f"198.51.100.{n + 1}")
            start.wait()
            statuses.append(enter(browser, typed).status_code)
        except Exception as error:  # pragma: no cover - shown in the assertion
            statuses.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=pair) for pair in enumerate(keys_to_try)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [400] * 7 + [429] * (GUESSES - 7), statuses
    assert len(events(EventType.KEY_REDEMPTION_FAILED)) == 7
    assert len(events(EventType.KEY_ENTRY_BLOCKED_GLOBALLY)) == 1


# --- The adviser lets their customer in ----------------------------------------------------


def block_the_network(settings, key, ip="203.0.113.7"):
    """A guesser behind the customer's address uses up its wrong keys."""
    guesser = english_browser(ip)
    guesses = wrong_keys(key)
    for _ in range(settings.KEY_FAILURES_PER_IP):
        assert enter(guesser, next(guesses)).status_code == 400
    return guesser


def test_the_adviser_lets_the_customer_in_past_a_guesser_on_the_same_network(alice, settings, lift):
    session, key = issue(alice)
    other_session, other_key = issue()
    guesser = block_the_network(settings, key)
    customer = english_browser()

    refused = enter(customer, key)
    assert refused.status_code == 429 and ADDRESS_BLOCKED in refused.text
    code = customer.session[HELP_CODE]
    assert f"{code[:3]} {code[3:]}" in refused.text

    # On the phone, the customer reads the help code to the adviser, who lifts the block.
    page = lift(adviser_browser(alice), session, f"{code[:3]} {code[3:]}")
    assert "The block is lifted for this session" in page.text
    [lifted] = events(EventType.KEY_BLOCK_LIFTED)
    assert lifted.session_ref == session.reference
    assert lifted.details["customer_ip"] == "203.0.113.7"
    assert lifted.actor_label.startswith("alice")

    # The guesser gains nothing: no help code of theirs was lifted.
    assert enter(guesser, key).status_code == 429
    # The customer's browser: a wrong key is refused and counted, and so is another session's.
    failures_before = len(events(EventType.KEY_REDEMPTION_FAILED))
    assert WRONG_KEY in enter(customer, next(wrong_keys(key, other_key))).text
    assert WRONG_KEY in enter(customer, other_key).text
    assert other_session.keys.get().state == KeyState.LIVE
    assert len(events(EventType.KEY_REDEMPTION_FAILED)) == failures_before + 2
    # Its own session's key opens it.
    response = enter(customer, key)
    assert response.status_code == 302 and response["Location"] == reverse("customer-adviser")
    session.refresh_from_db()
    assert session.state == SessionState.CUSTOMER_WAITING
    assert events(EventType.KEY_REDEEMED)[-1].details["block_lifted"] is True


def test_a_lift_lets_the_browser_past_a_global_block_too(alice, settings, lift):
    settings.KEY_FAILURES_GLOBAL = 2
    session, key = issue(alice)
    guesses = wrong_keys(key)
    for n in range(2):
        enter(english_browser(f"198.51.100.{n + 1}"), next(guesses))
    customer = english_browser("192.0.2.44")
    assert BLOCKED_FOR_EVERYONE in enter(customer, key).text
    adviser = adviser_browser(alice)
    page = adviser.get(reverse("session-page", args=[session.reference])).text
    assert "Key entry is paused for everyone after many wrong keys." in page

    lift(adviser, session, customer.session[HELP_CODE])
    assert enter(customer, key).status_code == 302


def test_a_lift_allows_only_a_few_tries(alice, settings, lift):
    session, key = issue(alice)
    block_the_network(settings, key)
    customer = english_browser()
    enter(customer, key)
    lift(adviser_browser(alice), session, customer.session[HELP_CODE])
    guesses = wrong_keys(key)
    for _ in range(3):
        assert enter(customer, next(guesses)).status_code == 400
    assert enter(customer, key).status_code == 429
    assert session.keys.get().state == KeyState.LIVE


def test_an_unknown_help_code_lifts_nothing(alice, settings, lift):
    session, key = issue(alice)
    block_the_network(settings, key)
    customer = english_browser()
    enter(customer, key)
    code = customer.session[HELP_CODE]
    typo = f"{(int(code) + 1) % 10**6:06d}"
    page = lift(adviser_browser(alice), session, typo)
    assert "page shows this help code." in page.text
    assert events(EventType.KEY_BLOCK_LIFTED) == []
    assert enter(customer, key).status_code == 429


def test_only_the_assigned_adviser_can_lift(alice, settings):
    erik = make_staff("erik", SUPPORT_STAFF)
    session, key = issue(alice)
    block_the_network(settings, key)
    customer = english_browser()
    enter(customer, key)
    response = adviser_browser(erik).post(
        reverse("session-lift-block", args=[session.reference]),
        {"help_code": customer.session[HELP_CODE]})
    assert response.status_code in (403, 404)
    assert events(EventType.KEY_BLOCK_LIFTED) == []


def test_the_lift_form_is_on_the_session_page_in_german(alice):
    session, _ = issue(alice)
    browser = Client()
    sign_in_verified(browser, alice)
    page = browser.get(reverse("session-page", args=[session.reference])).text
    assert "Sperre für diese Sitzung aufheben" in page
