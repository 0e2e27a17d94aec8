"""The customer's pages: key, adviser check, terms and consent, waiting room, end, receipt.

Public (no account). The browser that redeemed the key is bound to its session through the
Django session; every page after that offers "End session". Thin views: validate, call one
action, respond. See docs/consent.md.
"""

from __future__ import annotations

import functools

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.event_types import EventType
from audit.events import Actor, record
from consent import actions
from consent.forms import ConsentForm, KeyForm
from consent.models import ConsentAcceptance, TermsVersion, control_granted
from portal import client_ip
from portal.permissions_policy import allow_display_capture
from portal.rate_limit import customer_rate_limited
from sessions_app import actions as session_actions
from sessions_app import business_hours, key_attempts
from sessions_app.models import SessionState, SupportSession

# The Django session entry that binds this browser to the support session it opened.
CUSTOMER_SESSION = "customer_support_session"
# The help code a browser refused at key entry shows, for its adviser to lift the block.
HELP_CODE = "customer_key_help_code"


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:300]


def bound_session(request) -> SupportSession | None:
    session_id = request.session.get(CUSTOMER_SESSION)
    if session_id is None:
        return None
    return SupportSession.objects.select_related("assigned_to").filter(pk=session_id).first()


def customer_page(view):
    """A page after the key: rate-limited, never cached, and only for the bound browser."""

    @customer_rate_limited
    @never_cache
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        session = bound_session(request)
        if session is None:
            messages.info(request, _("Please enter the session key from your adviser first."))
            return redirect("customer-landing")
        return view(request, session, *args, **kwargs)

    return wrapper


def _context(session: SupportSession, **extra) -> dict:
    consent = ConsentAcceptance.objects.filter(session=session).first()
    return {"support_session": session, "consent": consent, "adviser": adviser_name(session),
            **extra}


def adviser_name(session: SupportSession) -> str:
    user = session.assigned_to
    return user.get_full_name() or user.get_username()


@customer_rate_limited
@never_cache
@require_http_methods(["GET", "POST"])
def landing(request):
    """What remote support is, the opening hours, and the form for the key."""
    form = KeyForm(request.POST or None)
    ip = client_ip.of(request)
    status, help_code = 200, None
    if request.method == "POST" and form.is_valid():
        attempt = key_attempts.claim(ip, help_code=request.session.get(HELP_CODE))
        if attempt.refused:
            help_code = _refuse_key_entry(request, form, attempt)
            status = 429
        else:
            try:
                session = session_actions.redeem_key(
                    typed_key=form.cleaned_data["key"], customer_name=form.cleaned_data["name"],
                    ip=ip, user_agent=_user_agent(request), only_session=attempt.only_session,
                )
            except business_hours.OutsideOpeningHours as closed:
                attempt.not_tried()
                form.add_error(None, closed.message())
            except session_actions.KeyRejected:
                attempt.failed()
                form.add_error("key", _(
                    "This key does not open a session. Please check the seven digits with "
                    "your adviser on the phone."
                ))
            else:
                attempt.succeeded()
                request.session.cycle_key()  # a new session id for the bound browser
                request.session.pop(HELP_CODE, None)
                request.session[CUSTOMER_SESSION] = session.pk
                return redirect("customer-adviser")
    if form.errors and status == 200:
        status = 400
    now_open = business_hours.is_open()
    response = render(request, "consent/landing.html", {
        "form": form,
        "open_now": now_open,
        "next_opening": None if now_open else business_hours.next_opening(),
        "opening_hours": business_hours.weekly_hours(),
        "bound": bound_session(request),
        "help_code": key_attempts.grouped_help_code(help_code) if help_code else None,
    }, status=status)
    if status == 429:
        response["Retry-After"] = str(key_attempts.wait_minutes(attempt.refused) * 60)
    return response


def _refuse_key_entry(request, form: KeyForm, attempt: key_attempts.Attempt) -> str:
    """Too many wrong keys: say so calmly, audit it, and give the browser its help code."""
    if key_attempts.should_audit_refusal(attempt):
        record(event_type=EventType.KEY_REDEMPTION_THROTTLED,
               actor=Actor.anonymous("customer"), ip=attempt.ip,
               details={"limit": attempt.refused, "user_agent": _user_agent(request)})
    minutes = key_attempts.wait_minutes(attempt.refused)
    if attempt.refused == key_attempts.Refusal.GLOBAL:
        form.add_error(None, _(
            "For your security, key entry is paused for everyone for up to %(minutes)d "
            "minutes: there were too many wrong keys. Please stay on the phone with your "
            "adviser: with the help code below, they can let you in now."
        ) % {"minutes": minutes})
    else:
        form.add_error(None, _(
            "Too many wrong keys from your network. Please wait %(minutes)d minutes, "
            "or ask your adviser for help on the phone."
        ) % {"minutes": minutes})
    code = key_attempts.help_code(request.session.get(HELP_CODE), attempt.ip)
    request.session[HELP_CODE] = code
    return code


@customer_page
@require_GET
def adviser(request, session):
    """Who the adviser is and the reference, to check against the phone call."""
    if not session.is_open:
        return redirect("customer-wait")
    return render(request, "consent/adviser.html", _context(session))


@customer_page
@require_http_methods(["GET", "POST"])
def terms(request, session):
    """The current terms in the reader's language and the four consent boxes."""
    if ConsentAcceptance.objects.filter(session=session).exists() or not session.is_open:
        return redirect("customer-wait")
    current = TermsVersion.objects.current(get_language())
    form = ConsentForm(request.POST or None, initial={"terms_id": current.pk if current else None})
    notice = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            actions.give_consent(
                session=session, terms_id=data["terms_id"], language=get_language(),
                answers=actions.Answers(
                    accepted_terms=data["accepted_terms"], it_permission=data["it_permission"],
                    share_screen=data["share_screen"], full_control=data["full_control"],
                ),
                ip=client_ip.of(request), user_agent=_user_agent(request),
            )
        except actions.TermsReplaced as replaced:
            # Start afresh on the new text: no box of the old one carries over.
            form = ConsentForm(initial={"terms_id": current.pk if current else None})
            notice = str(replaced)
        except actions.ConsentRefused as refused:
            form.add_error(None, str(refused))
        else:
            return redirect("customer-wait")
    status = 400 if form.errors or notice else 200
    context = _context(session, terms=current, form=form, notice=notice)
    return render(request, "consent/terms.html", context, status=status)


@allow_display_capture
@customer_page
@require_GET
def wait(request, session):
    """The waiting room: admitted, still waiting, or over. Refreshes itself."""
    consent = ConsentAcceptance.objects.filter(session=session).first()
    if consent is None and session.is_open:
        return redirect("customer-terms")
    return render(request, "consent/wait.html", _context(
        session, control=control_granted(session),
    ))


@customer_page
@require_GET
def status(request, session):
    """The session's state for the waiting room's own refresh."""
    return JsonResponse({"state": session.state, "open": session.is_open})


@customer_page
@require_POST
def live_token(request, session):
    """A single-use token for the live socket, for the bound browser of an active session."""
    try:
        token = session_actions.issue_live_token(session=session, ip=client_ip.of(request))
    except session_actions.SessionRuleError as refused:
        return JsonResponse({"error": str(refused)}, status=409)
    return JsonResponse({"token": token, "socket": "/ws/live/customer/"})


@customer_page
@require_POST
def end(request, session):
    """End the session now: works in every state after the key, even before admission."""
    if session.state in (SessionState.CUSTOMER_WAITING, SessionState.ACTIVE):
        try:
            actions.end_by_customer(
                session=session, ip=client_ip.of(request),
                adviser_not_recognised=request.POST.get("reason") == "adviser_not_recognised",
            )
        except session_actions.InvalidTransition:
            pass  # ended a moment ago by someone else: the page below says so
    return redirect("customer-ended")


@customer_page
@require_GET
def ended(request, session):
    return render(request, "consent/ended.html", _context(session))


@customer_page
@require_GET
def receipt(request, session):
    """The customer's receipt of what they agreed to (printable)."""
    consent = ConsentAcceptance.objects.filter(session=session).first()
    if consent is None:
        messages.info(request, _("There is no receipt yet: you have not agreed to anything."))
        return redirect("customer-wait" if not session.is_open else "customer-terms")
    return render(request, "consent/receipt.html", receipt_context(consent))


def receipt_context(consent: ConsentAcceptance) -> dict:
    """Everything a receipt shows, from the database alone."""
    session = consent.session
    fields = ConsentForm.base_fields
    answers = [
        (fields[name].label, getattr(consent, name))
        for name in ("accepted_terms", "it_permission", "share_screen", "full_control")
    ]
    return {
        "answers": answers,
        "consent": consent,
        "support_session": session,
        "adviser": adviser_name(session),
        "terms": consent.terms,
        "events": consent.session.consent_events.all(),
    }
