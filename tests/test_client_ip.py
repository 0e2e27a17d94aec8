"""The client IP resolver: X-Forwarded-For only from trusted proxies."""

import ipaddress

import pytest
from django.test import RequestFactory

from audit.models import AuditEvent
from portal.client_ip import for_request, for_scope, of, resolve
from portal.request_audit import record_for_request

PROXY = "10.0.0.5"


@pytest.fixture(autouse=True)
def _trust_proxy(settings):
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/24")]


def test_it_uses_the_peer_without_a_header():
    assert resolve("203.0.113.7", None).ip == "203.0.113.7"


def test_it_ignores_and_reports_a_header_from_an_untrusted_peer():
    address = resolve("203.0.113.7", "198.51.100.1")
    assert address.ip == "203.0.113.7"
    assert address.ignored_forwarded_for == "198.51.100.1"


def test_it_believes_a_trusted_proxy():
    assert resolve(PROXY, "198.51.100.1").ip == "198.51.100.1"


def test_it_takes_the_right_most_untrusted_hop():
    # The client forged the first entry; our proxies appended the rest.
    address = resolve(PROXY, "1.2.3.4, 198.51.100.1, 10.0.0.9")
    assert address.ip == "198.51.100.1"


def test_a_malformed_hop_falls_back_to_the_last_trusted_address():
    address = resolve(PROXY, "not-an-ip, 10.0.0.9")
    assert address.ip == "10.0.0.9" and address.ignored_forwarded_for


def test_it_reads_ports_and_ipv6():
    assert resolve(PROXY, "[2001:db8::7]:4711").ip == "2001:db8::7"
    assert resolve(PROXY, "198.51.100.1:4711").ip == "198.51.100.1"
    assert resolve("::1", None).ip == "::1"


def test_requests_and_websocket_scopes_resolve_alike():
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1")
    scope = {"client": [PROXY, 5000], "headers": [(b"x-forwarded-for", b"198.51.100.1")]}
    assert for_request(request).ip == for_scope(scope).ip == of(request) == "198.51.100.1"


def test_a_forged_header_is_kept_in_the_security_event(db):
    request = RequestFactory().post(
        "/staff/login/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="127.0.0.1"
    )
    request.user = None
    record_for_request(request, event_type="staff.password_failed")
    event = AuditEvent.objects.get()
    assert event.client_ip == "203.0.113.7"
    assert event.details["ignored_x_forwarded_for"] == "127.0.0.1"


@pytest.fixture
def behind_tls_proxy(settings):
    """Production's TLS settings, with the trusted proxy's X-Forwarded-Proto."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True


def test_the_trusted_proxy_s_forwarded_proto_makes_the_request_secure(client, behind_tls_proxy):
    response = client.get("/staff/login/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response.wsgi_request.is_secure()


def test_a_forwarded_proto_from_anyone_else_is_dropped(client, behind_tls_proxy):
    response = client.get("/staff/login/", REMOTE_ADDR="203.0.113.7",
                          HTTP_X_FORWARDED_PROTO="https")
    # Not secure: the HTTPS redirect applies, as to any plain request.
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert "HTTP_X_FORWARDED_PROTO" not in response.wsgi_request.META
