"""The one place that decides a client's IP address, and whether its request came over HTTPS.

``X-Forwarded-For`` is believed only when the direct peer is one of ``TRUSTED_PROXIES``; then the
right-most address that is not itself a trusted proxy is the client. From anyone else the header
is ignored and reported, so that a forged header can be noted in security events.
``X-Forwarded-Proto`` likewise: ``ForwardedProtoMiddleware`` drops it from any other peer
before Django's ``SECURE_PROXY_SSL_HEADER`` reads it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ClientAddress:
    ip: str | None
    ignored_forwarded_for: str | None = None  # a header we did not believe


def _parse(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _is_trusted(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in network for network in settings.TRUSTED_PROXIES)


def resolve(peer: str | None, forwarded_for: str | None) -> ClientAddress:
    """Client address from the direct peer and its X-Forwarded-For header, if any."""
    peer_ip = _parse(peer) if peer else None
    if not forwarded_for:
        return ClientAddress(peer_ip)
    if peer_ip is None or not _is_trusted(peer_ip):
        return ClientAddress(peer_ip, ignored_forwarded_for=forwarded_for[:512])
    for hop in reversed(forwarded_for.split(",")):
        hop_ip = _parse(hop)
        if hop_ip is None:
            # A malformed hop means we cannot know who is behind it: use what we last trusted.
            return ClientAddress(peer_ip, ignored_forwarded_for=forwarded_for[:512])
        if not _is_trusted(hop_ip):
            return ClientAddress(hop_ip)
        peer_ip = hop_ip
    return ClientAddress(peer_ip)


def for_request(request) -> ClientAddress:
    return resolve(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))


def of(request) -> str | None:
    """The client's IP address of a request, for audit events and limits."""
    return for_request(request).ip


def for_scope(scope) -> ClientAddress:
    """Client address of a Channels (ASGI) connection scope."""
    client = scope.get("client") or (None, None)
    forwarded = None
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
    return resolve(client[0], forwarded)


def peer_is_trusted_proxy(peer: str | None) -> bool:
    """Whether the direct peer is one of ``TRUSTED_PROXIES``."""
    peer_ip = _parse(peer) if peer else None
    return peer_ip is not None and _is_trusted(peer_ip)


class ForwardedProtoMiddleware:
    """Drop ``X-Forwarded-Proto`` unless the direct peer is a trusted proxy.

    Django believes SECURE_PROXY_SSL_HEADER from any peer; a client that reaches daphne around
    the proxy could otherwise pass as HTTPS (secure redirect skipped, CSRF's referer check).
    First in MIDDLEWARE, so that nothing reads the header before.
    """

    HEADER = "HTTP_X_FORWARDED_PROTO"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self.HEADER in request.META and not peer_is_trusted_proxy(
            request.META.get("REMOTE_ADDR")
        ):
            del request.META[self.HEADER]
        return self.get_response(request)
