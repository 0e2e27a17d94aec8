from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from audit.event_types import EventType
from portal.health import may_see_details, run_checks
from portal.request_audit import record_for_request
from portal.roles import role_of
from portal.staff_access import staff_required


@require_GET
@never_cache
def healthz(request):
    checks = run_checks()
    healthy = all(result["ok"] for result in checks.values())
    body = {"status": "ok" if healthy else "fail"}
    if may_see_details(request):
        body["checks"] = checks
    return JsonResponse(body, status=200 if healthy else 503)


@staff_required
def staff_home(request):
    return render(request, "portal/staff_home.html", {"roles": role_of(request.user)})


def csrf_failure(request, reason: str = ""):
    """A form without a valid CSRF token: a clear page instead of Django's, and an audit event."""
    record_for_request(request, event_type=EventType.CSRF_FAILED,
                       details={"path": request.path[:200], "reason": reason[:200]})
    return render(request, "portal/csrf_failure.html", status=403)
