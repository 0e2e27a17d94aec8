"""The staff console: schedule sessions, issue keys, admit or refuse the waiting customer.

Thin views: authorize, validate, call one action, respond. The rules live in ``actions``.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from audit.event_types import EventType
from audit.models import AuditEvent
from portal import client_ip, roles
from portal.request_audit import record_for_request
from portal.staff_access import staff_required
from sessions_app import actions, business_hours, key_attempts
from sessions_app.forms import IssueKeyForm, ScheduleForm
from sessions_app.keys import grouped
from sessions_app.models import (
    InvalidTransition,
    KeyState,
    SessionState,
    SupportSession,
)

run_sessions_required = staff_required(permission=roles.RUN_SESSIONS)


def _session_for(request, reference: str) -> SupportSession:
    """The session, if the staff member may see it; otherwise 404, audited."""
    session = (
        SupportSession.objects.visible_to(request.user)
        .select_related("assigned_to", "scheduled_by", "team")
        .filter(reference=reference)
        .first()
    )
    if session is None:
        record_for_request(
            request,
            event_type=EventType.SESSION_ACCESS_DENIED,
            session_ref=reference[:20],
            details={"path": request.path[:200]},
        )
        raise Http404(_("No such session."))
    return session


def _refuse_not_yours(request, session: SupportSession, refusal: Exception):
    record_for_request(
        request,
        event_type=EventType.SESSION_ACCESS_DENIED,
        session_ref=session.reference,
        details={"path": request.path[:200], "reason": "not the assigned staff member"},
    )
    raise PermissionDenied(str(refusal))


def _today_start() -> datetime:
    local_now = timezone.localtime(timezone.now(), business_hours.local_zone())
    return local_now.replace(hour=0, minute=0, second=0, microsecond=0)


def _console_lists(user) -> dict:
    sessions = list(
        SupportSession.objects.visible_to(user)
        .filter(slot_end__gte=_today_start())
        .select_related("assigned_to")
        .order_by("slot_start")[:200]
    )
    return {
        "mine": [s for s in sessions if s.assigned_to_id == user.pk],
        "team": [s for s in sessions if s.assigned_to_id != user.pk],
    }


@run_sessions_required
@never_cache
def console(request):
    """Today's and upcoming sessions, mine and the team's, and the schedule form."""
    form = ScheduleForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        start, end = form.slot()
        try:
            session = actions.schedule_session(
                by_user=request.user,
                assigned_to=form.cleaned_data["assigned_to"] or request.user,
                customer_name=form.cleaned_data["customer_name"],
                call_note=form.cleaned_data["call_note"],
                slot_start=start,
                slot_end=end,
                ip=client_ip.of(request),
            )
        except business_hours.OutsideOpeningHours as closed:
            form.add_error(None, closed.message())
        except actions.SessionRuleError as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, _("Session %(ref)s scheduled.") % {"ref": session.reference})
            return redirect("session-page", reference=session.reference)
    context = {
        "form": form,
        "open_now": business_hours.is_open(),
        "next_opening": business_hours.next_opening(),
        **_console_lists(request.user),
    }
    return render(request, "sessions_app/console.html", context, status=400 if form.errors else 200)


@run_sessions_required
@require_GET
@never_cache
def console_list(request):
    """The session lists alone, for the console's live refresh."""
    return render(request, "sessions_app/_session_lists.html", _console_lists(request.user))


def _panel_context(request, session: SupportSession) -> dict:
    live_key = session.keys.filter(state=KeyState.LIVE).first()
    seconds_left = 0
    if live_key is not None:
        seconds_left = max(0, int((live_key.expires_at - timezone.now()).total_seconds()))
    return {
        "session": session,
        "key_seconds_left": seconds_left,
        "mine": session.assigned_to_id == request.user.pk,
        "live_key": live_key,
        "key_form": IssueKeyForm(),
        "history": AuditEvent.objects.filter(session_ref=session.reference).order_by("seq"),
        "key_entry_paused": key_attempts.is_blocked_globally(),
        "States": SessionState,
    }


PAGE = "sessions_app/session.html"
PANEL = "sessions_app/_session_panel.html"  # the state part alone, for the live refresh


@run_sessions_required
@require_GET
@never_cache
def session_page(request, reference: str, template: str = PAGE):
    """The session page, or its state panel alone; neither ever holds a key."""
    session = _session_for(request, reference)
    return render(request, template, _panel_context(request, session))


@run_sessions_required
@require_POST
@never_cache
def issue_key(request, reference: str):
    """Issue (or re-issue) the key and show it this once, in large digits."""
    session = _session_for(request, reference)
    form = IssueKeyForm(request.POST)
    plain = None
    if form.is_valid():
        try:
            plain, _key = actions.issue_key(
                session=session, by_user=request.user,
                lifetime_minutes=form.cleaned_data["lifetime"], ip=client_ip.of(request),
            )
        except actions.NotYourSession as refusal:
            _refuse_not_yours(request, session, refusal)
        except business_hours.OutsideOpeningHours as closed:
            form.add_error(None, closed.message())
        except (actions.SessionRuleError, InvalidTransition) as refusal:
            form.add_error(None, str(refusal))
        session.refresh_from_db()
    context = _panel_context(request, session)
    context["key_form"] = form
    context["plain_key"] = grouped(plain) if plain else None
    response = render(request, PAGE, context,
                      status=200 if plain else 400)
    response["Cache-Control"] = "no-store"  # the key must not linger in any cache
    return response


@run_sessions_required
@require_POST
def lift_key_block(request, reference: str):
    """The customer on the phone reads the help code from their blocked key page."""
    session = _session_for(request, reference)
    try:
        actions.lift_key_block(session=session, by_user=request.user,
                               help_code=request.POST.get("help_code", "")[:40],
                               ip=client_ip.of(request))
    except actions.NotYourSession as refusal:
        _refuse_not_yours(request, session, refusal)
    except actions.SessionRuleError as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, _(
            "The block is lifted for this session for %(minutes)d minutes: the customer's "
            "browser may now enter this session's key. Ask them to enter it again."
        ) % {"minutes": settings.KEY_BLOCK_LIFT // 60})
    return redirect("session-page", reference=session.reference)


# The staff member's one-button steps: the action each calls, and what the page says after it.
STEPS = {
    "admit": (actions.admit_customer, gettext_lazy("The customer is admitted.")),
    "refuse": (
        actions.refuse_customer,
        gettext_lazy("The customer was refused; the key can never be used again."),
    ),
    "cancel": (
        actions.cancel_session,
        gettext_lazy("The session is cancelled; its key no longer works."),
    ),
    "end": (actions.end_by_staff, gettext_lazy("The session has ended.")),
}


@run_sessions_required
@require_POST
def step(request, reference: str, step: str):
    """Admit, refuse, cancel or end: one action, then back to the session page."""
    act, done = STEPS[step]
    session = _session_for(request, reference)
    try:
        act(session=session, by_user=request.user, ip=client_ip.of(request))
    except actions.NotYourSession as refusal:
        _refuse_not_yours(request, session, refusal)
    except InvalidTransition as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, str(done))
    return redirect("session-page", reference=session.reference)


@run_sessions_required
@require_GET
@never_cache
def live_viewer(request, reference: str):
    """The assigned staff member's view of the customer's screen, with chat and control."""
    session = _session_for(request, reference)
    if session.assigned_to_id != request.user.pk:
        _refuse_not_yours(request, session, actions.NotYourSession(
            _("Only the assigned staff member can do this.")))
    if session.state != SessionState.ACTIVE:
        messages.info(request, _("The live view opens once the customer is admitted."))
        return redirect("session-page", reference=session.reference)
    return render(request, "sessions_app/live.html", {
        "session": session, "role": "staff",
        "socket_path": f"/ws/live/staff/{session.reference}/",
    })


@staff_required(permission=roles.REVIEW_EVIDENCE)
@require_GET
@never_cache
def observe_list(request):
    """Active sessions a compliance officer may watch live (four-eyes)."""
    active = SupportSession.objects.filter(state=SessionState.ACTIVE).select_related(
        "assigned_to").order_by("admitted_at")
    return render(request, "sessions_app/observe_list.html", {"sessions": active})


@staff_required(permission=roles.REVIEW_EVIDENCE)
@require_GET
@never_cache
def observe(request, reference: str):
    """Watch an active session read-only; the customer is told an observer is present."""
    session = SupportSession.objects.filter(reference=reference,
                                            state=SessionState.ACTIVE).first()
    if session is None:
        record_for_request(request, event_type=EventType.SESSION_ACCESS_DENIED,
                           session_ref=reference[:20],
                           details={"path": request.path[:200]})
        raise Http404(_("No such session."))
    return render(request, "sessions_app/live.html", {
        "session": session, "role": "observer",
        "socket_path": f"/ws/live/observe/{session.reference}/",
    })
