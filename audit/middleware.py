"""django-auditlog's request context, with the client IP from our trusted-proxy resolver."""

from auditlog.middleware import AuditlogMiddleware

from portal import client_ip


class AuditlogContextMiddleware(AuditlogMiddleware):
    @staticmethod
    def _get_remote_addr(request):
        return client_ip.for_request(request).ip
