from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.health import run_checks
from portal.roles import role_of
from portal.staff_access import staff_required


@require_GET
@never_cache
def healthz(request):
    checks = run_checks()
    healthy = all(result["ok"] for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "fail", "checks": checks}, status=200 if healthy else 503
    )


@staff_required
def staff_home(request):
    return render(request, "portal/staff_home.html", {"roles": role_of(request.user)})
