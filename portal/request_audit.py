"""Auditing a request: the client address from the trusted-proxy resolver, for our audit events
and for django-auditlog's change log. Here, not in ``audit``, which imports no other app."""

from auditlog.middleware import AuditlogMiddleware

from audit.events import Actor, record
from audit.models import AuditEvent
from portal import client_ip


def record_for_request(
    request,
    *,
    event_type: str,
    actor: Actor | None = None,
    session_ref: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Append an event about a request: the actor is the signed-in user, the IP resolved."""
    address = client_ip.for_request(request)
    if actor is None:
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        actor = Actor.staff(user) if signed_in else Actor.anonymous()
    details = dict(details or {})
    if address.ignored_forwarded_for:
        details["ignored_x_forwarded_for"] = address.ignored_forwarded_for
    return record(
        event_type=event_type,
        actor=actor,
        ip=address.ip,
        session_ref=session_ref,
        details=details,
    )


class AuditlogContextMiddleware(AuditlogMiddleware):
    """django-auditlog's request context, with the client IP from our resolver."""

    @staticmethod
    def _get_remote_addr(request):
        return client_ip.for_request(request).ip
