"""Staff sign-in: the password, then a code (or setting up the authenticator app), and sign-out.

The checks, the throttle and the audit events live in ``portal.two_factor``; these views only
move the browser from step to step and log the user in.
"""

from urllib.parse import urlencode

import django_otp
from django.conf import settings
from django.contrib import auth, messages
from django.db import transaction
from django.shortcuts import redirect, render, resolve_url
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from audit.event_types import EventType
from audit.events import Actor
from portal import throttle, two_factor
from portal.forms import (
    CodeForm,
    EnrolmentCodeForm,
    EnrolmentForm,
    PasswordForm,
    ReauthenticationForm,
)
from portal.request_audit import record_for_request
from portal.staff_access import close_staff_sockets, staff_required
from portal.two_factor import Outcome

# New backup codes wait here between being issued and being shown, once.
BACKUP_CODES_SESSION_KEY = "portal_backup_codes_to_show"
NEXT_MAX_LENGTH = 2000


def _safe_next(request) -> str:
    """The ``next`` address if it stays on this site, else ""."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    if len(url) <= NEXT_MAX_LENGTH and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


def _step(name: str, next_url: str):
    url = reverse(name)
    return redirect(f"{url}?{urlencode({'next': next_url})}" if next_url else url)


def _onwards(next_url: str):
    return redirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))


def _second_step(user, next_url: str):
    name = "staff-login-otp" if two_factor.has_authenticator(user) else "staff-enrol"
    return _step(name, next_url)


def _throttled_message() -> str:
    minutes = throttle.wait_minutes()
    return ngettext(
        "Too many failed attempts. Please wait %(minutes)d minute or ask an administrator.",
        "Too many failed attempts. Please wait %(minutes)d minutes or ask an administrator.",
        minutes,
    ) % {"minutes": minutes}


def _code_error(result: two_factor.CodeCheck) -> str:
    if result.outcome is Outcome.THROTTLED:
        return _throttled_message()
    if result.outcome is Outcome.REUSED:
        return _("This code was already used. Please wait for the next code in your app.")
    if result.outcome is Outcome.DEVICE_PAUSED:
        seconds = result.retry_after or 1
        return ngettext(
            "Too many wrong codes in a row. Please wait %(seconds)d second and try again.",
            "Too many wrong codes in a row. Please wait %(seconds)d seconds and try again.",
            seconds,
        ) % {"seconds": seconds}
    if result.method == "backup_code":
        return _("This backup code is wrong or was already used.")
    return _("The code is wrong or has expired.")


def _tell_backup_codes_left(request, left: int) -> None:
    if left == 0:
        messages.warning(
            request,
            _("You used your last backup code. Please issue new backup codes now."),
        )
    elif left <= 3:
        messages.warning(
            request,
            ngettext(
                "You signed in with a backup code. Only %(count)d backup code is left – "
                "please issue new backup codes soon.",
                "You signed in with a backup code. Only %(count)d backup codes are left – "
                "please issue new backup codes soon.",
                left,
            )
            % {"count": left},
        )
    else:
        messages.info(
            request,
            _("You signed in with a backup code. %(count)d backup codes are left.")
            % {"count": left},
        )


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        if request.user.is_verified():
            return _onwards(next_url)
        return _second_step(request.user, next_url)
    form = PasswordForm(request.POST) if request.method == "POST" else PasswordForm()
    if form.is_valid():
        result = two_factor.check_password(
            request=request,
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
        )
        if result.outcome is Outcome.OK:
            auth.login(request, result.user)
            return _second_step(result.user, next_url)
        if result.outcome is Outcome.THROTTLED:
            form.add_error(None, _throttled_message())
        else:
            form.add_error(None, _("Wrong user name or password."))
    return render(request, "portal/signin/login.html", {"form": form, "next": next_url})


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def code(request):
    next_url = _safe_next(request)
    user = request.user
    if not user.is_authenticated:
        return _step("staff-login", next_url)
    if user.is_verified():
        return _onwards(next_url)
    if not two_factor.has_authenticator(user):
        return _step("staff-enrol", next_url)
    form = CodeForm(request.POST) if request.method == "POST" else CodeForm()
    if form.is_valid():
        result = two_factor.verify_code(request=request, user=user, code=form.cleaned_data["code"])
        if result.outcome is Outcome.OK:
            request.session.cycle_key()  # a new session id for the more privileged session
            django_otp.login(request, result.device)
            if result.backup_codes_left is not None:
                _tell_backup_codes_left(request, result.backup_codes_left)
            return _onwards(next_url)
        form.add_error("code", _code_error(result))
    return render(request, "portal/signin/code.html", {"form": form, "next": next_url})


def _enrolment_code_error(outcome: Outcome) -> str:
    if outcome is Outcome.THROTTLED:
        return _throttled_message()
    if outcome is Outcome.EXPIRED:
        return _("This enrolment code has expired. Please ask your administrator for a new one.")
    if outcome is Outcome.REUSED:
        return _(
            "This enrolment code was already used or replaced by a newer one. "
            "Please ask your administrator for a new one."
        )
    return _("This enrolment code is wrong. Please check it or ask your administrator.")


def _enrolment_code_step(request, user, next_url: str):
    """No secret without an administrator's one-time code: a password alone shows nothing."""
    form = EnrolmentCodeForm(request.POST) if request.method == "POST" else EnrolmentCodeForm()
    if form.is_valid():
        outcome = two_factor.begin_enrolment(
            request=request, user=user, code=form.cleaned_data["enrolment_code"]
        )
        if outcome is Outcome.OK:
            return _step("staff-enrol", next_url)
        form.add_error("enrolment_code", _enrolment_code_error(outcome))
    return render(
        request, "portal/signin/enrolment_code.html", {"form": form, "next": next_url}
    )


@sensitive_post_parameters("code", "enrolment_code")
@never_cache
@require_http_methods(["GET", "POST"])
def enrol(request):
    next_url = _safe_next(request)
    user = request.user
    if not user.is_authenticated:
        return _step("staff-login", next_url)
    if two_factor.has_authenticator(user):
        return _step("staff-login-otp", next_url)
    try:
        device = two_factor.pending_enrolment(request)
        # A new enrolment code is welcome at any time: it starts over with a new secret.
        if device is None or "enrolment_code" in request.POST:
            return _enrolment_code_step(request, user, next_url)
        form = EnrolmentForm(request.POST) if request.method == "POST" else EnrolmentForm()
        if form.is_valid():
            result = two_factor.confirm_enrolment(
                request=request, user=user, code=form.cleaned_data["code"]
            )
            if result.outcome is Outcome.OK:
                request.session.cycle_key()
                django_otp.login(request, result.device)
                request.session[BACKUP_CODES_SESSION_KEY] = list(result.backup_codes)
                messages.success(request, _("Your authenticator app is set up."))
                return _step("staff-backup-codes", next_url)
            form.add_error("code", _code_error(result))
    except two_factor.AlreadyEnrolled:
        return _step("staff-login-otp", next_url)
    context = {"form": form, "next": next_url, **two_factor.authenticator_setup(device)}
    return render(request, "portal/signin/enrol.html", context)


@sensitive_post_parameters("password")
@never_cache
@staff_required
@require_http_methods(["GET", "POST"])
def backup_codes(request):
    next_url = _safe_next(request)
    form = ReauthenticationForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        # Whoever finds a signed-in browser must not walk away with a fresh set of codes.
        outcome = two_factor.check_reauthentication(
            request=request, user=request.user, password=form.cleaned_data["password"]
        )
        if outcome is Outcome.OK:
            codes = two_factor.issue_backup_codes(request=request, user=request.user)
            request.session[BACKUP_CODES_SESSION_KEY] = codes
            return _step("staff-backup-codes", next_url)
        form.add_error(
            "password",
            _throttled_message() if outcome is Outcome.THROTTLED else _("The password is wrong."),
        )
    # Shown once: taken out of the session as the page is rendered.
    codes = []
    if request.method == "GET":
        codes = request.session.pop(BACKUP_CODES_SESSION_KEY, None) or []
    context = {
        "codes": [two_factor.format_backup_code(str(code)) for code in codes],
        "remaining": two_factor.backup_codes_left(request.user),
        "continue_url": next_url or resolve_url(settings.LOGIN_REDIRECT_URL),
        "next": next_url,
        "form": form,
    }
    return render(request, "portal/signin/backup_codes.html", context)


@require_POST
def logout(request):
    if request.user.is_authenticated:
        with transaction.atomic():
            record_for_request(
                request, event_type=EventType.SIGNED_OUT, actor=Actor.staff(request.user)
            )
            close_staff_sockets(request.session.session_key, reason="signed out")
        auth.logout(request)
        messages.info(request, _("You have signed out."))
    return redirect("staff-login")


urlpatterns = [
    path("login/", login, name="staff-login"),
    path("login/code/", code, name="staff-login-otp"),
    path("enrol/", enrol, name="staff-enrol"),
    path("backup-codes/", backup_codes, name="staff-backup-codes"),
    path("logout/", logout, name="staff-logout"),
]
